"""A static-files finder that serves the plotly.js bundled with the plotly Python package."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "plotly/plotly.min.js"
_SOURCE = Path(plotly.__file__).parent / "package_data"


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
