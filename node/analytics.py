"""Off-chain analytics of a node: the report index behind ``/v1/report`` and the order/ticket summaries.

Theory of operation
-------------------
The report is a projection of committed blocks kept in memory by ``ReportIndex``: ``catch_up`` reads each
new block once (header first: empty blocks cost one read), turns its results' events into per-block,
per-branch counters, and refreshes the summaries of the tickets those events touched from state. A report
request then sums counters over the blocks of its period (bisected by block time) and the ticket
summaries: no chain scan per request. The index is rebuilt from the store at start (it is derived data,
never consensus) and caught up by ``follow`` (at most ``FOLLOW_BATCH`` blocks every ``FOLLOW_PERIOD_S``,
so a long catch-up never starves consensus). Nothing else depends on it: erasure has its own follower
(``node.erasure``).

Fiat is counted per currency and in the base currency, at each order's own stored FX rate (``base_amount`` for
the amount ordered, ``Order.to_base`` for what was paid, confirmed as received and refunded): ``fiat``.

``outstanding`` is a point in time, not a flow: the coins in existence at the store's head (the company's
liability to its customers), their value in base-currency minor units (coins × ``coin_value_minor``), and the
debt customers owe after refunds (counters ``debt_incurred`` − ``debt_repaid``). It is company-wide: a coin
belongs to no branch. It is read from committed state only (the store's head, whose height it names).

Branch attribution (deterministic, from state): order and ticket events count for the order's / ticket's
branch (an SLA breach too: its count, and its compensation under ``compensated``; a debt incurred on a
refund too); ``expired`` and ``debt_repaid`` for the customer's registering branch; anything else for the
sender's branch (staff, issuers, admins granted with a branch), else the sending customer's branch, else ""
(no branch).

``compute_orders``/``compute_order_report`` and ``compute_ticket_report`` summarise order and ticket records
(e.g. from ``Store.iter_state``) for a branch and period.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from ledger import customers, fx
from ledger.context import DEFAULT_POLICY
from ledger.orders import Order, compute_record, get_order
from ledger.state import PREFIX_ORDER, get_counter, get_policy_int, get_supply
from ledger.tickets import CATEGORIES, STATES, Ticket, get_ticket
from ledger.events import (
    ClawedBack, Compensated, CouponApplied, Credited, DebtIncurred, DebtRepaid, Event, Expired, Feedback,
    OrderConfirmed, OrderCreated, OrderPaid, OrderRefunded, SlaBreached, Spent, decode_event,
)
from ledger.tx import decode_tx

log = logging.getLogger("carecoin.analytics")

FOLLOW_PERIOD_S = 0.25
FOLLOW_BATCH = 500
FOLLOW_TXS = 5_000  # results indexed per step at most (whole blocks): a start on large blocks keeps serving
COIN_METRICS = ("minted", "earned", "rewarded", "compensated", "refunded", "redeemed", "expired", "clawed_back",
                "campaign", "debt_incurred", "debt_repaid")
_CREDIT_METRIC = {"mint": "minted", "earn": "earned", "reward": "rewarded", "compensation": "compensated",
                  "refund": "refunded", "campaign": "campaign"}  # ("sla" credits are counted from their sla_breached event)
SLA_TARGETS = ("first_response", "resolution")
_ORDER_EVENTS = {"order_created": "orders_created", "order_paid": "orders_paid",
                 "order_confirmed": "orders_confirmed", "order_refunded": "orders_refunded"}
# fiat flows: the order event -> (flow, the order field holding its amount in the order's currency)
_FIAT_FLOWS = {OrderCreated: ("ordered", "fiat_amount"), OrderPaid: ("paid", "fiat_paid"),
               OrderConfirmed: ("confirmed", "fiat_paid"), OrderRefunded: ("refunded", "fiat_refunded")}
FIAT_FLOWS = tuple(flow for flow, _ in _FIAT_FLOWS.values())


# --- the report index -----------------------------------------------------------------------------------------


class ReportIndex:
    """Per-block, per-branch counters and ticket summaries, caught up incrementally from the store."""

    def __init__(self, store: Any, results_of: Callable[[int], Any] | None = None) -> None:
        self.store = store
        # ``results_of(height)`` may answer a recent block's results from memory (the node's commit path
        # holds them already) or None; the index then decodes them from the store.
        self.results_of = results_of
        self.height = 0  # every block up to here is indexed (genesis has no transactions)
        self._times: list[int] = []  # block timestamps of indexed blocks with counters, ascending
        self._counters: list[dict[str, Counter]] = []  # parallel to _times: branch -> metric -> amount
        self.tickets: dict[str, Ticket] = {}  # the latest record of every ticket seen
        self.branches: set[str] = set()

    def catch_up(self, max_blocks: int = 10_000, max_txs: int | None = None) -> int:
        """Index committed blocks after ``self.height`` (at most ``max_blocks``, and no block more once
        ``max_txs`` txs are indexed); return the indexed height."""
        head = self.store.head().height
        stop = min(head, self.height + max_blocks)
        txs = 0
        while self.height < stop and (max_txs is None or txs < max_txs):
            h = self.height + 1
            header = self.store.get_header(h)
            if header.tx_count:
                self._index_block(h, header.timestamp_ms)
                txs += header.tx_count
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
                if type(event) is SlaBreached:
                    for metric, amount, where in self._sla_metrics(event, touched):
                        counters.setdefault(where, Counter())[metric] += amount
                    continue
                if type(event) in _FIAT_FLOWS:
                    for metric, amount, where in self._fiat_metrics(event):
                        counters.setdefault(where, Counter())[metric] += amount
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
            customer = customers.get_customer(self.store, event.account)
            return "expired", event.amount, customer.branch if customer else ""
        if type(event) is ClawedBack:
            return "clawed_back", event.amount, None
        if type(event) is DebtIncurred:
            return "debt_incurred", event.amount, None
        if type(event) is DebtRepaid:  # repaid out of any later credit: counts where the customer registered
            customer = customers.get_customer(self.store, event.account)
            return "debt_repaid", event.amount, customer.branch if customer else ""
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

    def _sla_metrics(self, event: SlaBreached, touched: set[str]) -> list[tuple[str, int, str]]:
        """An SLA breach counts for its ticket's branch: the breach, and the compensation the sweep credited."""
        touched.add(event.ticket_id)
        ticket = get_ticket(self.store, event.ticket_id)
        where = ticket.branch if ticket else ""
        return [(f"sla_breaches:{event.target}", 1, where), ("sla_compensated", event.compensation, where),
                ("compensated", event.compensation, where)]

    def _fiat_metrics(self, event: Event) -> list[tuple[str, int, str]]:
        """An order's fiat flow for the order's branch: in its currency, and in base minor units at its rate."""
        flow, field = _FIAT_FLOWS[type(event)]
        order = get_order(self.store, event.order_id)  # type: ignore[attr-defined]
        if order is None:
            return []
        minor = getattr(order, field)
        if not minor:
            return []
        base = order.base_amount if flow == "ordered" else order.to_base(minor)
        return [(f"fiat:{flow}:{order.currency}", minor, order.branch), (f"fiat:{flow}", base, order.branch)]

    def outstanding(self) -> dict[str, Any]:
        """Coins in existence and debt owed at the store's head, with their base-currency value (company-wide)."""
        head = self.store.head().height
        coins = get_supply(self.store)
        value = get_policy_int(self.store, "coin_value_minor", int(DEFAULT_POLICY["coin_value_minor"]))
        debt = get_counter(self.store, "debt_incurred") - get_counter(self.store, "debt_repaid")
        return {"height": head, "coins": coins, "debt": debt, "base_currency": fx.get_base_currency(self.store),
                "coin_value_minor": value, "value_minor": coins * value, "debt_value_minor": debt * value}

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
        branch = customers.get_branch_of(self.store, sender)
        if branch:
            return branch
        customer = customers.get_customer(self.store, sender)
        return customer.branch if customer else ""

    def report(self, branch: str | None = None, since: int | None = None, until: int | None = None) -> dict[str, Any]:
        """Coin flows, orders, fiat (per currency and in the base currency), ratings and SLA breaches of blocks
        with ``since <= time < until``, tickets opened in that period, for one branch or all; and the coins and
        debt outstanding now (company-wide)."""
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
        outstanding = self.outstanding()
        fiat: dict[str, Any] = {"base_currency": outstanding["base_currency"]}
        for flow in FIAT_FLOWS:
            prefix = f"fiat:{flow}:"
            fiat[flow] = {"base_minor": total.get(f"fiat:{flow}", 0), "by_currency": dict(sorted(
                (k.removeprefix(prefix), v) for k, v in total.items() if k.startswith(prefix)))}
        return {
            "branch": branch, "since": since, "until": until, "indexed_height": self.height,
            "coins": {m: total.get(m, 0) for m in COIN_METRICS},
            "orders": {k.removeprefix("orders_"): total.get(k, 0) for k in _ORDER_EVENTS.values()},
            "fiat": fiat,
            "outstanding": outstanding,
            "tickets": {
                "total": tickets.count,
                "by_state": {s: tickets.by_state.get(s, 0) for s in STATES},
                "by_category": {c: tickets.by_category.get(c, 0) for c in CATEGORIES},
                "flagged": tickets.flagged,
                "mean_first_response_ms": tickets.mean_first_response_ms,
                "mean_resolution_ms": tickets.mean_resolution_ms,
                "sla_breaches": {
                    "total": sum(total.get(f"sla_breaches:{t}", 0) for t in SLA_TARGETS),
                    **{t: total.get(f"sla_breaches:{t}", 0) for t in SLA_TARGETS},
                    "compensated": total.get("sla_compensated", 0),
                },
            },
            "ratings": {"count": count, "by_rating": {str(r): n for r, n in ratings.items()},
                        "average": round(sum(r * n for r, n in ratings.items()) / count, 2) if count else None},
            "branches": sorted(self.branches),
        }


