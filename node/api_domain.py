"""The domain routes of the client API: coin view, proofs, tickets, orders, policy, customers, report, vault.

``add_domain_routes(app, service)`` mounts them (``node.api.create_app`` calls it) and merges their entries
into ``/openapi.json``. A ``DomainNode`` per app holds the vault (``<data_dir>/vault``) and the report
index; a small follower task catches the index up after commits (at most ``FOLLOW_BATCH`` blocks per step,
so a long catch-up never starves consensus), which is also what shreds a vault key once an
``erase-customer-data`` commits. Reads answer from the head state; errors use the API's one error shape.

Vault requests are signed by a staff key (``node.vault.compute_request_digest``) in three headers:
``X-Carecoin-Staff`` (public key hex), ``X-Carecoin-Time`` (ms since the epoch) and
``X-Carecoin-Signature`` (Ed25519 over the digest, hex). The signer must hold the ``staff`` role now, the
time must be within five minutes of the node's clock, and a signature is accepted once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, AsyncIterator

from aiohttp import web

from ledger.keys import verify as verify_signature
from ledger.state import has_role
from node import queries
from node.api import OPENAPI, SERVICE_KEY, BadRequest, _op, _path_param, _query, parse_hex32, parse_int
from node.service import NodeService
from node.vault import MAX_CLOCK_SKEW_MS, Vault, VaultUnauthorized, compute_request_digest

log = logging.getLogger("carecoin.api.domain")

FOLLOW_PERIOD_S = 0.25
FOLLOW_BATCH = 500
REQUEST_CATCH_UP = 10_000
MAX_SEEN_SIGNATURES = 10_000
MAX_VAULT_BODY = 64 * 1024
H_STAFF, H_TIME, H_SIG = "X-Carecoin-Staff", "X-Carecoin-Time", "X-Carecoin-Signature"


class DomainNode:
    """The per-node domain read side: the vault, the report index and the vault's replay guard."""

    def __init__(self, service: NodeService, vault_dir: str | Path | None = None) -> None:
        self.service = service
        self.vault = Vault(vault_dir if vault_dir is not None else Path(service.store.path) / "vault")
        # A service that keeps recent blocks' results in memory (``get_recent_results(height)`` -> list or
        # None) spares the follower decoding every block's results again; without it the store answers.
        self.index = queries.ReportIndex(service.store, on_erased=self._on_erased,
                                         results_of=getattr(service, "get_recent_results", None))
        self._seen: OrderedDict[bytes, int] = OrderedDict()  # signature -> request time (replay guard)

    def _on_erased(self, customer: bytes) -> None:
        if self.vault.erase(customer):
            log.info("customer %s erased on chain: vault key deleted", customer.hex()[:16])

    def catch_up(self, max_blocks: int = REQUEST_CATCH_UP) -> int:
        """Bring the report index (and vault erasures) up to the head, bounded by ``max_blocks``."""
        return self.index.catch_up(max_blocks)

    def verify_staff_request(self, request: web.Request, body: bytes) -> bytes:
        """Return the staff key that signed ``request``; raise ``VaultUnauthorized``."""
        staff_hex, time_text, sig_hex = (request.headers.get(h) for h in (H_STAFF, H_TIME, H_SIG))
        if not (staff_hex and time_text and sig_hex):
            raise VaultUnauthorized(f"vault requests must be signed by a staff key: headers {H_STAFF}, {H_TIME} "
                                    f"and {H_SIG} are required")
        try:
            staff, signature, stamp = bytes.fromhex(staff_hex), bytes.fromhex(sig_hex), int(time_text)
        except ValueError:
            raise VaultUnauthorized("the signature headers are malformed; expected hex key, integer ms, "
                                    "hex signature") from None
        now = int(time.time() * 1000)
        if abs(now - stamp) > MAX_CLOCK_SKEW_MS:
            raise VaultUnauthorized(f"request time {stamp} is {abs(now - stamp)} ms from the node's clock; "
                                    f"at most {MAX_CLOCK_SKEW_MS} ms are accepted")
        if len(staff) != 32 or len(signature) != 64:
            raise VaultUnauthorized("staff key must be 32 bytes and signature 64 bytes")
        digest = compute_request_digest(self.service.chain_id, request.method, request.raw_path, stamp, body)
        if not verify_signature(staff, digest, signature):
            raise VaultUnauthorized(f"the signature does not verify for key {staff.hex()[:16]}… over "
                                    f"{request.method} {request.raw_path[:80]}")
        if not has_role(self.service.store, "staff", staff):
            raise VaultUnauthorized(f"key {staff.hex()[:16]}… does not hold the 'staff' role")
        if signature in self._seen:
            raise VaultUnauthorized("this signed request was already used; sign each request afresh")
        self._seen[signature] = stamp
        while self._seen and (len(self._seen) > MAX_SEEN_SIGNATURES
                              or next(iter(self._seen.values())) < now - 2 * MAX_CLOCK_SKEW_MS):
            self._seen.popitem(last=False)
        return staff


