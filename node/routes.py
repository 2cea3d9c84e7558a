"""The client API's route table and handlers: every route is one ``Route`` line in ``ROUTES``.

To add a route: write its handler here and add one line to ``ROUTES`` (method, path, handler, auth, OpenAPI
operation). ``node.app`` mounts the table on the router and ``OPENAPI`` (served at ``/openapi.json``) is
built from the same table. Handlers parse the request (``node.http``), call a read (``node.reads``,
``node.analytics``) or admission, and answer JSON with hex bytes.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ledger.errors import LedgerError
from ledger.receipt_compact import encode_compact
from node.app_keys import NODE_KEY, REPORT_KEY
from node.errors import MempoolFull, NodeError
from node.http import (
    AUTH_OPEN, AUTH_READ, AUTH_SIGNED, AUTH_STAFF_SIGNED, HEX32_PATTERN, BadRequest, Route, build_openapi, op, parse_choice,
    parse_hex, parse_hex32, parse_int, parse_json, parse_text, path_param, query_param, read_body, require_object, show,
)
from node.list_routes import LIST_SUMMARY, ORDER_LIST, ORDER_LIST_PARAMS, TICKET_LIST, TICKET_LIST_PARAMS, get_orders, get_tickets
from node.metrics import CONTENT_TYPE
from node.page import PAGE_OPS, get_index, get_static
from node import governance_reads, reads
from node.audit import AUDIT_PARAMS, get_audit
from node.event_stream import EVENT_OPS, EVENTS, get_events
from node.webhook_routes import WEBHOOK_OPS, delete_webhook, get_dead_letters, get_webhooks, post_redrive, post_webhook
from node.health import get_livez, get_readyz
from node.read_access import ACCOUNT, CHAIN, ORDER, ROLE_HOLDERS, TICKET, TX
from node.vault_routes import (
    TEXT_BODY, VAULT_BODY, get_vault_customer, get_vault_text, post_vault_customer, post_vault_text,
)

log = logging.getLogger("carecoin.api")

MAX_BODY_BYTES = 256 * 1024
MAX_BATCH_TXS = 1000
MAX_BATCH_BODY_BYTES = 4 * 1024 * 1024
MAX_HISTORY_LIMIT = 1000
MAX_HISTORY_SCAN = 100_000
DEFAULT_HISTORY_SCAN = 1000
MAX_HEIGHT = MAX_TIME_MS = MAX_VERSION = 2**63 - 1
MAX_BRANCH_CHARS = 64
REQUEST_CATCH_UP = 10_000  # blocks a request may index before it answers (report, vault read)


class AnalyticsOff(NodeError):
    """This node runs without the analytics follower."""

    code = "analytics_off"
    http_status = 503


def parse_id(text: str, what: str) -> str:
    """An order/ticket id from a path (1..64 bytes of printable text) or ``BadRequest``."""
    if parse_text(text, what, 64) is None or not reads.is_id(text):
        raise BadRequest(f"{what} {show(text)}: expected 1..64 bytes of printable text without surrounding spaces")
    return text


def _account(request: web.Request) -> bytes:
    return parse_hex32(request.match_info["id"], "account id")


# ---- transactions ---------------------------------------------------------------------------------------

async def post_tx(request: web.Request) -> web.Response:
    """POST /v1/tx {"tx": hex envelope} -> 202 {"tx_hash", "status": "pending"}."""
    expected = '{"tx": "<hex of the canonical envelope>"}'
    doc = require_object(parse_json(await read_body(request, MAX_BODY_BYTES), expected), {"tx": str}, expected)
    raw = parse_hex(doc["tx"], "tx", max_bytes=MAX_BODY_BYTES)
    node = request.app[NODE_KEY]
    try:
        tx = node.admission.submit_tx(raw)
    except (LedgerError, NodeError) as exc:
        node.metrics.rejected_txs.labels(exc.code).inc()
        raise
    return web.json_response({"tx_hash": tx.tx_hash.hex(), "status": "pending"}, status=202)


async def post_txs(request: web.Request) -> web.Response:
    """POST /v1/txs {"txs": [hex envelope, ...]} -> 200 {"results": [{"tx_hash", "status"} | {"error"}, ...]}.

    One result per tx, in order: ``{"tx_hash", "status": "pending"}`` when admitted, else
    ``{"error": {"code", "message"}}`` (plus ``retry_after`` for ``mempool_full``/``sender_limit``). The
    admitted txs are gossiped to peers in one frame per peer. A malformed body refuses the whole batch.
    """
    expected = '{"txs": ["<hex of a canonical envelope>", ...]}'
    doc = require_object(parse_json(await read_body(request, MAX_BATCH_BODY_BYTES), expected), {"txs": list},
                         expected)
    txs = doc["txs"]
    if not 1 <= len(txs) <= MAX_BATCH_TXS:
        raise BadRequest(f"batch of {len(txs)} txs; expected 1..{MAX_BATCH_TXS}")
    raws = [parse_hex(text, f"txs[{i}]", max_bytes=MAX_BATCH_BODY_BYTES) for i, text in enumerate(txs)]
    node = request.app[NODE_KEY]
    results = []
    for outcome in await node.admission.submit_txs_chunked(raws):
        if isinstance(outcome, Exception):
            code = getattr(outcome, "code", "error")
            node.metrics.rejected_txs.labels(code).inc()
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
    doc = request.app[NODE_KEY].reads.get_tx_status(tx_hash)
    if doc["status"] == "unknown":
        return web.json_response({"error": {"code": "unknown_tx",
                                            "message": f"tx {tx_hash.hex()} is neither pending nor committed here"},
                                  "tx_hash": tx_hash.hex(), "status": "unknown"}, status=404)
    return web.json_response(doc)


async def get_receipt(request: web.Request) -> web.Response:
    """GET /v1/tx/{hash}/receipt: receipt JSON, or compact msgpack with ?format=msgpack."""
    tx_hash = parse_hex32(request.match_info["hash"], "tx hash")
    fmt = parse_choice(request.query.get("format"), "format", ("json", "msgpack"))
    receipt = reads.get_receipt(request.app[NODE_KEY].store, tx_hash)
    if fmt == "msgpack":
        return web.Response(body=encode_compact(receipt), content_type="application/msgpack")
    return web.json_response(receipt)


# ---- accounts and chain ---------------------------------------------------------------------------------

async def get_account(request: web.Request) -> web.Response:
    """GET /v1/accounts/{id} and /v1/accounts/{id}/coin: the one account document."""
    return web.json_response(request.app[NODE_KEY].reads.get_account(_account(request)))


async def get_proof(request: web.Request) -> web.Response:
    """GET /v1/accounts/{id}/proof: SMT proofs of the account's state against the head header + certificate."""
    account = _account(request)
    node = request.app[NODE_KEY]
    return web.json_response(reads.build_account_proof(node.store, node.chain_id, account))


