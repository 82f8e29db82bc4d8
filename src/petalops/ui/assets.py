"""The control room's files, read from the package (no CDN: the page works offline)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# The page's URL paths and the file under petalops/ui/static each one answers.
ROUTES = {
    "/ui": "index.html",
    "/ui/control-room.js": "control-room.js",
    "/ui/control-room.css": "control-room.css",
    # uPlot (MIT), vendored from npm by `make vendor-ui`; its licence ships beside it.
    "/ui/uPlot.iife.min.js": "uPlot.iife.min.js",
    "/ui/uPlot.min.css": "uPlot.min.css",
}

_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
}


def swagger_dir() -> Path:
    """The folder of Swagger UI's files (``/docs``), vendored from npm swagger-ui-dist."""
    return Path(str(resources.files("petalops.ui") / "static" / "swagger"))


def read(name: str) -> bytes:
    """The bytes of one shipped file (``index.html``, ...)."""
    return (resources.files("petalops.ui") / "static" / name).read_bytes()


def content_type(name: str) -> bytes:
    """The Content-Type of a shipped file, by its extension."""
    return _TYPES.get(name[name.rfind(".") :], b"application/octet-stream")
