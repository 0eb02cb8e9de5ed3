from django.urls import path
from rest_framework.routers import SimpleRouter

from scenarios.api.views import AlgorithmListApi, ScenarioViewSet

router = SimpleRouter()
router.register("scenarios", ScenarioViewSet, basename="scenario")

urlpatterns = [
    path("algorithms/", AlgorithmListApi.as_view(), name="algorithm-list"),
    *router.urls,
]
