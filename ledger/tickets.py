"""Ticket records, the ticket state machine, and the once-only reward records (feedback, training).

Theory of operation
-------------------
A ticket is one state record under ``b"t" + ticket_id`` (utf-8). Its state machine:

    open --assign--> assigned --respond--> in_progress --resolve--> resolved --close--> closed
      \\____________________\\______________________\\               |
       (respond, resolve and assign are allowed from every active state)  '--reopen--> open
                  in_progress <--reply-- waiting <--wait-- open | assigned | in_progress

``ACTIVE`` states (waiting included) accept assign/respond/resolve; ``wait`` (staff ask the customer
something: the SLA clock pauses) needs a non-waiting active state and ``reply`` (the customer answers: the
clock resumes, crediting the wait) needs ``waiting``; only ``resolved`` accepts reopen and close; ``closed`` is final. Times come
from block timestamps: ``first_response_at`` is set by the first response or question to the customer (or
by the resolution, if nobody responded before), ``resolved_at`` by the latest resolution, ``closed_at`` once.
A refusal names the state seen and the states expected (``TICKET_STATE``). The SLA fields (deadlines, the
pause, the breaches) are kept by ``ledger.sla``.

Rewards that must never pay twice leave a marker whose presence is the whole check:
``b"y" + (b"o" | b"t") + target_id`` for feedback on an order or a ticket, and
``b"z" + staff(32) + course_id`` for a training course. Record arrays follow the dataclass field order:
a wire format — append only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from ledger import codec, reasons
from ledger.errors import SchemaError
from ledger.orders import MAX_ID_BYTES, compute_record, is_valid_id
from ledger.reasons import TxFailure
from ledger.state import PREFIX_FEEDBACK, PREFIX_TICKET, PREFIX_TRAINING, StateReader

CATEGORIES: tuple[str, ...] = ("complaint", "inquiry", "suggestion")
PRIORITIES = range(1, 4)
ACTIVE: tuple[str, ...] = ("open", "assigned", "in_progress", "waiting")
STATES: tuple[str, ...] = ACTIVE + ("resolved", "closed")
FEEDBACK_TARGETS: dict[str, bytes] = {"order": b"o", "ticket": b"t"}


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket as stored (0 / empty = not yet)."""

    customer: bytes
    opened_by: bytes  # the customer, or the staff member who opened it on their behalf
    branch: str  # the branch that handles it: the order's, else the customer's registered branch
    category: str
    priority: int  # 1 (low) .. 3 (high)
    flagged: int  # 1 when the customer held the priority or vip privilege at opening
    order_id: str  # "" when not linked to an order
    content_hash: bytes
    state: str
    assignee: bytes = b""
    opened_at: int = 0
    first_response_at: int = 0
    resolved_at: int = 0
    closed_at: int = 0
    reopen_count: int = 0
    compensated: int = 0  # coins paid on this ticket, in total
    rating: int = 0
    resolution_hash: bytes = b""
    last_response_hash: bytes = b""
    # SLA (``ledger.sla``); 0 = none / not yet
    sla_factor_pct: int = 100  # targets x this / 100, fixed at opening (priority privilege)
    first_response_due: int = 0  # block time the first response is due by (0 = no target)
    resolution_due: int = 0  # block time the resolution is due by (0 = no target)
    paused_at: int = 0  # block time the ticket started waiting on the customer (0 = clock running)
    paused_ms: int = 0  # total waiting time credited to the deadlines (customer replies, each <= sla_max_wait_ms)
    breached: int = 0  # bit 1: first response breached, bit 2: resolution breached
    sla_compensated: int = 0  # coins credited automatically for breaches
    last_reply_hash: bytes = b""  # the customer's latest answer while waiting

    def to_list(self) -> list:
        """The record's canonical array form."""
        return [getattr(self, name) for name in self.__slots__]

    @property
    def first_response_ms(self) -> int | None:
        """Milliseconds from opening to the first response (None while unanswered)."""
        return self.first_response_at - self.opened_at if self.first_response_at else None

    @property
    def resolution_ms(self) -> int | None:
        """Milliseconds from opening to the latest resolution (None while unresolved)."""
        return self.resolved_at - self.opened_at if self.resolved_at else None


@dataclass(frozen=True, slots=True)
class Reward:
    """A once-only reward marker: who got it, how much, when, and (feedback) the rating given."""

    account: bytes
    amount: int
    at: int
    rating: int = 0

    def to_list(self) -> list:
        """The record's canonical array form."""
        return [self.account, self.amount, self.at, self.rating]