async def get_history(request: web.Request) -> web.Response:
    """GET /v1/accounts/{id}/history?limit=&before=&scan=: txs touching the account, newest first.

    One page costs the event loop at most ``reads.HISTORY_BUDGET_S`` (plus one block): it may end early;
    the client continues with ``before=next_before``."""
    account = _account(request)
    q = request.query
    limit = parse_int(q.get("limit"), "limit", 1, MAX_HISTORY_LIMIT, 50)
    before = parse_int(q.get("before"), "before", 1, MAX_HEIGHT, None)
    scan = parse_int(q.get("scan"), "scan", 1, MAX_HISTORY_SCAN, DEFAULT_HISTORY_SCAN)
    return web.json_response(reads.get_history(request.app[NODE_KEY].store, account, limit, before, scan))


async def get_block(request: web.Request) -> web.Response:
    """GET /v1/blocks/{height} or /v1/blocks/latest; ?format=raw for the encoded block + certificate."""
    node = request.app[NODE_KEY]
    height = reads.get_block_height(node.store, request.match_info["height"],
                                    lambda text: parse_int(text, "height", 0, MAX_HEIGHT))
    fmt = parse_choice(request.query.get("format"), "format", ("json", "raw"))
    return web.json_response(reads.get_raw_block(node.store, height) if fmt == "raw" else node.reads.get_block(height))


async def get_status(request: web.Request) -> web.Response:
    """GET /v1/status."""
    return web.json_response(request.app[NODE_KEY].reads.get_status())


# ---- domain records -------------------------------------------------------------------------------------