DOMAIN_KEY: web.AppKey[DomainNode] = web.AppKey("domain", DomainNode)


def _domain(request: web.Request) -> DomainNode:
    return request.app[DOMAIN_KEY]


def _store(request: web.Request) -> Any:
    return request.app[SERVICE_KEY].store


def parse_id(text: str, what: str) -> str:
    """An order/ticket id from a path (1..64 bytes of printable text) or ``BadRequest``."""
    if not queries.is_id(text):
        raise BadRequest(f"{what} {text[:80]!r} is not 1..64 bytes of printable text without surrounding spaces")
    return text


# ---- handlers ---------------------------------------------------------------------------------------------

async def get_coin(request: web.Request) -> web.Response:
    """GET /v1/accounts/{id}/coin: spendable balance, expiring lots, tier, privileges, freeze, KYC, roles."""
    account = parse_hex32(request.match_info["id"], "account id")
    svc = request.app[SERVICE_KEY]
    doc = queries.get_coin_view(svc.store, account)
    doc["next_nonce"] = svc.get_next_nonce(account, doc["nonce"])
    return web.json_response(doc)


async def get_proof(request: web.Request) -> web.Response:
    """GET /v1/accounts/{id}/proof: SMT proofs of the account's state against the head header + certificate."""
    account = parse_hex32(request.match_info["id"], "account id")
    svc = request.app[SERVICE_KEY]
    return web.json_response(queries.build_account_proof(svc.store, svc.chain_id, account))


async def get_ticket(request: web.Request) -> web.Response:
    """GET /v1/tickets/{id}."""
    return web.json_response(queries.get_ticket_view(_store(request), parse_id(request.match_info["id"], "ticket id")))


async def get_order(request: web.Request) -> web.Response:
    """GET /v1/orders/{id}."""
    return web.json_response(queries.get_order_view(_store(request), parse_id(request.match_info["id"], "order id")))


async def get_policy(request: web.Request) -> web.Response:
    """GET /v1/policy[?version=N]."""
    version = parse_int(request.query.get("version"), "version", 0, 2**63)
    return web.json_response(queries.get_policy_view(_store(request), version))


async def get_customer(request: web.Request) -> web.Response:
    """GET /v1/customers/{id}: the on-chain record only."""
    account = parse_hex32(request.match_info["id"], "customer id")
    return web.json_response(queries.get_customer_view(_store(request), account))


async def get_report(request: web.Request) -> web.Response:
    """GET /v1/report?branch=&since=&until=."""
    q = request.query
    branch = q.get("branch")
    if branch is not None and not 0 < len(branch) <= 64:
        raise BadRequest(f"branch must be 1..64 characters, got {len(branch)}")
    since = parse_int(q.get("since"), "since (ms)", 0, 2**63)
    until = parse_int(q.get("until"), "until (ms)", 0, 2**63)
    if since is not None and until is not None and until <= since:
        raise BadRequest(f"until {until} must be after since {since}")
    domain = _domain(request)
    domain.catch_up()
    return web.json_response(domain.index.report(branch, since, until))


async def post_vault_customer(request: web.Request) -> web.Response:
    """POST /v1/vault/customers {"customer", "data": {field: str}} (staff-signed) -> {salt, commitment}."""
    body = await request.read()
    if len(body) > MAX_VAULT_BODY:
        raise BadRequest(f"request body of {len(body)} bytes; at most {MAX_VAULT_BODY}")
    domain = _domain(request)
    staff = domain.verify_staff_request(request, body)
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest('body is not JSON; expected {"customer": hex, "data": {field: text}}') from None
    if not isinstance(doc, dict) or not isinstance(doc.get("customer"), str) or not isinstance(doc.get("data"), dict):
        raise BadRequest('expected {"customer": "<64 hex digits>", "data": {field: text, ...}}')
    customer = parse_hex32(doc["customer"], "customer id")
    stored = domain.vault.put(customer, doc["data"])
    log.info("vault: personal data of %s stored by staff %s", customer.hex()[:16], staff.hex()[:16])
    return web.json_response({"customer": customer.hex(), "salt": stored.salt.hex(),
                              "commitment": stored.commitment.hex()}, status=201)