# --- keys ------------------------------------------------------------------------------------------------


def _id_bytes(what: str, value: str) -> bytes:
    raw = value.encode()
    if not 0 < len(raw) <= MAX_ID_BYTES:
        raise SchemaError(f"{what} of {len(raw)} bytes; expected 1..{MAX_ID_BYTES}")
    return raw


def ticket_key(ticket_id: str) -> bytes:
    """State key of a ticket."""
    return PREFIX_TICKET + _id_bytes("ticket id", ticket_id)


def feedback_key(target_kind: str, target_id: str) -> bytes:
    """State key of the feedback-reward marker of an order or a ticket."""
    if target_kind not in FEEDBACK_TARGETS:
        raise SchemaError(f"feedback target {target_kind!r}; expected one of {', '.join(FEEDBACK_TARGETS)}")
    return PREFIX_FEEDBACK + FEEDBACK_TARGETS[target_kind] + _id_bytes("target id", target_id)


def training_key(staff: bytes, course_id: str) -> bytes:
    """State key of the training-reward marker of a staff member and a course."""
    if len(staff) != 32:
        raise SchemaError(f"staff account of {len(staff)} bytes; expected 32")
    return PREFIX_TRAINING + staff + _id_bytes("course id", course_id)


# --- getters and setters ---------------------------------------------------------------------------------


def get_ticket(state: StateReader, ticket_id: str) -> Ticket | None:
    """Return the stored ticket, or None if there is none (or the id could never be one)."""
    if not is_valid_id(ticket_id):
        return None
    raw = state.get_state(ticket_key(ticket_id))
    return None if raw is None else compute_record(Ticket, raw, f"ticket {ticket_id!r}")


def set_ticket(state: Any, ticket_id: str, ticket: Ticket) -> None:
    """Store ``ticket`` (``state`` is an ``Overlay``)."""
    if ticket.state not in STATES:  # a step wrote a state the machine does not know: a bug
        raise SchemaError(f"ticket state {ticket.state!r}; expected one of {', '.join(STATES)}")
    state.set_state(ticket_key(ticket_id), codec.encode(ticket.to_list()))


def verify_ticket(state: StateReader, ticket_id: str) -> Ticket:
    """Return the ticket; raise ``TxFailure(ticket_not_found)`` if there is none."""
    ticket = get_ticket(state, ticket_id)
    if ticket is None:
        raise TxFailure(reasons.TICKET_NOT_FOUND, f"ticket {ticket_id[:80]!r} does not exist")
    return ticket


def verify_ticket_state(ticket_id: str, ticket: Ticket, allowed: tuple[str, ...], action: str) -> None:
    """Raise ``TxFailure(ticket_state)`` naming the state seen and expected unless it is in ``allowed``."""
    if ticket.state not in allowed:
        raise TxFailure(reasons.TICKET_STATE, f"ticket {ticket_id!r} is {ticket.state}; {action} needs it to be "
                                              f"{' or '.join(allowed)}")


def verify_ticket_customer(ticket_id: str, ticket: Ticket, account: bytes) -> None:
    """Raise ``TxFailure(not_ticket_customer)`` unless ``account`` is the ticket's customer (the message
    never names the owner: the sender reads it in tx status and may not read the ticket)."""
    if ticket.customer != account:
        raise TxFailure(reasons.NOT_TICKET_CUSTOMER, f"ticket {ticket_id!r} is not a ticket of "
                                                     f"{account.hex()[:16]}…")


def get_reward(state: StateReader, key: bytes) -> Reward | None:
    """Return the reward marker at ``key`` (``feedback_key`` / ``training_key``), or None if never paid."""
    raw = state.get_state(key)
    return None if raw is None else compute_record(Reward, raw, "reward")


def set_reward(state: Any, key: bytes, reward: Reward) -> None:
    """Store a reward marker (``state`` is an ``Overlay``)."""
    state.set_state(key, codec.encode(reward.to_list()))


# --- analytics (off chain: reads committed state, never part of a transition) ------------------------------


def compute_tickets(items: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple[str, Ticket]]:
    """Yield (ticket_id, ticket) for every ticket among state ``items`` (e.g. ``Store.iter_state(b"t")``)."""
    for key, raw in items:
        if key[:1] == PREFIX_TICKET:
            ticket_id = key[1:].decode()
            yield ticket_id, compute_record(Ticket, raw, f"ticket {ticket_id!r}")
