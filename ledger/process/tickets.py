"""Ticket kinds: open/assign/respond/resolve/reopen/close-ticket, ``compensate`` and ``submit-feedback``.

Theory of operation
-------------------
The ticket record and its state machine live in ``ledger.tickets`` (see the diagram there); each step
here is one transition: its checks (one comment + one check each, in the order a support agent would ask
them: who, which ticket, which state, which values) and then one record write. Times are block times:
``first_response_at`` - ``opened_at`` and ``resolved_at`` - ``opened_at`` are the SLA figures reports use.
Compensation credits coins on a complaint ticket up to ``compensation_cap_per_ticket`` in total; feedback
on a resolved ticket or a confirmed order pays ``feedback_reward`` once per target, guarded by a marker key.

payloads:
    open-ticket     [ticket_id: str, category: str, priority: int, order_id: str, content_hash: bin32]
    assign-ticket   [ticket_id: str, staff: bin32]
    respond-ticket  [ticket_id: str, content_hash: bin32]
    resolve-ticket  [ticket_id: str, resolution_hash: bin32]
    reopen-ticket   [ticket_id: str, reason: str]
    close-ticket    [ticket_id: str]
    compensate      [ticket_id: str, amount: int]
    submit-feedback [target_kind: "ticket" | "order", target_id: str, rating: int, comment_hash: bin32]
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ledger.events import Event, TicketOpened, TicketAssigned, TicketResponded, TicketResolved, TicketReopened, TicketClosed, Compensated, Feedback
from ledger import coin, reasons
from ledger.orders import set_order, verify_id, verify_order, verify_order_customer
from ledger.process.common import (
    KindSpec, TxContext, expect_account, expect_int, expect_payload, expect_str, get_policy_value,
    verify_positive_amount, verify_role, verify_rule,
)
from ledger.process.orders import expect_hash, is_staff, verify_text
from ledger.state import has_role
from ledger.tickets import (
    ACTIVE, CATEGORIES, FEEDBACK_TARGETS, PRIORITIES, Reward, Ticket, feedback_key, get_reward, get_ticket,
    set_reward, set_ticket, verify_ticket, verify_ticket_customer, verify_ticket_state,
)
from ledger.types import AccountId, Hash32


@dataclass(frozen=True, slots=True)
class OpenTicket:
    """An open-ticket payload, shape-checked."""

    ticket_id: str
    category: str
    priority: int
    order_id: str
    content_hash: Hash32


@dataclass(frozen=True, slots=True)
class AssignTicket:
    """An assign-ticket payload, shape-checked."""

    ticket_id: str
    staff: AccountId


@dataclass(frozen=True, slots=True)
class TicketText:
    """A respond-ticket or resolve-ticket payload: the ticket and the hash of the text given to the customer."""

    ticket_id: str
    content_hash: Hash32


@dataclass(frozen=True, slots=True)
class ReopenTicket:
    """A reopen-ticket payload, shape-checked."""

    ticket_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CloseTicket:
    """A close-ticket payload, shape-checked."""

    ticket_id: str


@dataclass(frozen=True, slots=True)
class Compensate:
    """A compensate payload, shape-checked."""

    ticket_id: str
    amount: int


@dataclass(frozen=True, slots=True)
class SubmitFeedback:
    """A submit-feedback payload, shape-checked."""

    target_kind: str
    target_id: str
    rating: int
    comment_hash: Hash32


# --- payload shapes --------------------------------------------------------------------------------------


def compute_open_ticket(payload: Any) -> OpenTicket:
    """Check the payload's shape and return an ``OpenTicket``; raise ``InvalidTransaction(bad_payload)``."""
    k = "open-ticket"
    tid, category, priority, order_id, content = expect_payload(
        k, payload, "[ticket_id: str, category: str, priority: int, order_id: str, content_hash: bin32]", 5)
    return OpenTicket(expect_str(k, "ticket_id", tid), expect_str(k, "category", category),
                      expect_int(k, "priority", priority), expect_str(k, "order_id", order_id),
                      expect_hash(k, "content_hash", content))


def compute_assign_ticket(payload: Any) -> AssignTicket:
    """Check the payload's shape and return an ``AssignTicket``; raise ``InvalidTransaction(bad_payload)``."""
    tid, staff = expect_payload("assign-ticket", payload, "[ticket_id: str, staff: bin32]", 2)
    return AssignTicket(expect_str("assign-ticket", "ticket_id", tid), expect_account("assign-ticket", "staff", staff))


