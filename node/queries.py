"""Domain read models of a node: accounts' coin view, tickets, orders, policy versions, customers, the
account state proof, and the incremental analytics index behind ``/v1/report``.

Theory of operation
-------------------
Point reads (ticket, order, customer, policy, coin view, proof) read the committed state in the store
through the ledger's own typed getters, at the head: every answer is what the head block's ``state_root``
commits to. They run on the event-loop thread between consensus steps, so a commit never lands halfway
through one answer (the proof's values and header are from the same height).

The report is a projection of committed blocks kept in memory by ``ReportIndex``: ``catch_up`` reads each
new block once (header first: empty blocks cost one read), turns its results' events into per-block,
per-branch counters, and refreshes the summaries of the tickets those events touched from state. A report
request then sums counters over the blocks of its period (bisected by block time) and the ticket
summaries: no chain scan per request. The index is rebuilt from the store at start (it is derived data,
never consensus). It also calls ``on_erased(customer)`` for every committed ``customer_data_erased``
event, which is how the vault learns to shred a key.

Branch attribution (deterministic, from state): order and ticket events count for the order's / ticket's
branch; ``expired`` for the customer's registering branch; anything else for the sender's branch (staff,
issuers, admins granted with a branch), else the sending customer's branch, else "" (no branch).
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import asdict
from typing import Any, Callable, Iterable

from ledger import coin
from ledger.events import (
    ClawedBack, Compensated, CouponApplied, Credited, CustomerDataErased, Event, Expired, Feedback, Spent, decode_event,
)
from ledger.errors import NotFound
from ledger.genesis import ROLES
from ledger.orders import get_order, is_valid_id
from ledger.process.governance import compute_policy_at, get_policy_change, get_policy_version
from ledger.smt import SparseMerkleTree
from ledger.state import get_account, has_role
from ledger.state_proof import STATE_PROOF_VERSION, compute_account_keys
from ledger.tickets import CATEGORIES, STATES, Ticket, compute_ticket_report, get_ticket
from ledger.tx import decode_tx
from ledger.validator_sets import get_validator_set_changes

MAX_POLICY_HISTORY = 1000
COIN_METRICS = ("minted", "earned", "rewarded", "compensated", "refunded", "redeemed", "expired", "clawed_back")
_CREDIT_METRIC = {"mint": "minted", "earn": "earned", "reward": "rewarded", "compensation": "compensated",
                  "refund": "refunded"}
_ORDER_EVENTS = {"order_created": "orders_created", "order_paid": "orders_paid",
                 "order_confirmed": "orders_confirmed", "order_refunded": "orders_refunded"}


def jsonable(value: Any) -> Any:
    """Bytes as lowercase hex, tuples as lists, recursively."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


# --- point reads --------------------------------------------------------------------------------------------


def get_coin_view(store: Any, account: bytes) -> dict[str, Any]:
    """The coin view of an account at the head block's time: spendable balance, expiring lots, tier, privileges,
    freeze, KYC, roles."""
    head = store.get_header(store.head().height)
    view = coin.get_account_view(store, account, head.timestamp_ms)
    view.update({"account": account.hex(), "stored_balance": get_account(store, account).balance,
                 "roles": [r for r in ROLES if has_role(store, r, account)],
                 "kyc_level": view["customer"]["kyc_level"] if view["customer"] else None,
                 "height": head.height, "timestamp_ms": head.timestamp_ms})
    return jsonable(view)


def get_ticket_view(store: Any, ticket_id: str) -> dict[str, Any]:
    """A ticket record with its SLA figures; ``NotFound`` when there is no such ticket."""
    ticket = get_ticket(store, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id[:80]!r} does not exist")
    doc = jsonable(asdict(ticket))
    doc.update({"ticket_id": ticket_id, "first_response_ms": ticket.first_response_ms,
                "resolution_ms": ticket.resolution_ms})
    return doc


def get_order_view(store: Any, order_id: str) -> dict[str, Any]:
    """An order record with its status and amount due; ``NotFound`` when there is no such order."""
    order = get_order(store, order_id)
    if order is None:
        raise NotFound(f"order {order_id[:80]!r} does not exist")
    doc = jsonable(asdict(order))
    doc.update({"order_id": order_id, "status": order.status, "amount_due": order.amount_due})
    return doc


