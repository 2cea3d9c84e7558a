"""The node-local lists behind ``GET /v1/tickets`` and ``GET /v1/orders``: who has which tickets and orders.

Theory of operation
-------------------
State holds tickets under ``b"t" + id`` and orders under ``b"o" + id``: a read by branch, customer or ticket
state would scan every record. ``ListIndex`` keeps, in memory, sorted lists of record *keys* per scope —
tickets per branch, per customer and in all, each also per ticket state; orders per customer — so one page
costs a bisection plus ``limit`` steps per list, whatever the number of records (bounded work per request).

A key is ``(time_ms, id)``: a ticket's ``opened_at`` or an order's ``created_at`` (block time, set once) and
its id. Keys never change for a record's life, so a page cursor (the last key shown) is stable: the next page
starts strictly below it, and paging never skips or repeats a record that existed when the first page was
read (a record created meanwhile has a later time, so it shows on a fresh first page; only a record whose
*state* changes between two pages of a state filter moves from one list to another). Lists are newest first.

Derived data, never consensus: the index is rebuilt at start from the state at the head (a prefix scan of
``b"t"`` and ``b"o"``, ``build`` in bounded steps so a large store never blocks the event loop), then kept up
by ``catch_up`` from committed blocks: every ticket or order an applied tx's events name (``ticket_id``,
``order_id``, a feedback's target) is re-read from state and moved between lists if its branch or state
changed. Records are only ever re-read, never derived, so reading state newer than the indexed height (the
build runs while blocks commit) is harmless: the index converges to the head. A request first catches the
index up (bounded: ``REQUEST_CATCH_UP`` blocks) and answers ``indexed_height``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import heapq
import itertools
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from ledger.events import Feedback, decode_event
from ledger.orders import Order, compute_record, get_order, is_valid_id
from ledger.state import PREFIX_ORDER, PREFIX_TICKET
from ledger.tickets import Ticket, get_ticket

log = logging.getLogger("carecoin.lists")

Key = tuple[int, str]  # (opened_at / created_at ms, id)
BUILD_STEP = 5_000  # state records read per build step (then the event loop runs again)
FOLLOW_PERIOD_S = 0.5
FOLLOW_BATCH = 500  # blocks per follow step
REQUEST_CATCH_UP = 1_000  # blocks a request may index before it answers
REQUEST_BUILD = 20_000  # records a request may add to an unfinished build before it is told to retry
MAX_CURSOR_CHARS = 200


class BadCursor(ValueError):
    """A cursor that no page of this API handed out."""


def encode_cursor(key: Key) -> str:
    """The opaque, URL-safe cursor of a page's last key."""
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Key:
    """The key of a cursor made by ``encode_cursor``; ``BadCursor`` naming what is wrong otherwise."""
    if not 0 < len(text) <= MAX_CURSOR_CHARS:
        raise BadCursor(f"{len(text)} characters; expected 1..{MAX_CURSOR_CHARS}")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor("not URL-safe base64 of UTF-8 text") from None
    ms, sep, object_id = raw.partition(":")
    if not (sep and ms.isascii() and ms.isdigit() and len(ms) <= 19 and is_valid_id(object_id)):
        raise BadCursor("not '<ms>:<id>' inside")
    return int(ms), object_id


@dataclass(frozen=True, slots=True)
class Page:
    """The ids of one page, newest first, the cursor of the next page (None: this page reached the end) and
    how many records the lists hold in all (at the indexed height)."""

    ids: tuple[str, ...]
    next_cursor: str | None
    total: int


@dataclass(frozen=True, slots=True)
class _TicketEntry:
    key: Key
    branch: str
    customer: bytes
    state: str

    def lists(self) -> tuple[tuple, ...]:
        return (("tb", self.branch), ("tb", self.branch, self.state), ("tc", self.customer),
                ("tc", self.customer, self.state), ("ta",), ("ta", self.state))


@dataclass(frozen=True, slots=True)
class _OrderEntry:
    key: Key
    customer: bytes

    def lists(self) -> tuple[tuple, ...]:
        return (("oc", self.customer),)


def ticket_lists(branch: str | None, customer: bytes | None, states: tuple[str, ...]) -> list[tuple]:
    """The list names of a ticket query: one scope (branch, customer, or all), all states or each given one."""
    scope: tuple = ("tb", branch) if branch is not None else ("tc", customer) if customer is not None else ("ta",)
    return [scope] if not states else [scope + (s,) for s in states]


def order_lists(customer: bytes) -> list[tuple]:
    """The list names of a customer's orders."""
    return [("oc", customer)]