def _compute_ticket_text(kind: str, field: str) -> Any:
    def compute(payload: Any) -> TicketText:
        tid, content = expect_payload(kind, payload, f"[ticket_id: str, {field}: bin32]", 2)
        return TicketText(expect_str(kind, "ticket_id", tid), expect_hash(kind, field, content))
    compute.__doc__ = f"Check a {kind} payload's shape and return a ``TicketText``; raise ``bad_payload``."
    return compute


compute_respond_ticket = _compute_ticket_text("respond-ticket", "content_hash")
compute_resolve_ticket = _compute_ticket_text("resolve-ticket", "resolution_hash")


def compute_reopen_ticket(payload: Any) -> ReopenTicket:
    """Check the payload's shape and return a ``ReopenTicket``; raise ``InvalidTransaction(bad_payload)``."""
    tid, reason = expect_payload("reopen-ticket", payload, "[ticket_id: str, reason: str]", 2)
    return ReopenTicket(expect_str("reopen-ticket", "ticket_id", tid), expect_str("reopen-ticket", "reason", reason))


def compute_close_ticket(payload: Any) -> CloseTicket:
    """Check the payload's shape and return a ``CloseTicket``; raise ``InvalidTransaction(bad_payload)``."""
    (tid,) = expect_payload("close-ticket", payload, "[ticket_id: str]", 1)
    return CloseTicket(expect_str("close-ticket", "ticket_id", tid))


def compute_compensate(payload: Any) -> Compensate:
    """Check the payload's shape and return a ``Compensate``; raise ``InvalidTransaction(bad_payload)``."""
    tid, amount = expect_payload("compensate", payload, "[ticket_id: str, amount: int]", 2)
    return Compensate(expect_str("compensate", "ticket_id", tid), expect_int("compensate", "amount", amount))


def compute_submit_feedback(payload: Any) -> SubmitFeedback:
    """Check the payload's shape and return a ``SubmitFeedback``; raise ``InvalidTransaction(bad_payload)``."""
    k = "submit-feedback"
    target_kind, target_id, rating, comment = expect_payload(
        k, payload, "[target_kind: str, target_id: str, rating: int, comment_hash: bin32]", 4)
    return SubmitFeedback(expect_str(k, "target_kind", target_kind), expect_str(k, "target_id", target_id),
                          expect_int(k, "rating", rating), expect_hash(k, "comment_hash", comment))


# --- steps -----------------------------------------------------------------------------------------------


def process_open_ticket(ctx: TxContext, tx: OpenTicket) -> list[Event]:
    """Open a ticket for the sender (a customer) or, by staff, for the customer of the linked order."""
    # The ticket id is usable as a key
    verify_id("ticket id", tx.ticket_id)
    # It was never used before
    verify_rule(get_ticket(ctx.state, tx.ticket_id) is None, reasons.TICKET_EXISTS,
                f"ticket {tx.ticket_id!r} already exists; expected a new ticket id")
    # The category is a known one
    verify_rule(tx.category in CATEGORIES, reasons.INVALID_CATEGORY,
                f"category is {tx.category[:40]!r}; expected one of {', '.join(CATEGORIES)}")
    # The priority is 1..3
    verify_rule(tx.priority in PRIORITIES, reasons.INVALID_PRIORITY, f"priority is {tx.priority}; expected 1, 2 or 3")
    staff = is_staff(ctx)
    # Staff open a ticket only for the customer of a linked order (the payload names no customer)
    verify_rule(bool(tx.order_id) or not staff, reasons.ORDER_REQUIRED,
                "a staff member opened a ticket with no order; expected the id of the customer's order")
    # A linked order exists
    order = verify_order(ctx.state, tx.order_id) if tx.order_id else None
    customer = order.customer if staff and order is not None else ctx.sender
    # A customer opening a ticket is registered
    if not staff:
        coin.verify_customer(ctx, customer)
    # A customer links only their own order
    if not staff and order is not None:
        verify_order_customer(tx.order_id, order, customer)

    branch = coin.get_branch_of(ctx.state, ctx.sender) if staff else (order.branch if order else "")
    flagged = int(any(coin.has_privilege(ctx.state, customer, p, ctx.timestamp_ms) for p in ("priority", "vip")))
    set_ticket(ctx.state, tx.ticket_id, Ticket(
        customer, ctx.sender, branch, tx.category, tx.priority, flagged, tx.order_id, tx.content_hash, "open",
        opened_at=ctx.timestamp_ms))
    return [TicketOpened(tx.ticket_id, customer, tx.category, tx.priority, flagged, branch)]


