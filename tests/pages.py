"""Reading rendered pages as an analyst does: the visible text, no Python repr in it, and a working CSV behind
every chart."""

import csv
import io
import re
from html import unescape
from urllib.parse import urljoin

# What leaks when a template prints a dict, a dict's ``items`` method or a missing value.
REPRS = re.compile(r"\{'|dict_items|dict_values|\bNone\b")


def visible_text(html: str) -> str:
    """The page without scripts, styles and tags: what a reader sees (Plotly's JSON lives in scripts)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def assert_no_python_repr(client, urls: list[str]) -> None:
    """Every page answers 200 and shows no Python repr where a value belongs."""
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        leaks = REPRS.findall(visible_text(response.content.decode()))
        assert not leaks, f"{url}: {leaks}"


def charts_with_working_csv(client, urls: list[str]) -> int:
    """How many charts the pages draw, each checked to have one CSV link that answers a rectangular table."""
    charts = 0
    for url in urls:
        page = client.get(url).content.decode()
        for plot in re.findall(r'<div id="([\w-]+)" class="plotly-graph-div', page):
            links = re.findall(rf'<a [^>]*href="([^"]+)"[^>]*data-csv="{plot}"', page)
            assert len(links) == 1, f"{url}: chart {plot} has {len(links)} CSV links"
            response = client.get(urljoin(url, unescape(links[0])))
            assert response.status_code == 200 and response["Content-Type"] == "text/csv", (url, plot)
            header, *rows = list(csv.reader(io.StringIO(response.content.decode())))
            assert header and rows and all(len(row) == len(header) for row in rows), (url, plot)
            charts += 1
    return charts
