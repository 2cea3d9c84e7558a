"""HTTP plumbing shared by every route: the route declaration, the router/OpenAPI builders, request parsing
and the error middleware.

A route is declared once (``Route``: method, path, handler, auth, OpenAPI operation, read rule); ``mount`` adds
a list of them to an aiohttp router and ``build_openapi`` turns the same list into the ``/openapi.json``
document, so a path is never typed twice. ``auth`` names who may call the route: ``"open"`` (anyone), a guard
that ``mount`` must be given (``"staff-signed"``, ``"signed"``: the vault), or ``"signed-read"``: the route's
own ``rule`` (``node.read_access.ReadRule``) is its guard — a signed request by a key entitled to the object
the path names. A guard runs before the handler and may refuse; the OpenAPI operation shows the rule
(``security`` + ``x-carecoin-access``).

Every error, including unknown routes and wrong methods, is JSON ``{"error": {"code", "message"}}`` with the
status from the error's ``http_status`` (``error_middleware``); a 5xx means a bug.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping

from aiohttp import web

from ledger.errors import LedgerError
from node.errors import MempoolFull, NodeError

log = logging.getLogger("carecoin.api")

AUTH_OPEN = "open"
AUTH_STAFF_SIGNED = "staff-signed"
AUTH_SIGNED = "signed"  # signed like staff-signed by any account's key; the handler checks what it may touch
AUTH_READ = "signed-read"  # signed by a key the route's read rule entitles (node.read_access)
SIGNATURE_TEXT = ("Signed request: headers X-Carecoin-Staff (the signer's key, hex), X-Carecoin-Time (ms since the "
                  "epoch, within 5 min of the node's clock, each request once), X-Carecoin-Signature (Ed25519 over "
                  "H('carecoin/v1/vault-request', P([chain_id, method, path, time_ms, sha256(body)])), hex). "
                  "401 unsigned_request / bad_signature / stale_request / replayed_request; 403 not_entitled")
AUTH_TEXT = {
    AUTH_STAFF_SIGNED: "Staff-signed: headers X-Carecoin-Staff (key hex), X-Carecoin-Time (ms), X-Carecoin-Signature "
                       "(Ed25519 over H('carecoin/v1/vault-request', P([chain_id, method, path, time_ms, "
                       "sha256(body)])), hex)",
    AUTH_SIGNED: "Signed by the customer's own key or a staff key: the same three headers as staff-signed "
                 "(X-Carecoin-Staff carries the signer's key)",
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
    rule: Any = None  # with auth "signed-read": the ``ReadRule`` whose ``guard`` runs first


def mount(app: web.Application, routes: Iterable[Route], guards: Mapping[str, Guard] | None = None, *,
          peer_listener: bool = False) -> None:
    """Add ``routes`` to ``app``'s router; a route whose ``auth`` is not open runs its guard first.

    ``peer_listener``: the validators' listener (only ``peer`` routes, catch-up), whose callers are
    authenticated by the link itself, serves its copy of a route without the client API's read rule.
    """
    guards = guards or {}
    for route in routes:
        handler = route.handler
        if peer_listener:
            if not route.peer:
                raise ValueError(f"route {route.method} {route.path} is not a peer route")
        elif route.auth == AUTH_READ:
            if route.rule is None:
                raise ValueError(f"route {route.method} {route.path} is signed-read without a read rule")
            handler = _guarded(route.rule.guard, handler)
        elif route.auth != AUTH_OPEN:
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
        if route.auth == AUTH_READ:
            op["summary"] = f"{op['summary']}. Readable by {route.rule.readers}"
            op["x-carecoin-access"] = {"rule": route.rule.name, "readers": route.rule.readers}
            op["security"] = [{"carecoinSignature": []}]
            op["responses"] = {**op["responses"], "401": {"$ref": "#/components/responses/Error"},
                               "403": {"$ref": "#/components/responses/Error"}}
        elif route.auth in AUTH_TEXT:
            op["security"] = [{"carecoinSignature": []}]
        else:
            op["security"] = []
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": description},
        "paths": paths,
        "components": {"securitySchemes": {"carecoinSignature": {
            "type": "apiKey", "in": "header", "name": "X-Carecoin-Signature", "description": SIGNATURE_TEXT}},
            "responses": {"Error": {"description": "error", "content": {"application/json": {
            "schema": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}}}}},
    }


def op(summary: str, ok: str, *errors: int, params: tuple = (), body: dict | None = None,
       content: str | tuple[str, ...] = "application/json") -> dict[str, Any]:
    """One OpenAPI operation: its parameters, request body schema, success response (of each ``content``
    type) and error responses."""
    types = (content,) if isinstance(content, str) else content
    operation: dict[str, Any] = {"summary": summary, "parameters": [dict(p) for p in params], "responses": {
        ok: {"description": "success", "content": {
            t: {"schema": {"type": "object"} if t == "application/json" else {"type": "string"}} for t in types}}}}
    for code in errors:
        operation["responses"][str(code)] = {"$ref": "#/components/responses/Error"}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return operation


def path_param(name: str, desc: str, **schema: Any) -> dict[str, Any]:
    """A path parameter: a string, narrowed by JSON-schema keywords (``pattern``, ``maxLength``, ...)."""
    return {"name": name, "in": "path", "required": True, "description": desc,
            "schema": {"type": "string", **schema}}


def query_param(name: str, desc: str, kind: str = "string", **schema: Any) -> dict[str, Any]:
    """An optional query parameter of JSON type ``kind``, narrowed by JSON-schema keywords."""
    return {"name": name, "in": "query", "required": False, "description": desc, "schema": {"type": kind, **schema}}


HEX32_PATTERN = "^[0-9a-fA-F]{64}$"


# ---- errors ---------------------------------------------------------------------------------------------

def error_response(code: str, message: str, status: int, headers: dict | None = None) -> web.Response:
    """The one error shape of the API."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler):
    """Turn typed errors (and aiohttp's own 400/404/405/413) into the JSON error shape.

    A client's malformed input is a ``BadRequest`` (400) raised by the parsing helpers below, a ledger
    refusal (``LedgerError``, 400 unless it says otherwise) or an aiohttp 4xx; anything else escaping a
    handler is a bug and answers 500 without details.
    """
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
        codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        message = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else exc.reason
        return error_response(codes.get(exc.status, "http_error"), message or "request refused", exc.status)
    except Exception as exc:  # a bug: say so, never leak a traceback to the client
        log.exception("%s %s failed", request.method, request.path)
        return error_response("internal", f"internal error ({type(exc).__name__}); this is a bug", 500)


