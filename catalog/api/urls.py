from rest_framework.routers import SimpleRouter

from catalog.api.views import EndUserViewSet, InteractionViewSet, ItemViewSet

router = SimpleRouter()
router.register("items", ItemViewSet, basename="item")
router.register("end-users", EndUserViewSet, basename="end-user")
router.register("interactions", InteractionViewSet, basename="interaction")

urlpatterns = router.urls
