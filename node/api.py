"""The client HTTP API of a node (aiohttp): JSON with hex bytes, described by ``/openapi.json``.

``create_app(service)`` returns the application; a ``cleanup_ctx`` starts and stops the service with it
(pass ``manage_service=False`` when something else owns the service's lifecycle). Every error, including
unknown routes and wrong methods, is JSON ``{"error": {"code", "message"}}`` with the status from the
error's ``http_status``; a 5xx means a bug. ``add_sync_routes`` mounts the two block routes catch-up needs
on another app (the node's peer listener), so a node syncs from its peers' listeners without knowing
their API addresses.
"""

from __future__ import annotations

import json
import logging
from typing import Any, AsyncIterator, Awaitable, Callable

from aiohttp import web

from ledger.block import encode_certificate
from ledger.errors import LedgerError, NotFound
from ledger.receipt import encode_compact
from node.errors import MempoolFull, NodeError
from node.metrics import CONTENT_TYPE
from node.service import NodeService

log = logging.getLogger("carecoin.api")

SERVICE_KEY: web.AppKey[NodeService] = web.AppKey("service", NodeService)
MAX_BODY_BYTES = 256 * 1024
MAX_BATCH_TXS = 1000
MAX_BATCH_BODY_BYTES = 4 * 1024 * 1024
MAX_HISTORY_LIMIT = 1000
MAX_HISTORY_SCAN = 100_000


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