# ---- parsing --------------------------------------------------------------------------------------------
# Every value a client sends is parsed here, and every way it can be wrong is a ``BadRequest`` (400) naming
# what was seen and what was expected: integers are ASCII digits only (``str.isdigit`` also takes "²" and
# "١٢٣"), bounded in length before ``int`` sees them; hex is ASCII hex only (``bytes.fromhex`` also skips
# spaces); JSON is strict UTF-8, bounded in depth and number size, without NaN/Infinity or lone surrogates.

MAX_INT_DIGITS = 20  # 2**64 has 20 digits: longer text is refused before int() sees it
MAX_JSON_DEPTH = 16  # the deepest body a route takes is 3 levels
MAX_SHOWN = 40  # characters of a refused value echoed back in the message
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


def show(text: Any) -> str:
    """A refused value as echoed in a message: its repr, cut to ``MAX_SHOWN`` characters."""
    text = str(text)
    return repr(text[:MAX_SHOWN]) + ("…" if len(text) > MAX_SHOWN else "")


def parse_hex(text: Any, what: str, *, size: int | None = None, max_bytes: int = 1 << 24,
              error: type[NodeError] | None = None) -> bytes:
    """Parse ASCII hex (``size`` bytes exactly when given, else at most ``max_bytes``) or raise ``BadRequest``."""
    error = error or BadRequest
    want = f"{2 * size} hex digits" if size is not None else f"hex digits (an even number, at most {2 * max_bytes})"
    if not isinstance(text, str):
        raise error(f"{what} is a JSON {_json_type(text)}; expected a string of {want}")
    if size is not None and len(text) != 2 * size:
        raise error(f"{what} has {len(text)} characters; expected {want}")
    if len(text) > 2 * max_bytes:
        raise error(f"{what} has {len(text)} characters; expected {want}")
    if not _HEX.fullmatch(text):
        raise error(f"{what} {show(text)} is not hex; expected {want}")
    return bytes.fromhex(text)


