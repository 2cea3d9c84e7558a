"""HTTP plumbing shared by every route: the route declaration, the router/OpenAPI builders, request parsing
and the error middleware.

A route is declared once (``Route``: method, path, handler, auth, OpenAPI operation); ``mount`` adds a list
of them to an aiohttp router and ``build_openapi`` turns the same list into the ``/openapi.json`` document,
so a path is never typed twice. ``auth`` names who may call the route: ``"open"`` (anyone) or a guard that
``mount`` must be given (``"staff-signed"``: the vault). A guard runs before the handler and may refuse.

Every error, including unknown routes and wrong methods, is JSON ``{"error": {"code", "message"}}`` with the
status from the error's ``http_status`` (``error_middleware``); a 5xx means a bug.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping

from aiohttp import web

from ledger.errors import LedgerError
from node.errors import MempoolFull, NodeError

log = logging.getLogger("carecoin.api")

AUTH_OPEN = "open"
AUTH_STAFF_SIGNED = "staff-signed"
AUTH_TEXT = {
    AUTH_STAFF_SIGNED: "Staff-signed: headers X-Carecoin-Staff (key hex), X-Carecoin-Time (ms), X-Carecoin-Signature "
                       "(Ed25519 over H('carecoin/v1/vault-request', P([chain_id, method, path, time_ms, "
                       "sha256(body)])), hex)",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Guard = Callable[[web.Request], Awaitable[None]]


class BadRequest(NodeError):
    """A request whose path, query or body is malformed."""

    code = "bad_request"
    http_status = 400


class RouteNotFound(NodeError):
    """No such route, or no such object behind a valid route."""

    code = "not_found"
    http_status = 404


class MethodNotAllowed(NodeError):
    code = "method_not_allowed"
    http_status = 405


# ---- routes ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Route:
    """One route: ``method path`` served by ``handler``, callable by ``auth``, documented by ``operation``."""

    method: str
    path: str
    handler: Handler
    auth: str
    operation: dict[str, Any] = field(hash=False, compare=False)
    peer: bool = False  # also served on the peer listener (catch-up)


def mount(app: web.Application, routes: Iterable[Route], guards: Mapping[str, Guard] | None = None) -> None:
    """Add ``routes`` to ``app``'s router; a route whose ``auth`` is not open runs its guard first."""
    guards = guards or {}
    for route in routes:
        handler = route.handler
        if route.auth != AUTH_OPEN:
            if route.auth not in guards:
                raise ValueError(f"route {route.method} {route.path} needs auth {route.auth!r}; no guard given")
            handler = _guarded(guards[route.auth], handler)
        app.router.add_route(route.method, route.path, handler)


def _guarded(guard: Guard, handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        await guard(request)
        return await handler(request)
    return guarded


def build_openapi(routes: Iterable[Route], *, title: str, description: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (each operation says its auth in ``x-carecoin-auth``)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op = dict(route.operation)
        if route.auth in AUTH_TEXT:
            op["summary"] = f"{op['summary']} {AUTH_TEXT[route.auth]}"
        op["x-carecoin-auth"] = route.auth
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": description},
        "paths": paths,
        "components": {"responses": {"Error": {"description": "error", "content": {"application/json": {
            "schema": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}}}}},
    }


def op(summary: str, ok: str, *errors: int, params: tuple = (), body: dict | None = None,
       content: str = "application/json") -> dict[str, Any]:
    """One OpenAPI operation: its parameters, request body schema, success response and error responses."""
    operation: dict[str, Any] = {"summary": summary, "parameters": [dict(p) for p in params], "responses": {
        ok: {"description": "success", "content": {content: {"schema": {"type": "object"} if
                                                             content == "application/json" else
                                                             {"type": "string"}}}}}}
    for code in errors:
        operation["responses"][str(code)] = {"$ref": "#/components/responses/Error"}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return operation


def path_param(name: str, desc: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": desc, "schema": {"type": "string"}}


def query_param(name: str, desc: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": desc, "schema": {"type": kind}}


# ---- errors ---------------------------------------------------------------------------------------------

def error_response(code: str, message: str, status: int, headers: dict | None = None) -> web.Response:
    """The one error shape of the API."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler):
    """Turn typed errors (and aiohttp's own 404/405/413) into the JSON error shape."""
    try:
        return await handler(request)
    except MempoolFull as exc:
        return error_response(exc.code, exc.message, exc.http_status, {"Retry-After": str(exc.retry_after)})
    except (LedgerError, NodeError) as exc:
        status = getattr(exc, "http_status", 400)
        if status >= 500:
            log.error("%s %s answered %d: %s", request.method, request.path, status, exc)
        return error_response(exc.code, exc.message, status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        return error_response(codes.get(exc.status, "http_error"), exc.reason or "request refused", exc.status)
    except Exception as exc:  # a bug: say so, never leak a traceback to the client
        log.exception("%s %s failed", request.method, request.path)
        return error_response("internal", f"internal error ({type(exc).__name__}); this is a bug", 500)


# ---- parsing --------------------------------------------------------------------------------------------

def parse_hex32(text: str, what: str) -> bytes:
    """Parse 64 hex digits or raise ``BadRequest`` naming what was seen."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise BadRequest(f"{what} {text[:80]!r} is not hex; expected 64 hex digits") from None
    if len(raw) != 32:
        raise BadRequest(f"{what} is {len(raw)} bytes; expected 32 (64 hex digits)")
    return raw


def parse_int(text: str | None, what: str, lo: int, hi: int, default: int | None = None) -> int | None:
    """Parse a bounded integer query/path value or raise ``BadRequest``."""
    if text is None:
        return default
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise BadRequest(f"{what} must be an integer {lo}..{hi}, got {text[:40]!r}")
    return int(text)


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The request body, refused with ``BadRequest`` above ``max_bytes``."""
    body = await request.read()
    if len(body) > max_bytes:
        raise BadRequest(f"request body of {len(body)} bytes; at most {max_bytes}")
    return body


def parse_json(body: bytes, expected: str) -> Any:
    """Parse a JSON body or raise ``BadRequest`` saying what was ``expected``."""
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest(f"body is not JSON; expected {expected}") from None