def get_customer_view(store: Any, account: bytes) -> dict[str, Any]:
    """The on-chain customer record (KYC, commitment, branch, erasure); never personal data."""
    customer = coin.get_customer(store, account)
    if customer is None:
        raise NotFound(f"account {account.hex()} is not a registered customer")
    doc = jsonable(asdict(customer))
    doc["erased"] = customer.erased
    return doc


def get_policy_view(store: Any, version: int | None) -> dict[str, Any]:
    """Every policy parameter at ``version`` (default: current) and the change history; ``NotFound`` past it."""
    current = get_policy_version(store)
    wanted = current if version is None else version
    if wanted > current:
        raise NotFound(f"policy version {wanted} does not exist; the current version is {current}")
    changes = []
    for v in range(max(1, current - MAX_POLICY_HISTORY + 1), current + 1):
        change = get_policy_change(store, v)
        if change is not None:
            changes.append(jsonable(asdict(change)))
    return {"version": wanted, "current_version": current, "policy": compute_policy_at(store, wanted),
            "changes": changes}


def build_account_proof(store: Any, chain_id: str, account: bytes) -> dict[str, Any]:
    """The state proof document of ``account`` at the head (see ``ledger.state_proof``)."""
    head = store.head()
    header = store.get_header(head.height)
    tree = SparseMerkleTree(store, cache_nodes=0)
    values = []
    for key in compute_account_keys(account):
        value = store.get_state(key)
        values.append({"key": key.hex(), "value": None if value is None else value.hex(),
                       "proof": tree.prove(header.state_root, key).encode().hex()})
    view = get_coin_view(store, account)
    return {"version": STATE_PROOF_VERSION, "chain_id": chain_id, "account": account.hex(),
            "height": header.height, "header": header.encode().hex(), "block_hash": head.block_hash.hex(),
            "commit": [{"validator": s.validator.hex(), "signature": s.signature.hex()}
                       for s in store.get_certificate(header.height)],
            "validator_set_changes": [c.to_json() for c in get_validator_set_changes(store, header.height)],
            "values": values,
            "decoded": {"balance": view["balance"], "stored_balance": view["stored_balance"],
                        "nonce": view["nonce"], "state_root": header.state_root.hex(),
                        "timestamp_ms": header.timestamp_ms}}


# --- analytics ----------------------------------------------------------------------------------------------


