"""The customer and explorer page: ``GET /`` and its files under ``GET /static/{name}`` (``node/static/``).

The page is plain HTML, CSS and three JavaScript modules shipped in the package (no build step, nothing from
another origin): ``verify.js`` checks receipts in the browser (DESIGN "Wire formats", the checks and their names
of ``ledger.receipt``), ``api.js`` signs reads with the key file the user chose (it never leaves the browser),
``ui.js`` shows the account, history, tickets, orders, a staff member's branch queue and the receipt checks.

Both routes are open: they serve the same public files to everyone, and the page reads customer data only
through the signed routes. The answers carry a content security policy that allows scripts, styles and
requests from this origin only, so the page cannot load or send anything elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from node.http import RouteNotFound, show

STATIC_DIR = Path(__file__).parent / "static"
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,40}\.(js|css)$")  # what /static/ serves (the page itself is at /)
CONTENT_TYPES = {"js": "text/javascript", "css": "text/css", "html": "text/html"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _file_response(name: str, kind: str) -> web.Response:
    return web.Response(body=(STATIC_DIR / name).read_bytes(), content_type=CONTENT_TYPES[kind], charset="utf-8",
                        headers=SECURITY_HEADERS)


def list_files() -> list[str]:
    """The files the page is made of (the names ``GET /static/{name}`` serves)."""
    return sorted(p.name for p in STATIC_DIR.iterdir() if NAME.fullmatch(p.name))


async def get_index(request: web.Request) -> web.Response:
    """GET /: the page."""
    return _file_response("index.html", "html")


async def get_static(request: web.Request) -> web.Response:
    """GET /static/{name}: one of the page's files (scripts, styles)."""
    name = request.match_info["name"]
    match = NAME.fullmatch(name)
    if match is None or not (STATIC_DIR / name).is_file():
        raise RouteNotFound(f"no page file {show(name)}; the page's files are {', '.join(list_files())}")
    return _file_response(name, match.group(1))