async def follow(index: ReportIndex, is_closed: Callable[[], bool]) -> None:
    """Catch the index up after commits, a bounded batch per step (bounded: runs until cancelled): at most
    ``FOLLOW_BATCH`` blocks and, at whole blocks, ``FOLLOW_TXS`` txs, then a period's pause, so a start on a long
    chain of large blocks indexes in the background while the node serves."""
    while True:
        await asyncio.sleep(FOLLOW_PERIOD_S)
        try:
            if is_closed():
                return
            index.catch_up(FOLLOW_BATCH, FOLLOW_TXS)
        except Exception:  # derived data: log and retry next period, never take the node down
            log.exception("report index catch-up failed at height %d", index.height)


# --- order and ticket summaries -------------------------------------------------------------------------------


def compute_orders(items: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple[str, Order]]:
    """Yield (order_id, order) for every order among state ``items`` (e.g. ``Store.iter_state(b"o")``)."""
    for key, raw in items:
        if key[:1] == PREFIX_ORDER:
            order_id = key[1:].decode()
            yield order_id, compute_record(Order, raw, f"order {order_id!r}")


@dataclass(frozen=True, slots=True)
class OrderReport:
    """Orders by status, coins redeemed/earned/returned/clawed back, and fiat per currency, for a branch and period."""

    count: int
    by_status: dict[str, int]
    coins_redeemed: int  # coins paid on orders that were not refunded
    coins_earned: int  # earned on confirmation (before clawbacks)
    coins_returned: int
    coins_clawed_back: int
    fiat_paid: dict[str, int]  # per currency, refunds included
    fiat_refunded: dict[str, int]
    rating_count: int
    rating_sum: int
    fiat_paid_base: int = 0  # base-currency minor units, each order at its own stored rate
    fiat_refunded_base: int = 0