async def get_ticket(request: web.Request) -> web.Response:
    """GET /v1/tickets/{id}."""
    ticket_id = parse_id(request.match_info["id"], "ticket id")
    return web.json_response(reads.get_ticket_view(request.app[NODE_KEY].store, ticket_id))


async def get_order(request: web.Request) -> web.Response:
    """GET /v1/orders/{id}."""
    order_id = parse_id(request.match_info["id"], "order id")
    return web.json_response(reads.get_order_view(request.app[NODE_KEY].store, order_id))


async def get_policy(request: web.Request) -> web.Response:
    """GET /v1/policy[?version=N]."""
    version = parse_int(request.query.get("version"), "version", 0, MAX_VERSION)
    return web.json_response(reads.get_policy_view(request.app[NODE_KEY].store, version))


async def get_customer(request: web.Request) -> web.Response:
    """GET /v1/customers/{id}: the on-chain record only."""
    account = parse_hex32(request.match_info["id"], "customer id")
    return web.json_response(reads.get_customer_view(request.app[NODE_KEY].store, account))


async def get_report(request: web.Request) -> web.Response:
    """GET /v1/report?branch=&since=&until=."""
    q = request.query
    branch = parse_text(q.get("branch"), "branch", MAX_BRANCH_CHARS)
    since = parse_int(q.get("since"), "since (ms)", 0, MAX_TIME_MS)
    until = parse_int(q.get("until"), "until (ms)", 0, MAX_TIME_MS)
    if since is not None and until is not None and until <= since:
        raise BadRequest(f"until {until} must be after since {since}")
    index = request.app.get(REPORT_KEY)
    if index is None:
        raise AnalyticsOff("this node runs without analytics; /v1/report is not served here")
    index.catch_up(REQUEST_CATCH_UP)
    return web.json_response(index.report(branch, since, until))


# ---- governance ---------------------------------------------------------------------------------------

async def get_proposals(request: web.Request) -> web.Response:
    """GET /v1/governance/proposals?status=&offset=&limit=: open first, then expired, then decided."""
    q = request.query
    status = None if q.get("status") is None else parse_choice(q["status"], "status", governance_reads.STATUSES)
    offset = parse_int(q.get("offset"), "offset", 0, governance_reads.MAX_PROPOSAL_SCAN, 0)
    limit = parse_int(q.get("limit"), "limit", 1, governance_reads.MAX_PROPOSAL_PAGE, 50)
    return web.json_response(governance_reads.list_proposals(request.app[NODE_KEY].store, status, offset, limit))


async def get_proposal(request: web.Request) -> web.Response:
    """GET /v1/governance/proposals/{id}: the proposal document (404 when there is none)."""
    proposal_id = parse_id(request.match_info["id"], "proposal id")
    return web.json_response(governance_reads.get_proposal_view(request.app[NODE_KEY].store, proposal_id))


async def get_campaigns(request: web.Request) -> web.Response:
    """GET /v1/campaigns: the active campaigns governance decided."""
    return web.json_response(governance_reads.list_campaigns(request.app[NODE_KEY].store))


# ---- about the node -------------------------------------------------------------------------------------

async def get_openapi(request: web.Request) -> web.Response:
    """GET /openapi.json: the OpenAPI 3.1 description of every route (built from ``ROUTES``)."""
    return web.json_response(OPENAPI)


async def get_metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text exposition from the node's own registry."""
    resp = web.Response(body=request.app[NODE_KEY].metrics.render())
    resp.headers["Content-Type"] = CONTENT_TYPE
    return resp


# ---- the table ------------------------------------------------------------------------------------------

_HASH = path_param("hash", "tx hash, 64 hex digits", pattern=HEX32_PATTERN)
_ID = path_param("id", "account id (public key), 64 hex digits", pattern=HEX32_PATTERN)
_OBJ_ID = path_param("id", "1..64 bytes of printable text without surrounding spaces", minLength=1, maxLength=64)
_HEX = {"type": "string", "pattern": "^([0-9a-fA-F]{2})*$"}
_HEX32 = {"type": "string", "pattern": HEX32_PATTERN}
_TX_BODY = {"type": "object", "required": ["tx"],
            "properties": {"tx": {**_HEX, "description": "hex of the canonical tx envelope"}}}