async def get_vault_customer(request: web.Request) -> web.Response:
    """GET /v1/vault/customers/{id} (staff-signed): the decrypted personal data; 410 once erased."""
    domain = _domain(request)
    domain.verify_staff_request(request, b"")
    customer = parse_hex32(request.match_info["id"], "customer id")
    domain.catch_up()  # an erasure that just committed is applied before answering
    fields, salt = domain.vault.get(customer)
    return web.json_response({"customer": customer.hex(), "data": fields, "salt": salt.hex()})


# ---- OpenAPI --------------------------------------------------------------------------------------------

_ID = _path_param("id", "account id (public key), 64 hex digits")
_OBJ_ID = _path_param("id", "1..64 bytes of printable text")
_SIGNED = ("Staff-signed: headers X-Carecoin-Staff (key hex), X-Carecoin-Time (ms), X-Carecoin-Signature (Ed25519 "
           "over H('carecoin/v1/vault-request', P([chain_id, method, path, time_ms, sha256(body)])), hex)")
DOMAIN_PATHS: dict[str, Any] = {
    "/v1/accounts/{id}/coin": {"get": _op("Coin view at the head block time: spendable balance, lots expiring in "
                                          "30 days, tier, privileges, freeze, KYC level, roles, nonce", "200", 400,
                                          params=(_ID,))},
    "/v1/accounts/{id}/proof": {"get": _op("SMT proofs of the account's state keys against the head header and its "
                                           "commit certificate (check offline: carecoin account verify-proof)",
                                           "200", 400, params=(_ID,))},
    "/v1/tickets/{id}": {"get": _op("A ticket: state, category, priority, times (first response, resolution)",
                                    "200", 400, 404, params=(_OBJ_ID,))},
    "/v1/orders/{id}": {"get": _op("An order: amounts, coins paid, earned, refund, status", "200", 400, 404,
                                   params=(_OBJ_ID,))},
    "/v1/policy": {"get": _op("Every policy parameter at a version (default current) and the change history",
                              "200", 400, 404, params=(_query("version", "0 = genesis .. current", "integer"),))},
    "/v1/customers/{id}": {"get": _op("A customer's on-chain record (KYC, commitment, branch, erasure); never "
                                      "personal data", "200", 400, 404, params=(_ID,))},
    "/v1/report": {"get": _op("Analytics per branch and period: coins minted/earned/redeemed/expired/compensated, "
                              "orders, tickets by state and category, mean first-response and resolution ms, "
                              "ratings", "200", 400,
                              params=(_query("branch", "one branch (default all)"),
                                      _query("since", "block time >= this (ms)", "integer"),
                                      _query("until", "block time < this (ms)", "integer")))},
    "/v1/vault/customers": {"post": _op("Store a customer's personal data in this node's vault; returns salt and "
                                        "commitment for register-customer. " + _SIGNED, "201", 400, 403, 410)},
    "/v1/vault/customers/{id}": {"get": _op("Decrypted personal data from this node's vault (410 once erased). "
                                            + _SIGNED, "200", 400, 403, 404, 410, params=(_ID,))},
}


# ---- mounting ---------------------------------------------------------------------------------------------

def add_domain_routes(app: web.Application, service: NodeService) -> None:
    """Mount the domain routes on ``app``, start the index follower with it, and document them in /openapi.json."""
    app[DOMAIN_KEY] = DomainNode(service)
    r = app.router
    r.add_get("/v1/accounts/{id}/coin", get_coin)
    r.add_get("/v1/accounts/{id}/proof", get_proof)
    r.add_get("/v1/tickets/{id}", get_ticket)
    r.add_get("/v1/orders/{id}", get_order)
    r.add_get("/v1/policy", get_policy)
    r.add_get("/v1/customers/{id}", get_customer)
    r.add_get("/v1/report", get_report)
    r.add_post("/v1/vault/customers", post_vault_customer)
    r.add_get("/v1/vault/customers/{id}", get_vault_customer)
    OPENAPI["paths"].update(DOMAIN_PATHS)
    app.cleanup_ctx.append(_follower_ctx)


async def _follower_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_follow(app[DOMAIN_KEY]), name="domain-follower")
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def _follow(domain: DomainNode) -> None:
    """Catch the index up after commits, a bounded batch per step (bounded: runs until cancelled)."""
    while True:
        await asyncio.sleep(FOLLOW_PERIOD_S)
        try:
            if domain.service.store.closed:
                return
            domain.catch_up(FOLLOW_BATCH)
        except Exception:  # derived data: log and retry next period, never take the node down
            log.exception("domain index catch-up failed at height %d", domain.index.height)