def compute_order_report(orders: Iterable[Order], branch: str | None = None, since_ms: int = 0,
                         until_ms: int | None = None) -> OrderReport:
    """Summarise the orders of ``branch`` (None = all) created in [since_ms, until_ms)."""
    chosen = [o for o in orders if (branch is None or o.branch == branch) and o.created_at >= since_ms
              and (until_ms is None or o.created_at < until_ms)]
    by_status: dict[str, int] = {}
    paid: dict[str, int] = {}
    refunded: dict[str, int] = {}
    for o in chosen:
        by_status[o.status] = by_status.get(o.status, 0) + 1
        if o.paid_at:
            paid[o.currency] = paid.get(o.currency, 0) + o.fiat_paid
        if o.refunded_at:
            refunded[o.currency] = refunded.get(o.currency, 0) + o.fiat_refunded
    rated = [o.rating for o in chosen if o.rating]
    return OrderReport(
        count=len(chosen), by_status=dict(sorted(by_status.items())),
        coins_redeemed=sum(o.coins_paid - o.coins_returned for o in chosen),
        coins_earned=sum(o.earned for o in chosen), coins_returned=sum(o.coins_returned for o in chosen),
        coins_clawed_back=sum(o.clawed_back for o in chosen),
        fiat_paid=dict(sorted(paid.items())), fiat_refunded=dict(sorted(refunded.items())),
        rating_count=len(rated), rating_sum=sum(rated),
        fiat_paid_base=sum(o.to_base(o.fiat_paid) for o in chosen if o.paid_at),
        fiat_refunded_base=sum(o.to_base(o.fiat_refunded) for o in chosen if o.refunded_at),
    )


@dataclass(frozen=True, slots=True)
class TicketReport:
    """Tickets by state and category, SLA means (ms, floored) and the rating average, for a branch and period."""

    count: int
    by_state: dict[str, int]
    by_category: dict[str, int]
    flagged: int
    mean_first_response_ms: int | None
    mean_resolution_ms: int | None
    rating_count: int
    rating_sum: int
    compensated: int

    @property
    def average_rating(self) -> float | None:
        """Mean rating 1..5 of rated tickets (None when none was rated); off-chain only, so a float is fine."""
        return self.rating_sum / self.rating_count if self.rating_count else None


def compute_ticket_report(tickets: Iterable[Ticket], branch: str | None = None, since_ms: int = 0,
                          until_ms: int | None = None) -> TicketReport:
    """Summarise the tickets of ``branch`` (None = all) opened in [since_ms, until_ms)."""
    chosen = [t for t in tickets if (branch is None or t.branch == branch) and t.opened_at >= since_ms
              and (until_ms is None or t.opened_at < until_ms)]
    firsts = [t.first_response_ms for t in chosen if t.first_response_ms is not None]
    resolutions = [t.resolution_ms for t in chosen if t.resolution_ms is not None]
    rated = [t.rating for t in chosen if t.rating]
    return TicketReport(
        count=len(chosen),
        by_state={s: n for s in STATES if (n := sum(t.state == s for t in chosen))},
        by_category={c: n for c in CATEGORIES if (n := sum(t.category == c for t in chosen))},
        flagged=sum(t.flagged for t in chosen),
        mean_first_response_ms=sum(firsts) // len(firsts) if firsts else None,
        mean_resolution_ms=sum(resolutions) // len(resolutions) if resolutions else None,
        rating_count=len(rated), rating_sum=sum(rated),
        compensated=sum(t.compensated for t in chosen),
    )
