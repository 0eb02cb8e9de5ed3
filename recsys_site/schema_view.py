"""The schema endpoint: YAML a browser shows as text, JSON with ``?format=json``."""

from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView


class BrowserYamlRenderer(OpenApiYamlRenderer):
    """YAML as plain text, which browsers show instead of downloading."""

    media_type = "text/plain"
    charset = "utf-8"


class SchemaView(SpectacularAPIView):
    """The schema as YAML text (or ``?format=json``); OpenAPI tools asking for its media types get them."""

    # The first renderer answers a browser's */*; the first with format "json" answers ?format=json.
    renderer_classes = [
        BrowserYamlRenderer,
        OpenApiJsonRenderer2,  # application/json
        OpenApiYamlRenderer,
        OpenApiYamlRenderer2,
        OpenApiJsonRenderer,
    ]
