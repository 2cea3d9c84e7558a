"""Committed events as a feed: their ids, their JSON form and who may see each one.

Theory of operation
-------------------
Every event a committed block's results hold has a stable position ``(height, tx index, event index)``; its id
is ``"height:index:event"`` (``EventId``), ordered as the chain is. ``read_block_events`` turns one block into
``CommittedEvent`` values (the block time and tx hash included); only applied results carry events (a failed
tx is rolled back and records none). The SSE stream (``node.event_stream``), the webhooks (``node.webhooks``)
and the SQL sink (``node.sink``) all read events through here, so the three agree on ids and shapes.

Who may see an event (``Reader``; the rules of ``node.read_access``, applied per event): auditors and
compliance see all; an account sees the events that name it (``Event.accounts()``) and the events about its
own tickets and orders (``ticket_id``/``order_id``/a feedback's target: staff's response to her ticket is
hers); staff (``staff`` or ``branch-admin``) see the events of their branch: an event whose ``branch`` field
is theirs, about a ticket or order of their branch, or naming an account of their branch. Decided from the
state at the time the event is sent (a customer who moves branch is then the new branch's).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any, Iterator

from ledger.events import Event, UnknownEvent, decode_event
from ledger.orders import get_order
from ledger.tickets import get_ticket
from node.errors import NodeError
from node.read_access import get_account_branch, get_staff_branch, is_read_all

MAX_INDEX = 2**31 - 1  # above any tx or event index: (h, MAX_INDEX, MAX_INDEX) is "after block h"


class BadEventId(NodeError):
    """A ``Last-Event-ID`` (or cursor) that is not ``height:index:event``."""

    code = "bad_event_id"
    http_status = 400


@dataclass(frozen=True, slots=True, order=True)
class EventId:
    """The position of one committed event: block height, tx index in the block, event index in the tx."""

    height: int
    index: int
    event: int

    def __str__(self) -> str:
        return f"{self.height}:{self.index}:{self.event}"

    @classmethod
    def parse(cls, text: str) -> "EventId":
        parts = text.split(":")
        if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) <= 19 for p in parts):
            raise BadEventId(f"event id {text[:40]!r}: expected height:index:event (three decimal integers)")
        height, index, event = map(int, parts)
        if height >= 2**63 or index > MAX_INDEX or event > MAX_INDEX:
            raise BadEventId(f"event id {text[:40]!r}: a part is out of range")
        return cls(height, index, event)

    @classmethod
    def after_block(cls, height: int) -> "EventId":
        """The position after every event of block ``height`` (a cursor that starts at ``height + 1``)."""
        return cls(height, MAX_INDEX, MAX_INDEX)


@dataclass(frozen=True, slots=True)
class CommittedEvent:
    """One committed event with where and when it was committed."""

    id: EventId
    tx_hash: bytes
    time_ms: int
    event: Event

    @property
    def kind(self) -> str:
        return self.event.KIND if not isinstance(self.event, UnknownEvent) else str(self.event.kind)

    def fields(self) -> dict[str, Any]:
        """The event's fields by name, bytes as hex (an unknown kind: its raw values under ``values``)."""
        if isinstance(self.event, UnknownEvent):
            return {"values": [_jsonable(v) for v in self.event.values]}
        return {f.name: _jsonable(getattr(self.event, f.name)) for f in fields(self.event)}

    def to_json(self) -> dict[str, Any]:
        """The JSON document every consumer gets (SSE data, webhook body, sink ``fields``)."""
        return {"id": str(self.id), "height": self.id.height, "index": self.id.index, "event_index": self.id.event,
                "tx_hash": self.tx_hash.hex(), "time_ms": self.time_ms,
                "time": dt.datetime.fromtimestamp(self.time_ms / 1000, dt.timezone.utc).isoformat(
                    timespec="milliseconds").replace("+00:00", "Z"),
                "kind": self.kind, "fields": self.fields()}

    def amount(self) -> int | None:
        """The event's coin or money amount when it has one field named like one (for the sink's view)."""
        for name in ("amount", "coins", "fiat_amount", "earned", "reward", "value", "price", "coins_returned"):
            value = getattr(self.event, name, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def read_block_events(store: Any, height: int, results: list | None = None,
                      after: EventId | None = None) -> list[CommittedEvent]:
    """The events of block ``height`` (its ``results`` when the caller has them), those after ``after`` only."""
    header = store.get_header(height)
    if header.tx_count == 0:
        return []
    if results is None:
        results = store.get_results(height)
    out = []
    for index, result in enumerate(results):
        if result.status != 0 or not result.events:
            continue
        for number, wire in enumerate(result.events):
            eid = EventId(height, index, number)
            if after is not None and eid <= after:
                continue
            out.append(CommittedEvent(eid, result.tx_hash, header.timestamp_ms, decode_event(wire)))
    return out


def iter_events(store: Any, after: EventId, max_blocks: int) -> Iterator[CommittedEvent]:
    """Events after ``after`` from the store, at most ``max_blocks`` blocks up to the head."""
    head = store.head().height
    start = after.height + 1 if after.index == MAX_INDEX else after.height
    for height in range(max(start, 1), min(head, start + max_blocks - 1) + 1):
        yield from read_block_events(store, height, after=after)


# ---- who may see an event -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads a feed: ``all`` (auditors, compliance), or an ``account`` and the ``branch`` it is staff of
    (a customer has no branch; a webhook reads as its branch, with no account)."""

    all: bool = False
    account: bytes = b""
    branch: str = ""

    @classmethod
    def of_signer(cls, store: Any, signer: bytes) -> "Reader":
        if is_read_all(store, signer):
            return cls(all=True, account=signer)
        return cls(account=signer, branch=get_staff_branch(store, signer))

    def describe(self) -> str:
        if self.all:
            return "every event (auditor or compliance)"
        if self.branch:
            return f"the events of branch {self.branch!r} and of account {self.account.hex()[:16]}…"
        return f"the events of account {self.account.hex()[:16]}… and its tickets and orders"


def get_event_records(store: Any, event: Event) -> list:
    """The ticket and order records an event is about (by field)."""
    out = []
    ticket_id, order_id = getattr(event, "ticket_id", ""), getattr(event, "order_id", "")
    if getattr(event, "target_kind", None) == "ticket":
        ticket_id = event.target_id
    elif getattr(event, "target_kind", None) == "order":
        order_id = event.target_id
    if isinstance(ticket_id, str) and ticket_id:
        out.append(get_ticket(store, ticket_id))
    if isinstance(order_id, str) and order_id:
        out.append(get_order(store, order_id))
    return [r for r in out if r is not None]


def compute_event_branches(store: Any, event: Event) -> set[str]:
    """The branches an event belongs to: its ``branch`` field, its ticket's/order's branch, its accounts'."""
    branches = {getattr(event, "branch", "")} if isinstance(getattr(event, "branch", ""), str) else set()
    for record in get_event_records(store, event):
        branches.add(record.branch)
    if not isinstance(event, UnknownEvent):
        branches.update(get_account_branch(store, a) for a in event.accounts())
    branches.discard("")
    return branches


def is_visible(store: Any, reader: Reader, event: Event) -> bool:
    """True iff ``reader`` may see ``event`` (see the module docstring)."""
    if reader.all:
        return True
    if isinstance(event, UnknownEvent):
        return False  # a kind this node does not know: only auditors and compliance see it
    if reader.account and (reader.account in event.accounts()
                           or any(r.customer == reader.account for r in get_event_records(store, event))):
        return True
    return bool(reader.branch) and reader.branch in compute_event_branches(store, event)
