"""Serving the console: the page shell for every console path, static files with fitting cache headers.

Vendored libraries never change under a given path (a new version gets a new file), so they are
cached for a year; the console's own modules and the shell are revalidated on every load (ETag and
Last-Modified answer 304), so an upgrade of Tailor shows at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
SHELL = STATIC_DIR / "index.html"
LONG_CACHE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Set here rather than trusting the system's MIME table: browsers refuse ES modules served as
# text/plain, and some systems map .js to application/x-javascript.
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Scripts only from this server; ECharts writes inline styles on the elements it draws.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:;"
        " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}


class ConsolePath(Convertor[str]):
    """A console page's path: anything but the API, collection and static prefixes, without a dot.

    Paths of the API never match, so they keep their own 404 and 405 answers.
    """

    regex = r"(?!(?:api|v1|static)(?:/|$))[^.]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("console", ConsolePath())


class ConsoleStatic(StaticFiles):
    """Static files with explicit content types and per-directory cache headers."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        suffix = Path(full_path).suffix.lower()
        if suffix in CONTENT_TYPES:
            response.headers["content-type"] = CONTENT_TYPES[suffix]
        vendored = f"{os.sep}vendor{os.sep}" in str(full_path)
        response.headers["cache-control"] = LONG_CACHE if vendored else REVALIDATE
        response.headers["x-content-type-options"] = "nosniff"
        return response


async def shell(request: Request) -> Response:
    """The console's page shell; the page module for the path is chosen in the browser."""
    headers: dict[str, Any] = {"Cache-Control": REVALIDATE, **SECURITY_HEADERS}
    return FileResponse(SHELL, media_type=CONTENT_TYPES[".html"], headers=headers)


def console_web_routes() -> list[Route | Mount]:
    """The static files under /static and the shell for every other path (so deep links load)."""
    return [
        Mount("/static", app=ConsoleStatic(directory=STATIC_DIR), name="console_static"),
        Route("/", shell, methods=["GET", "HEAD"], name="console"),
        Route("/{path:console}", shell, methods=["GET", "HEAD"], name="console_page"),
    ]