_TXS_BODY = {"type": "object", "required": ["txs"], "properties": {"txs": {
    "type": "array", "minItems": 1, "maxItems": MAX_BATCH_TXS,
    "items": {**_HEX, "description": "hex of a canonical tx envelope"}}}}
_ACCOUNT = ("The account document at the head block time: spendable balance, nonce, next nonce (counting pending "
            "txs), lots expiring in 30 days, tier, privileges, freeze, KYC level, roles")

ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/tx", post_tx, AUTH_OPEN, op(
        "Submit a signed transaction (gossiped to peers)", "202", 400, 409, 413, 429, 503, body=_TX_BODY)),
    Route("POST", "/v1/txs", post_txs, AUTH_OPEN, op(
        f"Submit up to {MAX_BATCH_TXS} signed transactions; one result per tx, in order ({{tx_hash, status: "
        "pending}} or {error: {code, message}})", "200", 400, 413, body=_TXS_BODY)),
    Route("GET", "/v1/tx/{hash}", get_tx, AUTH_READ, rule=TX, operation=op(
        "Tx status: pending, committed (applied or failed, with height, index, status code, reason), evicted "
        "(with reason)", "200", 400, 404, params=(_HASH,))),
    Route("GET", "/v1/tx/{hash}/receipt", get_receipt, AUTH_READ, rule=TX, operation=op(
        "Receipt of a committed tx (DESIGN receipt JSON; compact msgpack with ?format=msgpack)", "200", 400, 404,
        content=("application/json", "application/msgpack"),
        params=(_HASH, query_param("format", "json (default) | msgpack", enum=["json", "msgpack"])))),
    Route("GET", "/v1/accounts/{id}", get_account, AUTH_READ, rule=ACCOUNT, operation=op(_ACCOUNT, "200", 400, params=(_ID,))),
    Route("GET", "/v1/accounts/{id}/coin", get_account, AUTH_READ, rule=ACCOUNT, operation=op(
        _ACCOUNT + " (same document as /v1/accounts/{id})", "200", 400, params=(_ID,))),
    Route("GET", "/v1/accounts/{id}/proof", get_proof, AUTH_READ, rule=ACCOUNT, operation=op(
        "SMT proofs of the account's state keys against the head header and its commit certificate (check "
        "offline: carecoin account verify-proof)", "200", 400, params=(_ID,))),
    Route("GET", "/v1/accounts/{id}/history", get_history, AUTH_READ, rule=ACCOUNT, operation=op(
        "Txs sent by or touching the account, newest first. A page ends at a block boundary when `limit` "
        "items are found, `scan` blocks are read or the node's time budget for one page "
        f"({int(reads.HISTORY_BUDGET_S * 1000)} ms) is spent, so it may hold fewer than `limit` items with more "
        "below: continue with before=`next_before` until it is null; `scanned_to` is the lowest height read. "
        "Paging this way never skips or repeats a tx", "200", 400,
        params=(_ID, query_param("limit", f"1..{MAX_HISTORY_LIMIT}, default 50", "integer", minimum=1,
                                 maximum=MAX_HISTORY_LIMIT),
                query_param("before", "only blocks below this height", "integer", minimum=1, maximum=MAX_HEIGHT),
                query_param("scan", f"at most this many blocks are scanned, default {DEFAULT_HISTORY_SCAN} "
                                    "(the time budget may end a page sooner); page with before=next_before",
                            "integer", minimum=1, maximum=MAX_HISTORY_SCAN)))),
    Route("GET", "/v1/blocks/{height}", get_block, AUTH_READ, rule=CHAIN, operation=op(
        "Block header fields, tx hashes and commit certificate ('latest' for the head); ?format=raw gives the "
        "encoded block and certificate", "200", 400, 404,
        params=(path_param("height", "a height or 'latest'", pattern="^([0-9]{1,19}|latest)$"),
                query_param("format", "json (default) | raw", enum=["json", "raw"]))), peer=True),
    Route("GET", "/v1/status", get_status, AUTH_OPEN, op(
        "Chain id, node, height, last block hash, round, peers, mempool, validator", "200")),
    Route("GET", "/v1/tickets/{id}", get_ticket, AUTH_READ, rule=TICKET, operation=op(
        "A ticket: state, category, priority, times (first response, resolution)", "200", 400, 404,
        params=(_OBJ_ID,))),
    Route("GET", "/v1/orders/{id}", get_order, AUTH_READ, rule=ORDER, operation=op(
        "An order: amounts, coins paid, earned, refund, status", "200", 400, 404, params=(_OBJ_ID,))),
    Route("GET", "/v1/tickets", get_tickets, AUTH_READ, rule=TICKET_LIST, operation=op(
        "Tickets of a branch (branch=) or a customer (customer=), optionally in some states, by opening time. "
        + LIST_SUMMARY, "200", 400, 503, params=TICKET_LIST_PARAMS)),
    Route("GET", "/v1/orders", get_orders, AUTH_READ, rule=ORDER_LIST, operation=op(
        "A customer's orders (customer=), by creation time. " + LIST_SUMMARY, "200", 400, 503,
        params=ORDER_LIST_PARAMS)),
    Route("GET", "/v1/policy", get_policy, AUTH_OPEN, op(
        "Every policy parameter at a version (default current) and the change history", "200", 400, 404,
        params=(query_param("version", "0 = genesis .. current", "integer", minimum=0, maximum=MAX_VERSION),))),
    Route("GET", "/v1/customers/{id}", get_customer, AUTH_READ, rule=ACCOUNT, operation=op(
        "A customer's on-chain record (KYC, commitment, branch, erasure); never personal data", "200", 400, 404,
        params=(_ID,))),
    Route("GET", "/v1/report", get_report, AUTH_READ, rule=ROLE_HOLDERS, operation=op(
        "Analytics per branch and period: coins minted/earned/redeemed/expired/compensated, orders, tickets by "
        "state and category, mean first-response and resolution ms, SLA breaches, ratings", "200", 400, 503,
        params=(query_param("branch", "one branch (default all)", minLength=1, maxLength=MAX_BRANCH_CHARS),
                query_param("since", "block time >= this (ms)", "integer", minimum=0, maximum=MAX_TIME_MS),
                query_param("until", "block time < this (ms), after since", "integer", minimum=0,
                            maximum=MAX_TIME_MS)))),
    Route("GET", "/v1/governance/proposals", get_proposals, AUTH_OPEN, op(
        "Governance proposals, open first, then expired, then decided (newest first in each); a page of the "
        f"first {governance_reads.MAX_PROPOSAL_SCAN} found", "200", 400,
        params=(query_param("status", "only this status", enum=list(governance_reads.STATUSES)),
                query_param("offset", "skip this many", "integer", minimum=0,
                            maximum=governance_reads.MAX_PROPOSAL_SCAN),
                query_param("limit", f"1..{governance_reads.MAX_PROPOSAL_PAGE}, default 50", "integer", minimum=1,
                            maximum=governance_reads.MAX_PROPOSAL_PAGE)))),
    Route("GET", "/v1/governance/proposals/{id}", get_proposal, AUTH_OPEN, op(
        "A governance proposal: action and arguments, proposer, approvals by branch, quorum, status "
        "(open/expired/decided) and what the decision did", "200", 400, 404, params=(_OBJ_ID,))),
    Route("GET", "/v1/campaigns", get_campaigns, AUTH_OPEN, op(
        "The active campaigns: trigger, conditions, limits, effect, budget spent and left", "200")),
    Route("POST", "/v1/vault/customers", post_vault_customer, AUTH_STAFF_SIGNED, op(
        "Store a customer's personal data in this node's vault; returns salt and commitment for "
        "register-customer. Once registered, the salt and data must open the on-chain commitment (409); an erased "
        "customer is refused (410).", "201", 400, 403, 409, 410, 413, 503, body=VAULT_BODY)),
    Route("GET", "/v1/vault/customers/{id}", get_vault_customer, AUTH_STAFF_SIGNED, op(
        "Decrypted personal data from this node's vault (410 once erased).", "200", 400, 403, 404, 410, 503,
        params=(_ID,))),
    Route("POST", "/v1/vault/texts", post_vault_text, AUTH_SIGNED, op(
        "Store the text behind an on-chain commitment H('carecoin/v1/text', salt || text) (a ticket message, "
        "response, resolution, reason, memo), encrypted under the customer's vault key, before the tx that "
        "carries the commitment. Signed by the customer or by staff of their branch (or of the ticket's/order's "
        "branch); 409 when salt and text do not open the commitment, 410 once the customer is erased.",
        "201", 200, 400, 403, 409, 410, 413, 503, body=TEXT_BODY)),
    Route("GET", "/v1/vault/texts/{commitment}", get_vault_text, AUTH_SIGNED, op(
        "A text record: kind, text, salt (anyone can then check the commitment). Read by the customer, staff "
        "of their branch or of the ticket's/order's branch, compliance and auditors; 410 once erased.",
        "200", 400, 403, 404, 410, 503,
        params=(path_param("commitment", "the text's commitment, 64 hex digits", pattern=HEX32_PATTERN),))),
    Route("GET", "/v1/audit", get_audit, AUTH_SIGNED, op(
        "Audit trail of personal-data reads (compliance, auditors)", "200", 400, 401, 403, params=AUDIT_PARAMS)),
    Route("GET", "/v1/events", get_events, AUTH_READ, rule=EVENTS, operation=EVENT_OPS["stream"]),
    Route("POST", "/v1/webhooks", post_webhook, AUTH_SIGNED, WEBHOOK_OPS["add"]),
    Route("GET", "/v1/webhooks", get_webhooks, AUTH_SIGNED, WEBHOOK_OPS["list"]),
    Route("DELETE", "/v1/webhooks/{id}", delete_webhook, AUTH_SIGNED, WEBHOOK_OPS["delete"]),
    Route("GET", "/v1/webhooks/{id}/dead-letters", get_dead_letters, AUTH_SIGNED, WEBHOOK_OPS["dead-letters"]),
    Route("POST", "/v1/webhooks/{id}/dead-letters/redrive", post_redrive, AUTH_SIGNED, WEBHOOK_OPS["redrive"]),
    Route("GET", "/livez", get_livez, AUTH_OPEN, op(
        "Liveness: 200 while the process serves requests (node name, wall clock time_ms)", "200"), peer=True),
    Route("GET", "/readyz", get_readyz, AUTH_OPEN, op(
        "Readiness: 200 when consensus runs, peer links >= quorum - 1 and the head is at most a few blocks behind "
        "the best known height; 503 with the reasons otherwise", "200", 503), peer=True),
    Route("GET", "/openapi.json", get_openapi, AUTH_OPEN, op("This document", "200")),
    Route("GET", "/metrics", get_metrics, AUTH_OPEN, op("Prometheus metrics", "200", content="text/plain")),
    Route("GET", "/", get_index, AUTH_OPEN, PAGE_OPS["index"]),
    Route("GET", "/static/{name}", get_static, AUTH_OPEN, PAGE_OPS["static"]),
)

