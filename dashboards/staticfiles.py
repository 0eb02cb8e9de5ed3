"""A static-files finder that serves the plotly.js bundled with the plotly Python package, and the favicon."""

from pathlib import Path

import plotly
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage
from django.http import FileResponse, Http404, HttpRequest

PLOTLY_JS = "plotly/plotly.min.js"
_SOURCE = Path(plotly.__file__).parent / "package_data"
FAVICON_MAX_AGE = 7 * 24 * 3600  # its name carries no hash, so a changed icon must reach browsers within a week


class PlotlyJsFinder(BaseFinder):
    """Finds ``plotly/plotly.min.js`` only (the package folder also holds data sets we do not serve)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=str(_SOURCE))
        self.storage.prefix = "plotly"  # type: ignore[attr-defined]  # read by the finders; not in the stubs

    def check(self, **kwargs):
        return []

    def find(self, path: str, find_all: bool = False, **kwargs):
        if path != PLOTLY_JS:
            return [] if find_all else None
        match = str(_SOURCE / "plotly.min.js")
        return [match] if find_all else match

    def list(self, ignore_patterns):
        yield "plotly.min.js", self.storage


def favicon(request: HttpRequest) -> FileResponse:
    """``/favicon.ico``, which browsers ask for on every page that names no icon (the admin, the API docs)."""
    path = finders.find("favicon.ico")
    if path is None:
        raise Http404("no favicon.ico among the static files")
    response = FileResponse(open(path, "rb"), content_type="image/x-icon")  # noqa: SIM115 - closed by the response
    response["Cache-Control"] = f"public, max-age={FAVICON_MAX_AGE}"
    return response
