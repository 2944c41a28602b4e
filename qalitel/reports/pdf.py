"""HTML to PDF with WeasyPrint, which never reaches the network.

WeasyPrint lays out the HTML and CSS of our own Jinja templates (paged media: A4, running
footers, page numbers) with Pango, in-process: no headless browser to run, keep up and
sandbox. Every resource it asks for goes through :class:`LocalFetcher`, which serves the
app's static files and ``data:`` URLs (the logo) and refuses anything else. This module
loads WeasyPrint (and Pango) when first imported: the views import it at the first PDF.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

STATIC = Path(__file__).resolve().parent.parent / "static"


class RefusedURL(ValueError):
    """A report asked for something outside the app's static files."""


class LocalFetcher(URLFetcher):
    """Serves ``data:`` URLs and files under ``root`` (the app's static folder); refuses any
    other URL (``http:``, ``https:``, ``ftp:``, other files) with :class:`RefusedURL`."""

    def __init__(self, root: Path = STATIC) -> None:
        super().__init__(allowed_protocols=("data", "file"), allow_redirects=False)
        self.root = root.resolve()

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file" and parts.netloc in ("", "localhost"):
            path = Path(url2pathname(parts.path)).resolve()
            if path.is_relative_to(self.root) and path.is_file():
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(path.as_uri(), path.read_bytes(),
                                          {"Content-Type": kind})
        raise RefusedURL(f"reports load nothing from {url[:200]!r}")


def render_pdf(html: str) -> bytes:
    """The PDF of ``html``; relative URLs point into the static folder."""
    document = HTML(string=html, base_url=STATIC.as_uri() + "/", url_fetcher=LocalFetcher())
    return document.write_pdf()