# The routes anyone may call, each with the reason it shows no customer's data (tests/node/test_read_access.py
# proves every other route requires a signature).
OPEN_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/tx"): "submission: the tx carries its own signature; the answer is its hash",
    ("POST", "/v1/txs"): "submission of a batch: as POST /v1/tx",
    ("GET", "/v1/status"): "chain id, head, round, peer and mempool counts: the node's health, no account",
    ("GET", "/v1/policy"): "the company's policy parameters and their history: the same for every customer",
    ("GET", "/v1/governance/proposals"): "governance is between branches: actions, branch approvals, staff keys",
    ("GET", "/v1/governance/proposals/{id}"): "one proposal: as the list",
    ("GET", "/v1/campaigns"): "the offers every customer may get: conditions, budgets (no per-customer use)",
    ("GET", "/livez"): "process liveness for orchestrators: node name and clock, no account",
    ("GET", "/readyz"): "readiness for load balancers: head, peer counts and the reasons, no account",
    ("GET", "/openapi.json"): "this description of the API",
    ("GET", "/metrics"): "counters and gauges of the node: no account, no id",
    ("GET", "/"): "the page is the same public file for everyone; it reads customer data only through signed routes",
    ("GET", "/static/{name}"): "the page's scripts and style: the same public files for everyone, no data",
}

OPENAPI: dict[str, Any] = build_openapi(
    ROUTES, title="carecoin node API",
    description="Bytes are lowercase hex. Every error is {\"error\": {\"code\", \"message\"}}.")