class ReportIndex:
    """Per-block, per-branch counters and ticket summaries, caught up incrementally from the store."""

    def __init__(self, store: Any, on_erased: Callable[[bytes], None] | None = None,
                 results_of: Callable[[int], Any] | None = None) -> None:
        self.store = store
        self.on_erased = on_erased
        # ``results_of(height)`` may answer a recent block's results from memory (the node's commit path
        # holds them already) or None; the index then decodes them from the store.
        self.results_of = results_of
        self.height = 0  # every block up to here is indexed (genesis has no transactions)
        self._times: list[int] = []  # block timestamps of indexed blocks with counters, ascending
        self._counters: list[dict[str, Counter]] = []  # parallel to _times: branch -> metric -> amount
        self.tickets: dict[str, Ticket] = {}  # the latest record of every ticket seen
        self.branches: set[str] = set()

    def catch_up(self, max_blocks: int = 10_000) -> int:
        """Index committed blocks after ``self.height`` (at most ``max_blocks``); return the indexed height."""
        head = self.store.head().height
        stop = min(head, self.height + max_blocks)
        while self.height < stop:
            h = self.height + 1
            header = self.store.get_header(h)
            if header.tx_count:
                self._index_block(h, header.timestamp_ms)
            self.height = h
        return self.height

    def _index_block(self, height: int, timestamp_ms: int) -> None:
        block = None  # read only when a tx's sender is needed (most blocks' events name their branch or none)
        counters: dict[str, Counter] = {}
        touched: set[str] = set()
        results = self.results_of(height) if self.results_of is not None else None
        if results is None:
            results = self.store.get_results(height)
        for index, result in enumerate(results):
            if result.status != 0 or not result.events:
                continue
            branch = None  # decided lazily: most txs (transfers) never need it
            for event in map(decode_event, result.events):
                if type(event) is CustomerDataErased and self.on_erased is not None:
                    self.on_erased(event.customer)
                metric, amount, where = self._metric(event, touched)
                if metric is None:
                    continue
                if where is None:
                    if branch is None:
                        block = block or self.store.get_block(height)
                        branch = self._tx_branch(block.txs[index], result.events)
                    where = branch
                counters.setdefault(where, Counter())[metric] += amount
        for ticket_id in touched:
            ticket = get_ticket(self.store, ticket_id)
            if ticket is not None:
                self.tickets[ticket_id] = ticket
                self.branches.add(ticket.branch)
        if counters:
            self._times.append(timestamp_ms)
            self._counters.append(counters)
            self.branches.update(counters)

    def _metric(self, event: Event, touched: set[str]) -> tuple[str | None, int, str | None]:
        """(metric, amount, branch or None = the tx's branch) of one event; marks touched tickets."""
        kind = event.KIND
        if type(event) is Credited:
            return _CREDIT_METRIC.get(event.source), event.amount, None
        if type(event) is Spent:
            return "redeemed", event.amount, None
        if type(event) is Expired:
            customer = coin.get_customer(self.store, event.account)
            return "expired", event.amount, customer.branch if customer else ""
        if type(event) is ClawedBack:
            return "clawed_back", event.amount, None
        if kind in _ORDER_EVENTS:
            order = get_order(self.store, event.order_id)  # type: ignore[attr-defined]
            return _ORDER_EVENTS[kind], 1, order.branch if order else ""
        if kind.startswith("ticket_") or type(event) is Compensated:
            touched.add(event.ticket_id)  # type: ignore[attr-defined]
            return None, 0, None
        if type(event) is Feedback:
            if event.target_kind == "ticket":
                touched.add(event.target_id)
            record = (get_ticket(self.store, event.target_id) if event.target_kind == "ticket"
                      else get_order(self.store, event.target_id))
            return f"rating:{event.rating}", 1, record.branch if record else ""
        return None, 0, None

    def _tx_branch(self, raw: bytes, events: Iterable[list]) -> str:
        for event in map(decode_event, events):  # an order's or a ticket's branch wins: where the service was
            if event.KIND in _ORDER_EVENTS or type(event) is CouponApplied:
                order = get_order(self.store, event.order_id)  # type: ignore[attr-defined]
                if order is not None:
                    return order.branch
            if type(event) is Compensated:
                ticket = get_ticket(self.store, event.ticket_id)
                if ticket is not None:
                    return ticket.branch
        sender = decode_tx(raw).body.sender
        branch = coin.get_branch_of(self.store, sender)
        if branch:
            return branch
        customer = coin.get_customer(self.store, sender)
        return customer.branch if customer else ""

    def report(self, branch: str | None = None, since: int | None = None, until: int | None = None) -> dict[str, Any]:
        """Coin flows, orders and ratings of blocks with ``since <= time < until``, tickets opened in that period;
        for one branch or all."""
        lo = 0 if since is None else bisect.bisect_left(self._times, since)
        hi = len(self._times) if until is None else bisect.bisect_left(self._times, until)
        total: Counter = Counter()
        for counters in self._counters[lo:hi]:
            for where, counter in counters.items():
                if branch is None or where == branch:
                    total.update(counter)
        ratings = {r: total.get(f"rating:{r}", 0) for r in range(1, 6)}
        count = sum(ratings.values())
        tickets = compute_ticket_report(self.tickets.values(), branch, since or 0, until)
        return {
            "branch": branch, "since": since, "until": until, "indexed_height": self.height,
            "coins": {m: total.get(m, 0) for m in COIN_METRICS},
            "orders": {k.removeprefix("orders_"): total.get(k, 0) for k in _ORDER_EVENTS.values()},
            "tickets": {
                "total": tickets.count,
                "by_state": {s: tickets.by_state.get(s, 0) for s in STATES},
                "by_category": {c: tickets.by_category.get(c, 0) for c in CATEGORIES},
                "flagged": tickets.flagged,
                "mean_first_response_ms": tickets.mean_first_response_ms,
                "mean_resolution_ms": tickets.mean_resolution_ms,
            },
            "ratings": {"count": count, "by_rating": {str(r): n for r, n in ratings.items()},
                        "average": round(sum(r * n for r, n in ratings.items()) / count, 2) if count else None},
            "branches": sorted(self.branches),
        }


def is_id(text: str) -> bool:
    """True iff ``text`` could be an order/ticket/coupon id (1..64 bytes printable, no surrounding spaces)."""
    return is_valid_id(text)
