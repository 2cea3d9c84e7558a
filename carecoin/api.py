"""One method per route of the node's API, written once for both clients (``Client``, ``AsyncClient``).

Each method builds its plan (``carecoin.core``) and hands it to ``self._run``: the sync client runs it and
returns the result, the async client returns a coroutine of it. ``ROUTE_METHODS`` maps every route
``(method, path)`` of ``node.routes.ROUTES`` to the method serving it (tests/carecoin/test_client_routes.py
checks none is missing).

To add a route: write a method here (usually one line: ``return self._run(self._get(path, query))``) and
add its line to ``ROUTE_METHODS``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping, Sequence

from carecoin.core import USE_CLIENT_KEY, Core, Plan, as_key, build_path, quote, wait_plan
from carecoin.types import (
    Account, AuditPage, ListPage, BatchResult, Block, Document, HistoryPage, Policy, ProposalPage, Status, StoredData,
    Submitted, TextRecord, TxStatus,
)
from ledger.keys import KeyPair
from ledger.tx import SignedTx, make_tx

ROUTE_METHODS: dict[tuple[str, str], str] = {
    ("POST", "/v1/tx"): "submit_tx",
    ("POST", "/v1/txs"): "submit_batch",
    ("GET", "/v1/tx/{hash}"): "tx_status",
    ("GET", "/v1/tx/{hash}/receipt"): "receipt",
    ("GET", "/v1/accounts/{id}"): "account",
    ("GET", "/v1/accounts/{id}/coin"): "coin",
    ("GET", "/v1/accounts/{id}/proof"): "proof",
    ("GET", "/v1/accounts/{id}/history"): "history",
    ("GET", "/v1/blocks/{height}"): "block",
    ("GET", "/v1/status"): "status",
    ("GET", "/v1/tickets/{id}"): "ticket",
    ("GET", "/v1/orders/{id}"): "order",
    ("GET", "/v1/policy"): "policy",
    ("GET", "/v1/customers/{id}"): "customer",
    ("GET", "/v1/report"): "report",
    ("GET", "/v1/governance/proposals"): "proposals",
    ("GET", "/v1/governance/proposals/{id}"): "proposal",
    ("GET", "/v1/campaigns"): "campaigns",
    ("POST", "/v1/vault/customers"): "store_customer_data",
    ("GET", "/v1/vault/customers/{id}"): "customer_data",
    ("POST", "/v1/vault/texts"): "store_text",
    ("GET", "/v1/vault/texts/{commitment}"): "text",
    ("GET", "/v1/audit"): "audit",
    ("GET", "/openapi.json"): "openapi",
    ("GET", "/metrics"): "metrics",
    ("GET", "/v1/tickets"): "tickets",
    ("GET", "/v1/orders"): "orders",
    ("GET", "/v1/events"): "events",
    ("POST", "/v1/webhooks"): "add_webhook",
    ("GET", "/v1/webhooks"): "webhooks",
    ("DELETE", "/v1/webhooks/{id}"): "remove_webhook",
    ("GET", "/v1/webhooks/{id}/dead-letters"): "dead_letters",
    ("POST", "/v1/webhooks/{id}/dead-letters/redrive"): "redrive_dead_letters",
    ("GET", "/"): "page",
    ("GET", "/static/{name}"): "static",
    ("GET", "/livez"): "livez",
    ("GET", "/readyz"): "readyz",
}


def _hex(value: bytes | str) -> str:
    return value.hex() if isinstance(value, (bytes, bytearray)) else value


class Api:
    """The methods of both clients (see the module docstring); ``self.core`` holds URL, key and chain id."""

    core: Core

    def _run(self, plan: Plan[Any]) -> Any:  # pragma: no cover - each client defines it
        raise NotImplementedError

    def _get(self, path: str, query: Mapping[str, Any] | None = None, *, raw: bool = False,
             signer: Any = USE_CLIENT_KEY) -> Plan[Any]:
        return self.core.exchange("GET", build_path(path, query), raw=raw, signer=signer)

    # ---- configuration --------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.core.url

    @property
    def key(self) -> KeyPair | None:
        return self.core.key

    @property
    def ca_file(self) -> str | os.PathLike | None:
        return self.core.ca_file

    def sign_with(self, key: KeyPair | str | os.PathLike | None):
        """Sign every later request with ``key`` (a ``KeyPair`` or a key file; None: stop signing)."""
        self.core.key = as_key(key)
        return self

    def trust(self, ca_file: str | os.PathLike | None):
        """For https:// trust ``ca_file`` (the network CA), else the system's CAs."""
        self.core.trust(ca_file)
        return self

    # ---- generic requests (for routes without a method yet) --------------------------------------------

    def request(self, method: str, path: str, body: Any = None, raw: bool = False, data: bytes | None = None,
                headers: Mapping[str, str] | None = None, key: Any = USE_CLIENT_KEY) -> Any:
        """Any request: ``path`` with its query, ``body`` as JSON (or ``data`` bytes), signed by ``key``
        (default the client's; None: unsigned); the JSON answer (bytes with ``raw``)."""
        if key is True:
            key = USE_CLIENT_KEY
        return self._run(self.core.exchange(method, path, json_body=body, data=data, signer=key, raw=raw,
                                            headers=headers))

    def get(self, path: str, raw: bool = False, key: Any = USE_CLIENT_KEY) -> Any:
        """GET ``path`` (with its query): the JSON answer (bytes with ``raw``)."""
        return self.request("GET", path, raw=raw, key=key)

    def post(self, path: str, body: Any, key: Any = USE_CLIENT_KEY) -> Any:
        """POST ``body`` as JSON to ``path``: the JSON answer."""
        return self.request("POST", path, body, key=key)

    # ---- transactions ---------------------------------------------------------------------------------------

    def chain_id(self) -> str:
        return self._run(self.core.chain_id())

    def submit_tx(self, tx: SignedTx | bytes) -> Submitted:
        """POST /v1/tx: submit a signed tx (a ``SignedTx`` or its envelope bytes)."""
        raw = tx.raw if isinstance(tx, SignedTx) else tx
        return self._run(self.core.exchange("POST", "/v1/tx", json_body={"tx": raw.hex()}))

    def submit_batch(self, txs: Sequence[SignedTx | bytes]) -> list[BatchResult]:
        """POST /v1/txs: up to 1000 signed txs; one result per tx, in order."""
        raws = [(t.raw if isinstance(t, SignedTx) else t).hex() for t in txs]
        return self._run(_results(self.core.exchange("POST", "/v1/txs", json_body={"txs": raws})))

    def submit(self, kind: str, payload: list, key: KeyPair | str | None = None, nonce: int | None = None,
               second_keys: Iterable[KeyPair | str] = ()) -> Submitted:
        """Build, sign and submit a ``kind`` tx from ``key`` (default the client's key), with the next nonce
        (state nonce + this sender's pending txs) unless ``nonce`` is given."""
        return self._run(_submit_plan(self.core, kind, payload, as_key(key) or self.core.key, nonce,
                                      [as_key(k) for k in second_keys]))

    def wait(self, tx_hash: bytes | str, timeout_s: float = 30.0, key: Any = USE_CLIENT_KEY) -> TxStatus:
        """Poll until the tx is committed (``outcome`` applied or failed, with ``reason`` and ``detail``) or
        evicted; ``WaitTimeout`` after ``timeout_s``."""
        return self._run(wait_plan(self.core, _hex(tx_hash), timeout_s, key))

    def send(self, kind: str, payload: list, key: KeyPair | str | None = None, nonce: int | None = None,
             second_keys: Iterable[KeyPair | str] = (), timeout_s: float = 30.0) -> TxStatus:
        """``submit`` then ``wait``: the committed status (with ``kind`` and ``nonce``)."""
        return self._run(_send_plan(self.core, kind, payload, as_key(key) or self.core.key, nonce,
                                    [as_key(k) for k in second_keys], timeout_s))

    def tx_status(self, tx_hash: bytes | str) -> TxStatus:
        """GET /v1/tx/{hash}: pending, committed (with outcome, reason, detail), evicted; ``NotFound`` if unknown."""
        return self._run(self._get(f"/v1/tx/{_hex(tx_hash)}"))

    def receipt(self, tx_hash: bytes | str) -> Document:
        """GET /v1/tx/{hash}/receipt: the receipt JSON (verify with ``ledger.receipt.verify``)."""
        return self._run(self._get(f"/v1/tx/{_hex(tx_hash)}/receipt"))

    def receipt_compact(self, tx_hash: bytes | str) -> bytes:
        """GET /v1/tx/{hash}/receipt?format=msgpack: the compact receipt bytes (``ledger.receipt_compact``)."""
        return self._run(self._get(f"/v1/tx/{_hex(tx_hash)}/receipt", {"format": "msgpack"}, raw=True))

    # ---- accounts and chain ---------------------------------------------------------------------------------

    def account(self, account: bytes | str) -> Account:
        return self._run(self._get(f"/v1/accounts/{_hex(account)}"))

    def coin(self, account: bytes | str) -> Account:
        return self._run(self._get(f"/v1/accounts/{_hex(account)}/coin"))

    def proof(self, account: bytes | str) -> Document:
        """The account's state proof (check offline with ``ledger.state_proof.verify_state_proof``)."""
        return self._run(self._get(f"/v1/accounts/{_hex(account)}/proof"))

    def history(self, account: bytes | str, limit: int | None = None, before: int | None = None,
                scan: int | None = None) -> HistoryPage:
        """One page of the account's history, newest first; continue with ``before=page["next_before"]``
        (``iter_history`` follows every page)."""
        return self._run(self._get(f"/v1/accounts/{_hex(account)}/history",
                                   {"limit": limit, "before": before, "scan": scan}))

    def block(self, height: int | str = "latest", raw: bool = False) -> Block:
        """A block ("latest" for the head); ``raw``: the encoded block and certificate."""
        return self._run(self._get(f"/v1/blocks/{height}", {"format": "raw" if raw else None}))

    def status(self) -> Status:
        return self._run(self._get("/v1/status", signer=None))

    # ---- domain records -------------------------------------------------------------------------------------

    def ticket(self, ticket_id: str) -> Document:
        return self._run(self._get(f"/v1/tickets/{quote(ticket_id)}"))

    def order(self, order_id: str) -> Document:
        return self._run(self._get(f"/v1/orders/{quote(order_id)}"))

    def policy(self, version: int | None = None) -> Policy:
        return self._run(self._get("/v1/policy", {"version": version}))

    def customer(self, account: bytes | str) -> Document:
        return self._run(self._get(f"/v1/customers/{_hex(account)}"))

    def report(self, branch: str | None = None, since_ms: int | None = None, until_ms: int | None = None) -> Document:
        return self._run(self._get("/v1/report", {"branch": branch, "since": since_ms, "until": until_ms}))

    def proposals(self, status: str | None = None, offset: int | None = None, limit: int | None = None) -> ProposalPage:
        return self._run(self._get("/v1/governance/proposals", {"status": status, "offset": offset, "limit": limit}))

    def proposal(self, proposal_id: str) -> Document:
        return self._run(self._get(f"/v1/governance/proposals/{quote(proposal_id)}"))

    def campaigns(self) -> Document:
        return self._run(self._get("/v1/campaigns"))

    # ---- vault and audit (signed by the client's key) -----------------------------------------------------

    def store_customer_data(self, customer: bytes | str, data: Mapping[str, str],
                            salt: bytes | str | None = None) -> StoredData:
        """Keep a customer's personal data in the node's vault (staff); the salt and commitment to register."""
        body: dict[str, Any] = {"customer": _hex(customer), "data": dict(data)}
        if salt is not None:
            body["salt"] = _hex(salt)
        return self._run(self.core.exchange("POST", "/v1/vault/customers", data=json.dumps(body).encode()))

    def customer_data(self, customer: bytes | str) -> Document:
        return self._run(self._get(f"/v1/vault/customers/{_hex(customer)}"))

    def store_text(self, body: Mapping[str, Any]) -> TextRecord:
        """Keep the text behind an on-chain commitment (body: customer, kind, salt, text; see /openapi.json)."""
        return self._run(self.core.exchange("POST", "/v1/vault/texts", data=json.dumps(dict(body)).encode()))

    def text(self, commitment: bytes | str) -> TextRecord:
        return self._run(self._get(f"/v1/vault/texts/{_hex(commitment)}"))

    def audit(self, customer: bytes | str | None = None, since: int | None = None,
              limit: int | None = None) -> AuditPage:
        return self._run(self._get("/v1/audit", {"customer": None if customer is None else _hex(customer),
                                                 "since": since, "limit": limit}))

    # ---- lists (paged by next_cursor) -------------------------------------------------------------------

    def tickets(self, branch: str | None = None, state: str | None = None, customer: bytes | str | None = None,
                limit: int | None = None, cursor: str | None = None) -> ListPage:
        """A page of tickets: a branch's queue (``state``: comma-separated states or "active") or a customer's;
        continue with ``cursor=page["next_cursor"]`` until it is None."""
        return self._run(self._get("/v1/tickets", {"branch": branch, "state": state,
                                                   "customer": None if customer is None else _hex(customer),
                                                   "limit": limit, "cursor": cursor}))

    def orders(self, customer: bytes | str, limit: int | None = None, cursor: str | None = None) -> ListPage:
        """A page of a customer's orders, newest first; continue with ``cursor=page["next_cursor"]``."""
        return self._run(self._get("/v1/orders", {"customer": _hex(customer), "limit": limit, "cursor": cursor}))

    # ---- webhooks of a branch (signed by the client's key) -------------------------------------------------

    def add_webhook(self, url: str) -> Document:
        """Register a webhook for the signer's branch (branch admin); the answer holds its secret, shown once."""
        return self._run(self.core.exchange("POST", "/v1/webhooks", json_body={"url": url}))

    def webhooks(self) -> Document:
        return self._run(self._get("/v1/webhooks"))

    def remove_webhook(self, hook_id: str) -> Document:
        return self._run(self.core.exchange("DELETE", f"/v1/webhooks/{quote(hook_id)}"))

    def dead_letters(self, hook_id: str) -> Document:
        return self._run(self._get(f"/v1/webhooks/{quote(hook_id)}/dead-letters"))

    def redrive_dead_letters(self, hook_id: str) -> Document:
        return self._run(self.core.exchange("POST", f"/v1/webhooks/{quote(hook_id)}/dead-letters/redrive"))

    # ---- about the node -------------------------------------------------------------------------------------

    def page(self) -> str:
        """The customer and explorer page's HTML."""
        return self._run(_text(self._get("/", raw=True, signer=None)))

    def static(self, name: str) -> bytes:
        """One file of the page (``app.js``, ``style.css``, ...)."""
        return self._run(self._get(f"/static/{quote(name)}", raw=True, signer=None))

    def _events_wire(self, last_event_id: str | None) -> Plan[Any]:
        headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        return self.core.prepare("GET", "/v1/events", b"", USE_CLIENT_KEY, headers)

    def livez(self) -> Document:
        """Liveness: the node's name and clock while the process serves requests."""
        return self._run(self._get("/livez", signer=None))

    def readyz(self) -> Document:
        """Readiness (head, peers, best known height); a node that is not ready raises ``ApiError`` 503
        ``not_ready`` whose message lists every reason."""
        return self._run(self._get("/readyz", signer=None))

    def openapi(self) -> Document:
        return self._run(self._get("/openapi.json", signer=None))

    def metrics(self) -> str:
        """The Prometheus text exposition."""
        return self._run(_text(self._get("/metrics", raw=True, signer=None)))