def parse_hex32(text: str, what: str) -> bytes:
    """Parse 64 hex digits or raise ``BadRequest`` naming what was seen."""
    return parse_hex(text, what, size=32)


def parse_int(text: str | None, what: str, lo: int, hi: int, default: int | None = None, *,
              error: type[NodeError] | None = None) -> int | None:
    """Parse a bounded integer of ASCII digits (a query, path or header value) or raise ``BadRequest``."""
    if text is None:
        return default
    if not (len(text) <= MAX_INT_DIGITS and _DIGITS.fullmatch(text)) or not lo <= int(text) <= hi:
        raise (error or BadRequest)(f"{what} {show(text)}: expected an integer {lo}..{hi} in ASCII digits")
    return int(text)


def parse_choice(text: str | None, what: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first when absent) or ``BadRequest``."""
    if text is None:
        return choices[0]
    if text not in choices:
        raise BadRequest(f"{what} {show(text)}: expected one of {', '.join(choices)}")
    return text


def parse_text(text: str | None, what: str, max_chars: int) -> str | None:
    """An optional free-text value of 1..``max_chars`` characters (valid Unicode) or ``BadRequest``."""
    if text is None:
        return None
    if not 0 < len(text) <= max_chars or _has_surrogate(text):
        raise BadRequest(f"{what} {show(text)} ({len(text)} characters): expected 1..{max_chars} characters "
                         "of valid Unicode")
    return text


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The request body, refused with ``BadRequest`` above ``max_bytes``."""
    body = await request.read()
    if len(body) > max_bytes:
        raise BadRequest(f"request body of {len(body)} bytes; at most {max_bytes}")
    return body


class _JsonLimit(ValueError):
    """A JSON value past this API's limits (raised inside ``json.loads``)."""


def _json_number(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _JsonLimit(f"a number of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _json_constant(name: str) -> Any:
    raise _JsonLimit(f"{name} (not a JSON number)")


def parse_json(body: bytes, expected: str) -> Any:
    """Parse a JSON body or raise ``BadRequest`` saying what was seen and what was ``expected``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body is not UTF-8 (byte {exc.start}); expected JSON {expected}") from None
    try:
        value = json.loads(text, parse_int=_json_number, parse_constant=_json_constant)
    except _JsonLimit as exc:
        raise BadRequest(f"body holds {exc}; expected JSON {expected}") from None
    except ValueError as exc:  # JSONDecodeError
        raise BadRequest(f"body is not JSON ({exc}); expected {expected}") from None
    except RecursionError:
        raise BadRequest(f"body nests deeper than {MAX_JSON_DEPTH} levels; expected {expected}") from None
    _check_json(value, 0, expected)
    return value


def _check_json(value: Any, depth: int, expected: str) -> None:
    if depth > MAX_JSON_DEPTH:
        raise BadRequest(f"body nests deeper than {MAX_JSON_DEPTH} levels; expected {expected}")
    if isinstance(value, str):
        if _has_surrogate(value):
            raise BadRequest(f"body holds a string with a lone UTF-16 surrogate; expected {expected}")
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1, expected)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json(key, depth + 1, expected)
            _check_json(item, depth + 1, expected)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def require_object(doc: Any, fields: Mapping[str, type], expected: str) -> dict[str, Any]:
    """``doc`` as a JSON object whose required ``fields`` have the given types, or ``BadRequest``."""
    if not isinstance(doc, dict):
        raise BadRequest(f"body is a JSON {_json_type(doc)}; expected {expected}")
    for name, kind in fields.items():
        if name not in doc:
            raise BadRequest(f"body has no {name!r}; expected {expected}")
        if not isinstance(doc[name], kind) or (kind is int and isinstance(doc[name], bool)):
            raise BadRequest(f"{name!r} is a JSON {_json_type(doc[name])}; expected {expected}")
    return doc