def error_response(code: str, message: str, status: int, headers: dict | None = None) -> web.Response:
    """The one error shape of the API."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
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


# ---- parsing helpers ------------------------------------------------------------------------------------

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


def _svc(request: web.Request) -> NodeService:
    return request.app[SERVICE_KEY]


# ---- handlers -------------------------------------------------------------------------------------------

async def post_tx(request: web.Request) -> web.Response:
    """POST /v1/tx {"tx": hex envelope} -> 202 {"tx_hash", "status": "pending"}."""
    body = await request.read()
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"request body of {len(body)} bytes; at most {MAX_BODY_BYTES}")
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest('body is not JSON; expected {"tx": "<hex envelope>"}') from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tx"), str):
        raise BadRequest('expected a JSON object {"tx": "<hex envelope>"}')
    try:
        raw = bytes.fromhex(doc["tx"])
    except ValueError:
        raise BadRequest("tx is not hex; expected the hex of the canonical envelope") from None
    svc = _svc(request)
    try:
        tx = svc.submit_tx(raw)
    except (LedgerError, NodeError) as exc:
        svc.metrics.rejected_txs.labels(exc.code).inc()
        raise
    return web.json_response({"tx_hash": tx.tx_hash.hex(), "status": "pending"}, status=202)


async def post_txs(request: web.Request) -> web.Response:
    """POST /v1/txs {"txs": [hex envelope, ...]} -> 200 {"results": [{"tx_hash", "status"} | {"error"}, ...]}.

    One result per tx, in order: ``{"tx_hash", "status": "pending"}`` when admitted, else
    ``{"error": {"code", "message"}}`` (plus ``retry_after`` for ``mempool_full``/``sender_limit``). The
    admitted txs are gossiped to peers in one frame per peer. A malformed body refuses the whole batch.
    """
    body = await request.read()
    if len(body) > MAX_BATCH_BODY_BYTES:
        raise BadRequest(f"request body of {len(body)} bytes; at most {MAX_BATCH_BODY_BYTES}")
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest('body is not JSON; expected {"txs": ["<hex envelope>", ...]}') from None
    txs = doc.get("txs") if isinstance(doc, dict) else None
    if not isinstance(txs, list) or not all(isinstance(t, str) for t in txs):
        raise BadRequest('expected a JSON object {"txs": ["<hex envelope>", ...]}')
    if not 1 <= len(txs) <= MAX_BATCH_TXS:
        raise BadRequest(f"batch of {len(txs)} txs; expected 1..{MAX_BATCH_TXS}")
    raws = []
    for i, text in enumerate(txs):
        try:
            raws.append(bytes.fromhex(text))
        except ValueError:
            raise BadRequest(f"txs[{i}] is not hex; expected the hex of the canonical envelope") from None
    svc = _svc(request)
    results = []
    for outcome in await svc.submit_txs_chunked(raws):
        if isinstance(outcome, Exception):
            code = getattr(outcome, "code", "error")
            svc.metrics.rejected_txs.labels(code).inc()
            err: dict[str, Any] = {"error": {"code": code, "message": getattr(outcome, "message", str(outcome))}}
            if isinstance(outcome, MempoolFull):
                err["retry_after"] = outcome.retry_after
            results.append(err)
        else:
            results.append({"tx_hash": outcome.tx_hash.hex(), "status": "pending"})
    return web.json_response({"results": results})


async def get_tx(request: web.Request) -> web.Response:
    """GET /v1/tx/{hash}: pending / committed / evicted (404 with status unknown when never seen)."""
    tx_hash = parse_hex32(request.match_info["hash"], "tx hash")
    doc = _svc(request).get_tx_status(tx_hash)
    if doc["status"] == "unknown":
        return web.json_response({"error": {"code": "unknown_tx",
                                            "message": f"tx {tx_hash.hex()} is neither pending nor committed here"},
                                  "tx_hash": tx_hash.hex(), "status": "unknown"}, status=404)
    return web.json_response(doc)


async def get_receipt(request: web.Request) -> web.Response:
    """GET /v1/tx/{hash}/receipt: receipt JSON, or compact msgpack with ?format=msgpack."""
    tx_hash = parse_hex32(request.match_info["hash"], "tx hash")
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "msgpack"):
        raise BadRequest(f"format must be json or msgpack, got {fmt[:20]!r}")
    receipt = _svc(request).get_receipt(tx_hash)
    if fmt == "msgpack":
        return web.Response(body=encode_compact(receipt), content_type="application/msgpack")
    return web.json_response(receipt)


async def get_account(request: web.Request) -> web.Response:
    """GET /v1/accounts/{id}: balance, nonce, next_nonce, roles."""
    account = parse_hex32(request.match_info["id"], "account id")
    return web.json_response(_svc(request).get_account(account))


async def get_history(request: web.Request) -> web.Response:
    """GET /v1/accounts/{id}/history?limit=&before=&scan=: txs touching the account, newest first."""
    account = parse_hex32(request.match_info["id"], "account id")
    q = request.query
    limit = parse_int(q.get("limit"), "limit", 1, MAX_HISTORY_LIMIT, 50)
    before = parse_int(q.get("before"), "before", 1, 2**63, None)
    scan = parse_int(q.get("scan"), "scan", 1, MAX_HISTORY_SCAN, 5000)
    return web.json_response(_svc(request).get_history(account, limit, before, scan))


def block_json(svc: NodeService, height: int) -> dict[str, Any]:
    """Header fields, tx hashes and certificate of the block at ``height``."""
    block = svc.store.get_block(height)
    seals = svc.store.get_certificate(height)
    h = block.header
    return {
        "height": h.height, "block_hash": block.hash.hex(), "chain_id": h.chain_id,
        "prev_hash": h.prev_hash.hex(), "timestamp_ms": h.timestamp_ms, "proposer": h.proposer.hex(),
        "tx_count": h.tx_count, "results_root": h.results_root.hex(), "state_root": h.state_root.hex(),
        "validator_set_hash": h.validator_set_hash.hex(), "next_validator_set_hash": h.next_validator_set_hash.hex(),
        "txs": [h.hex() for h in svc.get_block_tx_hashes(height)],
        "certificate": [{"validator": s.validator.hex(), "signature": s.signature.hex()} for s in seals],
    }


def raw_block_json(svc: NodeService, height: int) -> dict[str, Any]:
    """The encoded block and certificate (hex) at ``height``: what catch-up verifies and commits."""
    block = svc.store.get_block(height)
    return {"height": height, "block_hash": block.hash.hex(), "block": block.encode().hex(),
            "certificate": encode_certificate(svc.store.get_certificate(height)).hex()}


async def get_block(request: web.Request) -> web.Response:
    """GET /v1/blocks/{height} or /v1/blocks/latest; ?format=raw for the encoded block + certificate."""
    svc = _svc(request)
    text = request.match_info["height"]
    head = svc.store.head().height
    height = head if text == "latest" else parse_int(text, "height", 0, 2**63)
    if height > head:
        raise NotFound(f"block {height} is not committed here; the head is {head}")
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "raw"):
        raise BadRequest(f"format must be json or raw, got {fmt[:20]!r}")
    return web.json_response(raw_block_json(svc, height) if fmt == "raw" else block_json(svc, height))


async def get_status(request: web.Request) -> web.Response:
    """GET /v1/status."""
    return web.json_response(_svc(request).get_status())


async def get_openapi(request: web.Request) -> web.Response:
    """GET /openapi.json: the hand-written OpenAPI 3.1 description of every route."""
    return web.json_response(OPENAPI)


async def get_metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text exposition from the node's own registry."""
    body = _svc(request).metrics.render()
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE
    return resp


# ---- the OpenAPI document -------------------------------------------------------------------------------