# ---- multi-step plans ---------------------------------------------------------------------------------------


def _results(plan: Plan[Any]) -> Plan[list]:
    doc = yield from plan
    return doc["results"]


def _text(plan: Plan[bytes]) -> Plan[str]:
    data = yield from plan
    return data.decode()


def _submit_plan(core: Core, kind: str, payload: list, key: KeyPair | None, nonce: int | None,
                 extra: list) -> Plan[Submitted]:
    if key is None:
        raise ValueError("a tx needs a sender's key: pass key= or build the client with key=")
    chain = yield from core.chain_id()
    if nonce is None:
        doc = yield from core.exchange("GET", f"/v1/accounts/{key.public_key.hex()}", signer=key)
        nonce = int(doc.get("next_nonce", int(doc.get("nonce", 0)) + 1))
    tx = make_tx(chain, kind, key, nonce, payload, *extra)
    answer = yield from core.exchange("POST", "/v1/tx", json_body={"tx": tx.raw.hex()})
    return {"tx_hash": tx.tx_hash.hex(), "kind": kind, "nonce": nonce, "status": answer.get("status", "pending")}


def _send_plan(core: Core, kind: str, payload: list, key: KeyPair | None, nonce: int | None, extra: list,
               timeout_s: float) -> Plan[dict]:
    sent = yield from _submit_plan(core, kind, payload, key, nonce, extra)
    status = yield from wait_plan(core, sent["tx_hash"], timeout_s, key)
    return {**sent, **status}
