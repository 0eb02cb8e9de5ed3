from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from dashboards.staticfiles import favicon
from dashboards.urls import auth_urlpatterns
from recsys_site.api import api_root

api_v1 = [
    path("", api_root, name="api-root"),
    path("", include("catalog.api.urls")),
    path("", include("scenarios.api.urls")),
    path("", include("training.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

urlpatterns = [
    *auth_urlpatterns,
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("", include("dashboards.urls")),
]
