from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

from dashboards.staticfiles import favicon
from dashboards.urls import auth_urlpatterns
from recsys_site.api import api_root
from recsys_site.metrics_view import metrics
from recsys_site.schema_view import SchemaView

api_v1: list[URLPattern | URLResolver] = [
    path("", api_root, name="api-root"),
    path("", include("catalog.api.urls")),
    path("", include("scenarios.api.urls")),
    path("", include("training.api.urls")),
    path("", include("accounts.api.urls")),
    path("schema/", SchemaView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: the Content-Security-Policy allows no inline one.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

urlpatterns = [
    *auth_urlpatterns,
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
    path("api/v1/", include(api_v1)),
    path("", include("dashboards.urls")),
]

handler404 = "recsys_site.api.not_found"