def _op(summary: str, ok: str, *errors: int, params: tuple = (), body: bool = False, batch: bool = False,
        content: str = "application/json") -> dict[str, Any]:
    """One OpenAPI operation: its parameters, success response and error responses."""
    op: dict[str, Any] = {"summary": summary, "parameters": [dict(p) for p in params], "responses": {
        ok: {"description": "success", "content": {content: {"schema": {"type": "object"} if
                                                             content == "application/json" else
                                                             {"type": "string"}}}}}}
    for code in errors:
        op["responses"][str(code)] = {"$ref": "#/components/responses/Error"}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["tx"],
            "properties": {"tx": {"type": "string", "description": "hex of the canonical tx envelope"}}}}}}
    if batch:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["txs"],
            "properties": {"txs": {"type": "array", "maxItems": MAX_BATCH_TXS, "items": {
                "type": "string", "description": "hex of a canonical tx envelope"}}}}}}}
    return op


def _path_param(name: str, desc: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": desc, "schema": {"type": "string"}}


def _query(name: str, desc: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": desc, "schema": {"type": kind}}


_HASH = _path_param("hash", "tx hash, 64 hex digits")
_ID = _path_param("id", "account id (public key), 64 hex digits")
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "carecoin node API", "version": "1",
             "description": "Bytes are lowercase hex. Every error is {\"error\": {\"code\", \"message\"}}."},
    "paths": {
        "/v1/tx": {"post": _op("Submit a signed transaction (gossiped to peers)", "202", 400, 409, 413, 429, 503,
                               body=True)},
        "/v1/txs": {"post": _op(f"Submit up to {MAX_BATCH_TXS} signed transactions; one result per tx, in order "
                                "({tx_hash, status: pending} or {error: {code, message}})", "200", 400, 413,
                                batch=True)},
        "/v1/tx/{hash}": {"get": _op("Tx status: pending, committed (applied or failed, with height, index, "
                                     "status code, reason), evicted (with reason)", "200", 400, 404,
                                     params=(_HASH,))},
        "/v1/tx/{hash}/receipt": {"get": _op("Receipt of a committed tx (DESIGN receipt JSON; compact msgpack "
                                             "with ?format=msgpack)", "200", 400, 404,
                                             params=(_HASH, _query("format", "json | msgpack")))},
        "/v1/accounts/{id}": {"get": _op("Balance, nonce, next nonce and roles", "200", 400, params=(_ID,))},
        "/v1/accounts/{id}/history": {"get": _op(
            "Txs sent by or touching the account, newest first", "200", 400,
            params=(_ID, _query("limit", "1..1000, default 50", "integer"),
                    _query("before", "only blocks below this height", "integer"),
                    _query("scan", "at most this many blocks are scanned, default 5000; page with before=next_before", "integer")))},
        "/v1/blocks/{height}": {"get": _op(
            "Block header fields, tx hashes and commit certificate ('latest' for the head); ?format=raw gives "
            "the encoded block and certificate", "200", 400, 404,
            params=(_path_param("height", "a height or 'latest'"), _query("format", "json | raw")))},
        "/v1/status": {"get": _op("Chain id, node, height, last block hash, round, peers, mempool, validator",
                                  "200")},
        "/openapi.json": {"get": _op("This document", "200")},
        "/metrics": {"get": _op("Prometheus metrics", "200", content="text/plain")},
    },
    "components": {"responses": {"Error": {"description": "error", "content": {"application/json": {"schema": {
        "type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}}}}},
}


# ---- app factory ----------------------------------------------------------------------------------------

def add_sync_routes(app: web.Application, service: NodeService) -> None:
    """Mount GET /v1/blocks/{height} (latest, ?format=raw) on ``app`` for peers' catch-up."""
    app[SERVICE_KEY] = service
    app.router.add_get("/v1/blocks/{height}", get_block)


def create_app(service: NodeService, *, manage_service: bool = True) -> web.Application:
    """Build the client API application for ``service`` (starting and stopping it with the app by default)."""
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BATCH_BODY_BYTES)
    app[SERVICE_KEY] = service
    r = app.router
    r.add_post("/v1/tx", post_tx)
    r.add_post("/v1/txs", post_txs)
    r.add_get("/v1/tx/{hash}", get_tx)
    r.add_get("/v1/tx/{hash}/receipt", get_receipt)
    r.add_get("/v1/accounts/{id}", get_account)
    r.add_get("/v1/accounts/{id}/history", get_history)
    r.add_get("/v1/blocks/{height}", get_block)
    r.add_get("/v1/status", get_status)
    r.add_get("/openapi.json", get_openapi)
    r.add_get("/metrics", get_metrics)
    from node.api_domain import add_domain_routes  # issue 6 domain routes; imported here: it imports this module
    add_domain_routes(app, service)
    if manage_service:
        app.cleanup_ctx.append(_service_ctx)
    return app


async def _service_ctx(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE_KEY]
    await service.start()
    yield
    await service.stop()