def verify_staff_or_admin(ctx: TxContext) -> None:
    """Raise ``unauthorized`` unless the sender is staff or a branch admin."""
    verify_rule(is_staff(ctx) or has_role(ctx.state, "branch-admin", ctx.sender), reasons.UNAUTHORIZED,
                f"sender {ctx.sender.hex()[:16]}… holds neither the 'staff' nor the 'branch-admin' role")


def process_assign_ticket(ctx: TxContext, tx: AssignTicket) -> list[Event]:
    """Assign an active ticket to a staff member (the ticket moves to that member's branch)."""
    # Staff or a branch admin assign tickets
    verify_staff_or_admin(ctx)
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # It is active
    verify_ticket_state(tx.ticket_id, ticket, ACTIVE, "assign")
    # The assignee is staff
    verify_rule(has_role(ctx.state, "staff", tx.staff), reasons.NOT_STAFF,
                f"assignee {tx.staff.hex()[:16]}… does not hold the 'staff' role")

    branch = coin.get_branch_of(ctx.state, tx.staff)
    state = "in_progress" if ticket.state == "in_progress" else "assigned"
    set_ticket(ctx.state, tx.ticket_id, replace(ticket, assignee=tx.staff, branch=branch, state=state))
    return [TicketAssigned(tx.ticket_id, tx.staff, branch)]


def process_respond_ticket(ctx: TxContext, tx: TicketText) -> list[Event]:
    """Record a staff response; the first one fixes the ticket's first-response time."""
    # Only staff respond
    verify_role(ctx, "staff")
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # It is active
    verify_ticket_state(tx.ticket_id, ticket, ACTIVE, "respond")

    first = ticket.first_response_at or ctx.timestamp_ms
    branch = ticket.branch or coin.get_branch_of(ctx.state, ctx.sender)
    set_ticket(ctx.state, tx.ticket_id, replace(ticket, state="in_progress", first_response_at=first, branch=branch,
                                                last_response_hash=tx.content_hash))
    return [TicketResponded(tx.ticket_id, ctx.sender, first - ticket.opened_at)]


def process_resolve_ticket(ctx: TxContext, tx: TicketText) -> list[Event]:
    """Resolve an active ticket; records the resolution time (and the first response if none came before)."""
    # Only staff resolve
    verify_role(ctx, "staff")
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # It is active
    verify_ticket_state(tx.ticket_id, ticket, ACTIVE, "resolve")

    branch = ticket.branch or coin.get_branch_of(ctx.state, ctx.sender)
    set_ticket(ctx.state, tx.ticket_id, replace(
        ticket, state="resolved", resolved_at=ctx.timestamp_ms, resolution_hash=tx.content_hash, branch=branch,
        first_response_at=ticket.first_response_at or ctx.timestamp_ms))
    return [TicketResolved(tx.ticket_id, ctx.sender, ctx.timestamp_ms - ticket.opened_at)]


def process_reopen_ticket(ctx: TxContext, tx: ReopenTicket) -> list[Event]:
    """The customer reopens a resolved (not closed) ticket."""
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # It is the sender's
    verify_ticket_customer(tx.ticket_id, ticket, ctx.sender)
    # The reason fits on a receipt
    verify_text("reopen reason", tx.reason)
    # Only a resolved ticket reopens; a closed one is final
    verify_ticket_state(tx.ticket_id, ticket, ("resolved",), "reopen")

    set_ticket(ctx.state, tx.ticket_id, replace(ticket, state="open", resolved_at=0,
                                                reopen_count=ticket.reopen_count + 1))
    return [TicketReopened(tx.ticket_id, ctx.sender, ticket.reopen_count + 1)]


def process_close_ticket(ctx: TxContext, tx: CloseTicket) -> list[Event]:
    """The customer or staff close a resolved ticket for good."""
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # The sender is staff or the ticket's customer
    if not is_staff(ctx):
        verify_ticket_customer(tx.ticket_id, ticket, ctx.sender)
    # Only a resolved ticket closes
    verify_ticket_state(tx.ticket_id, ticket, ("resolved",), "close")

    set_ticket(ctx.state, tx.ticket_id, replace(ticket, state="closed", closed_at=ctx.timestamp_ms))
    return [TicketClosed(tx.ticket_id, ctx.sender)]