class ListIndex:
    """Sorted keys of tickets and orders per scope (see the module docstring)."""

    def __init__(self, store: Any, results_of: Callable[[int], Any] | None = None) -> None:
        self.store = store
        self.results_of = results_of  # recent blocks' results from memory (the commit path holds them), or None
        self.height: int | None = None  # every block up to here is indexed; None while the build runs
        self._building: Iterator[tuple[bytes, bytes]] | None = None
        self._build_height = 0
        self._entries: dict[tuple[str, str], Any] = {}  # ("t" | "o", id) -> its entry
        self._lists: dict[tuple, list[Key]] = {}

    # ---- building and following ------------------------------------------------------------------------

    def build(self, max_records: int = BUILD_STEP) -> bool:
        """Continue the build from state by at most ``max_records`` records; True once the index is built."""
        if self.height is not None:
            return True
        if self._building is None:
            # The head first, then the scan: a block committed during the scan is re-read by catch_up.
            self._build_height = self.store.head().height
            self._building = itertools.chain(self.store.iter_state(PREFIX_TICKET), self.store.iter_state(PREFIX_ORDER))
        read = 0
        for key, raw in itertools.islice(self._building, max_records):
            read += 1
            object_id = key[1:].decode()
            if key[:1] == PREFIX_TICKET:
                self._put("t", object_id, compute_record(Ticket, raw, f"ticket {object_id!r}"))
            else:
                self._put("o", object_id, compute_record(Order, raw, f"order {object_id!r}"))
        if read == max_records:
            return False
        self._building, self.height = None, self._build_height
        log.info("list index built at height %d: %d tickets and orders", self.height, len(self._entries))
        return True

    def catch_up(self, max_blocks: int = FOLLOW_BATCH) -> int | None:
        """Index committed blocks after ``self.height`` (at most ``max_blocks``); the indexed height (None
        while the build has not finished)."""
        if self.height is None:
            return None
        stop = min(self.store.head().height, self.height + max_blocks)
        while self.height < stop:
            h = self.height + 1
            if self.store.get_header(h).tx_count:
                results = self.results_of(h) if self.results_of is not None else None
                self._index_results(results if results is not None else self.store.get_results(h))
            self.height = h
        return self.height

    def _index_results(self, results: Iterable[Any]) -> None:
        tickets: set[str] = set()
        orders: set[str] = set()
        for result in results:
            if result.status != 0:
                continue  # a failed tx changed no record
            for event in map(decode_event, result.events):
                if type(event) is Feedback:
                    (tickets if event.target_kind == "ticket" else orders).add(event.target_id)
                if isinstance(getattr(event, "ticket_id", None), str):
                    tickets.add(event.ticket_id)  # type: ignore[attr-defined]
                if isinstance(getattr(event, "order_id", None), str):
                    orders.add(event.order_id)  # type: ignore[attr-defined]
        for ticket_id in tickets:
            self._put("t", ticket_id, get_ticket(self.store, ticket_id) if is_valid_id(ticket_id) else None)
        for order_id in orders:
            self._put("o", order_id, get_order(self.store, order_id) if is_valid_id(order_id) else None)

    def _put(self, kind: str, object_id: str, record: Ticket | Order | None) -> None:
        """Make the lists show ``record`` as it is now (None: not at all)."""
        entry: Any = None
        if isinstance(record, Ticket):
            entry = _TicketEntry((record.opened_at, object_id), record.branch, record.customer, record.state)
        elif isinstance(record, Order):
            entry = _OrderEntry((record.created_at, object_id), record.customer)
        old = self._entries.get((kind, object_id))
        if old == entry:
            return
        if old is not None:
            for name in old.lists():
                keys = self._lists[name]
                del keys[bisect.bisect_left(keys, old.key)]
                if not keys:
                    del self._lists[name]
            del self._entries[(kind, object_id)]
        if entry is not None:
            for name in entry.lists():
                bisect.insort(self._lists.setdefault(name, []), entry.key)
            self._entries[(kind, object_id)] = entry

    # ---- reading ---------------------------------------------------------------------------------------

    def page(self, names: list[tuple], limit: int, cursor: Key | None = None) -> Page:
        """Up to ``limit`` ids of the merged lists ``names``, newest first, strictly below ``cursor``.

        Work: a bisection and at most ``limit + 1`` keys per list (the lists of one query are disjoint)."""
        streams = []
        for name in names:
            keys = self._lists.get(name, [])
            top = len(keys) if cursor is None else bisect.bisect_left(keys, cursor)
            streams.append(reversed(keys[max(0, top - limit - 1):top]))
        merged = list(itertools.islice(heapq.merge(*streams, reverse=True), limit + 1))
        shown = merged[:limit]
        more = len(merged) > limit
        return Page(tuple(k[1] for k in shown), encode_cursor(shown[-1]) if more else None,
                    sum(len(self._lists.get(name, ())) for name in names))


async def follow(index: ListIndex, is_closed: Callable[[], bool]) -> None:
    """Build the index in steps, then catch it up after commits, a bounded batch per step (until cancelled)."""
    while True:
        try:
            if is_closed():
                return
            built = index.build()
            if built:
                index.catch_up(FOLLOW_BATCH)
        except Exception:  # derived data: log and retry next period, never take the node down
            log.exception("list index step failed at height %s", index.height)
            built = True
        await asyncio.sleep(FOLLOW_PERIOD_S if built else 0)