def process_compensate(ctx: TxContext, tx: Compensate) -> list[Event]:
    """Credit compensation coins to the customer of a complaint ticket, within the cap per ticket."""
    # Only staff compensate
    verify_role(ctx, "staff")
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # It is a complaint
    verify_rule(ticket.category == "complaint", reasons.NOT_A_COMPLAINT,
                f"ticket {tx.ticket_id!r} is a {ticket.category}; compensation needs a complaint")
    # The amount is positive
    verify_positive_amount(tx.amount)
    # The ticket's total stays within the cap
    cap = get_policy_value(ctx, "compensation_cap_per_ticket")
    verify_rule(ticket.compensated + tx.amount <= cap, reasons.COMPENSATION_CAP_EXCEEDED,
                f"ticket {tx.ticket_id!r} has {ticket.compensated} compensated; {tx.amount} more would make "
                f"{ticket.compensated + tx.amount}, the cap is {cap}")

    events = coin.credit(ctx, ticket.customer, tx.amount, "compensation")
    set_ticket(ctx.state, tx.ticket_id, replace(ticket, compensated=ticket.compensated + tx.amount))
    return events + [Compensated(tx.ticket_id, ticket.customer, tx.amount)]


def process_submit_feedback(ctx: TxContext, tx: SubmitFeedback) -> list[Event]:
    """Record the customer's rating of a resolved ticket or confirmed order and pay the reward once."""
    # The target is a ticket or an order
    verify_rule(tx.target_kind in FEEDBACK_TARGETS, reasons.INVALID_TARGET,
                f"target kind is {tx.target_kind[:40]!r}; expected 'ticket' or 'order'")
    # The rating is 1..5
    verify_rule(1 <= tx.rating <= 5, reasons.INVALID_RATING, f"rating is {tx.rating}; expected 1 to 5")
    # The target exists, is the sender's, and is finished (ticket resolved or closed, order confirmed)
    if tx.target_kind == "ticket":
        ticket = verify_ticket(ctx.state, tx.target_id)
        verify_ticket_customer(tx.target_id, ticket, ctx.sender)
        verify_ticket_state(tx.target_id, ticket, ("resolved", "closed"), "feedback")
    else:
        order = verify_order(ctx.state, tx.target_id)
        verify_order_customer(tx.target_id, order, ctx.sender)
        verify_rule(bool(order.confirmed_at), reasons.NOT_CONFIRMED,
                    f"order {tx.target_id!r} is {order.status}; feedback needs a confirmed order")
    # Feedback is rewarded once per target
    key = feedback_key(tx.target_kind, tx.target_id)
    previous = get_reward(ctx.state, key)
    verify_rule(previous is None, reasons.ALREADY_REWARDED,
                f"feedback on {tx.target_kind} {tx.target_id!r} was rewarded at {previous.at if previous else 0}; "
                "a target is rewarded once")

    reward = get_policy_value(ctx, "feedback_reward")
    events = coin.credit(ctx, ctx.sender, reward, "reward") if reward else []
    set_reward(ctx.state, key, Reward(ctx.sender, reward, ctx.timestamp_ms, tx.rating))
    if tx.target_kind == "ticket":
        set_ticket(ctx.state, tx.target_id, replace(ticket, rating=tx.rating))
    else:
        set_order(ctx.state, tx.target_id, replace(order, rating=tx.rating))
    return events + [Feedback(tx.target_kind, tx.target_id, ctx.sender, tx.rating, reward)]


SPECS = (
    KindSpec("open-ticket", compute_open_ticket, process_open_ticket),
    KindSpec("assign-ticket", compute_assign_ticket, process_assign_ticket),
    KindSpec("respond-ticket", compute_respond_ticket, process_respond_ticket),
    KindSpec("resolve-ticket", compute_resolve_ticket, process_resolve_ticket),
    KindSpec("reopen-ticket", compute_reopen_ticket, process_reopen_ticket),
    KindSpec("close-ticket", compute_close_ticket, process_close_ticket),
    KindSpec("compensate", compute_compensate, process_compensate),
    KindSpec("submit-feedback", compute_submit_feedback, process_submit_feedback),
)
