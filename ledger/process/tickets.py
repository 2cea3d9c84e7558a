"""Ticket kinds: open/assign/respond/wait/reply/resolve/reopen/close-ticket, ``compensate``, ``submit-feedback``.

Theory of operation
-------------------
The ticket record and its state machine live in ``ledger.tickets`` (see the diagram there); each step
here is one transition: its checks (one comment + one check each, in the order a support agent would ask
them: who, which ticket, which state, which values) and then one record write. Times are block times:
``first_response_at`` - ``opened_at`` and ``resolved_at`` - ``opened_at`` are the SLA figures reports use.
The SLA clock (deadlines, the pause while waiting on the customer, breaches) is ``ledger.sla``: opening
starts it, a question to the customer (wait) pauses it, the customer's reply resumes it crediting the wait
(at most ``sla_max_wait_ms``), staff acting again (respond, resolve) resume it crediting nothing, reopening
restarts the resolution clock. A response, a question or a resolution must commit to a text: the empty commitment
(``NO_TEXT``) is refused (``empty_commitment``), so a wait is a real question and a resolution says how.
Compensation credits coins on an active complaint ticket up to ``compensation_cap_per_ticket`` in total and
``compensation_cap_per_customer`` per customer per ``compensation_period_ms`` (``ledger.limits``); feedback on
a resolved ticket or a confirmed, unrefunded order pays ``feedback_reward`` once per target, guarded by a
marker key.

Separation of duties: staff (and admins assigning) act only on tickets of their own branch. A ticket belongs
to a branch from its opening: the linked order's, or, opened by a customer without an order, the customer's
registered branch (``Customer.branch``); staff of another branch get ``wrong_branch``. Assignees are staff of the assigner's branch; compensation needs
the ticket in the sender's branch and is never paid by a staff member to their own account.

payloads:
    open-ticket     [ticket_id: str, category: str, priority: int, order_id: str, content_hash: bin32]
    assign-ticket   [ticket_id: str, staff: bin32]
    respond-ticket  [ticket_id: str, content_hash: bin32]
    wait-ticket     [ticket_id: str, content_hash: bin32]
    reply-ticket    [ticket_id: str, content_hash: bin32]
    resolve-ticket  [ticket_id: str, resolution_hash: bin32]
    reopen-ticket   [ticket_id: str, reason_hash: bin32]
    close-ticket    [ticket_id: str]
    compensate      [ticket_id: str, amount: int]
    submit-feedback [target_kind: "ticket" | "order", target_id: str, rating: int, comment_hash: bin32]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ledger import campaigns, customers, limits, lots, reasons, sla
from ledger.events import (
    Compensated, Event, Feedback, TicketAssigned, TicketClosed, TicketOpened, TicketReopened, TicketReplied,
    TicketResolved, TicketResponded, TicketWaiting,
)
from ledger.commitments import NO_TEXT
from ledger.orders import set_order, verify_id, verify_order, verify_order_customer
from ledger.process.common import (
    TxContext, get_policy_value, verify_not_self, verify_own_branch, verify_positive_amount,
    verify_role, verify_rule,
)
from ledger.process.orders import is_staff
from ledger.process.payload import Account, Amount, ContentHash, Id, Int, Text, arg, declare_kind
from ledger.state import has_role
from ledger.tickets import (
    ACTIVE, CATEGORIES, FEEDBACK_TARGETS, PRIORITIES, Reward, Ticket, feedback_key, get_reward, get_ticket,
    set_reward, set_ticket, verify_ticket, verify_ticket_customer, verify_ticket_state,
)

WAITABLE: tuple[str, ...] = tuple(s for s in ACTIVE if s != "waiting")


@dataclass(frozen=True, slots=True)
class OpenTicket:
    """An open-ticket payload."""

    ticket_id: Id = arg("The new ticket's id.")
    category: Text = arg("complaint, inquiry or suggestion.")
    priority: Int = arg("1 (low) to 3 (high).", 2)
    order_id: Id = arg("The order it is about, if any.", "")
    content_hash: ContentHash = arg("What the customer says")


@dataclass(frozen=True, slots=True)
class AssignTicket:
    """An assign-ticket payload."""

    ticket_id: Id = arg("The ticket.")
    staff: Account = arg("The staff member's account id (64 hex digits).")


@dataclass(frozen=True, slots=True)
class RespondTicket:
    """A respond-ticket payload: the ticket and the hash of the response given to the customer."""

    ticket_id: Id = arg("The ticket.")
    content_hash: ContentHash = arg("The response")


@dataclass(frozen=True, slots=True)
class WaitTicket:
    """A wait-ticket payload: the ticket and the hash of the question put to the customer."""

    ticket_id: Id = arg("The ticket.")
    content_hash: ContentHash = arg("The question to the customer")


@dataclass(frozen=True, slots=True)
class ReplyTicket:
    """A reply-ticket payload: the ticket and the hash of the customer's answer."""

    ticket_id: Id = arg("Your ticket, waiting on you.")
    content_hash: ContentHash = arg("Your answer")


@dataclass(frozen=True, slots=True)
class ResolveTicket:
    """A resolve-ticket payload: the ticket and the hash of the resolution given to the customer."""

    ticket_id: Id = arg("The ticket.")
    resolution_hash: ContentHash = arg("The resolution")


@dataclass(frozen=True, slots=True)
class ReopenTicket:
    """A reopen-ticket payload."""

    ticket_id: Id = arg("Your resolved ticket.")
    reason_hash: ContentHash = arg("Why")


@dataclass(frozen=True, slots=True)
class CloseTicket:
    """A close-ticket payload."""

    ticket_id: Id = arg("The resolved ticket.")


@dataclass(frozen=True, slots=True)
class Compensate:
    """A compensate payload."""

    ticket_id: Id = arg("The complaint ticket.")
    amount: Amount = arg("Coins to credit to its customer.")


@dataclass(frozen=True, slots=True)
class SubmitFeedback:
    """A submit-feedback payload."""

    target_kind: Text = arg("ticket or order.")
    target_id: Id = arg("The resolved ticket or confirmed order.")
    rating: Int = arg("1 to 5.")
    comment_hash: ContentHash = arg("Your comment", "")


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
    # Staff open tickets only on orders of their own branch
    if staff and order is not None:
        verify_own_branch(ctx, order.branch, f"order {tx.order_id!r}")
    customer = order.customer if staff and order is not None else ctx.sender
    # A customer opening a ticket is registered
    if not staff:
        customers.verify_customer(ctx, customer)
    # A customer links only their own order
    if not staff and order is not None:
        verify_order_customer(tx.order_id, order, customer)

    # (a ticket is in a branch from the start: the order's, else the customer's registered branch)
    branch = order.branch if order is not None else customers.get_customer(ctx.state, customer).branch
    flagged = int(any(customers.has_privilege(ctx.state, customer, p, ctx.timestamp_ms) for p in ("priority", "vip")))
    ticket, clock = sla.process_start(ctx, tx.ticket_id, Ticket(
        customer, ctx.sender, branch, tx.category, tx.priority, flagged, tx.order_id, tx.content_hash, "open",
        opened_at=ctx.timestamp_ms))
    set_ticket(ctx.state, tx.ticket_id, ticket)
    return [TicketOpened(tx.ticket_id, customer, tx.category, tx.priority, flagged, branch), *clock]


def verify_staff_or_admin(ctx: TxContext) -> None:
    """Raise ``unauthorized`` unless the sender is staff or a branch admin."""
    verify_rule(is_staff(ctx) or has_role(ctx.state, "branch-admin", ctx.sender), reasons.UNAUTHORIZED,
                f"sender {ctx.sender.hex()[:16]}… holds neither the 'staff' nor the 'branch-admin' role")


def verify_ticket_branch(ctx: TxContext, ticket_id: str, ticket: Ticket) -> None:
    """Raise ``wrong_branch`` unless the ticket is in the sender's branch."""
    verify_own_branch(ctx, ticket.branch, f"ticket {ticket_id!r}")


def verify_commitment(what: str, content_hash: bytes) -> None:
    """Raise ``empty_commitment`` if ``content_hash`` is ``NO_TEXT`` (it commits to no text)."""
    verify_rule(content_hash != NO_TEXT, reasons.EMPTY_COMMITMENT,
                f"{what} is the empty commitment (32 zero bytes); expected the commitment to a text")


def process_assign_ticket(ctx: TxContext, tx: AssignTicket) -> list[Event]:
    """Assign an active ticket to a staff member of the sender's branch."""
    # Staff or a branch admin assign tickets
    verify_staff_or_admin(ctx)
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # It is in the sender's branch
    verify_ticket_branch(ctx, tx.ticket_id, ticket)
    # It is active
    verify_ticket_state(tx.ticket_id, ticket, ACTIVE, "assign")
    # The assignee is staff
    verify_rule(has_role(ctx.state, "staff", tx.staff), reasons.NOT_STAFF,
                f"assignee {tx.staff.hex()[:16]}… does not hold the 'staff' role")
    # ... of the sender's branch
    branch = customers.get_branch_of(ctx.state, tx.staff)
    verify_own_branch(ctx, branch, f"assignee {tx.staff.hex()[:16]}…")

    state = ticket.state if ticket.state in ("in_progress", "waiting") else "assigned"
    set_ticket(ctx.state, tx.ticket_id, replace(ticket, assignee=tx.staff, branch=branch, state=state))
    return [TicketAssigned(tx.ticket_id, tx.staff, branch)]


def process_respond_ticket(ctx: TxContext, tx: RespondTicket) -> list[Event]:
    """Record a staff response; the first one fixes the ticket's first-response time."""
    # Only staff respond
    verify_role(ctx, "staff")
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # It is in the sender's branch
    verify_ticket_branch(ctx, tx.ticket_id, ticket)
    # It is active
    verify_ticket_state(tx.ticket_id, ticket, ACTIVE, "respond")

    # It commits to a text
    verify_commitment("the response", tx.content_hash)

    # (a response ends a wait on the customer, crediting nothing: staff cannot stop the clock alone)
    ticket, clock = sla.process_resume(ctx, tx.ticket_id, ticket, credit=False)
    first = ticket.first_response_at or ctx.timestamp_ms
    ticket = replace(ticket, state="in_progress", first_response_at=first, last_response_hash=tx.content_hash)
    sla.process_met(ctx, tx.ticket_id, ticket, sla.FIRST_RESPONSE)
    set_ticket(ctx.state, tx.ticket_id, ticket)
    return [TicketResponded(tx.ticket_id, ctx.sender, first - ticket.opened_at), *clock]


def process_wait_ticket(ctx: TxContext, tx: WaitTicket) -> list[Event]:
    """Staff ask the customer something: the ticket waits on the customer and its SLA clock pauses."""
    # Only staff ask the customer
    verify_role(ctx, "staff")
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # It is in the sender's branch
    verify_ticket_branch(ctx, tx.ticket_id, ticket)
    # It is active and not already waiting
    verify_ticket_state(tx.ticket_id, ticket, WAITABLE, "wait")

    # It asks a real question (commits to a text)
    verify_commitment("the question", tx.content_hash)

    ticket = replace(ticket, state="waiting", first_response_at=ticket.first_response_at or ctx.timestamp_ms,
                     last_response_hash=tx.content_hash)
    sla.process_met(ctx, tx.ticket_id, ticket, sla.FIRST_RESPONSE)  # a question to the customer is a response
    set_ticket(ctx.state, tx.ticket_id, sla.process_pause(ctx, tx.ticket_id, ticket))
    return [TicketWaiting(tx.ticket_id, ctx.sender)]


def process_reply_ticket(ctx: TxContext, tx: ReplyTicket) -> list[Event]:
    """The customer answers a ticket waiting on them: back to in_progress, the SLA clock resumes."""
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # It is the sender's
    verify_ticket_customer(tx.ticket_id, ticket, ctx.sender)
    # It waits on the customer
    verify_ticket_state(tx.ticket_id, ticket, ("waiting",), "reply")

    waited = ctx.timestamp_ms - ticket.paused_at
    ticket, clock = sla.process_resume(ctx, tx.ticket_id, ticket, credit=True)
    set_ticket(ctx.state, tx.ticket_id, replace(ticket, state="in_progress", last_reply_hash=tx.content_hash))
    return [TicketReplied(tx.ticket_id, ctx.sender, waited), *clock]


def process_resolve_ticket(ctx: TxContext, tx: ResolveTicket) -> list[Event]:
    """Resolve an active ticket; records the resolution time (and the first response if none came before)."""
    # Only staff resolve
    verify_role(ctx, "staff")
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # It is in the sender's branch
    verify_ticket_branch(ctx, tx.ticket_id, ticket)
    # It is active
    verify_ticket_state(tx.ticket_id, ticket, ACTIVE, "resolve")
    # It says how (an empty resolution would stop both SLA clocks for nothing)
    verify_commitment("the resolution", tx.resolution_hash)

    # (resolving ends a wait crediting nothing: a deadline that passed while waiting is missed)
    ticket, _ = sla.process_resume(ctx, tx.ticket_id, ticket, credit=False)
    ticket = replace(ticket, state="resolved", resolved_at=ctx.timestamp_ms, resolution_hash=tx.resolution_hash,
                     first_response_at=ticket.first_response_at or ctx.timestamp_ms)
    for target in sla.TARGETS:
        sla.process_met(ctx, tx.ticket_id, ticket, target)
    set_ticket(ctx.state, tx.ticket_id, ticket)
    return [TicketResolved(tx.ticket_id, ctx.sender, ctx.timestamp_ms - ticket.opened_at)]


def process_reopen_ticket(ctx: TxContext, tx: ReopenTicket) -> list[Event]:
    """The customer reopens a resolved (not closed) ticket."""
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # It is the sender's
    verify_ticket_customer(tx.ticket_id, ticket, ctx.sender)
    # Only a resolved ticket reopens; a closed one is final
    verify_ticket_state(tx.ticket_id, ticket, ("resolved",), "reopen")

    ticket, clock = sla.process_restart_resolution(ctx, tx.ticket_id, ticket)
    set_ticket(ctx.state, tx.ticket_id, replace(ticket, state="open", resolved_at=0,
                                                reopen_count=ticket.reopen_count + 1))
    return [TicketReopened(tx.ticket_id, ctx.sender, ticket.reopen_count + 1), *clock]


def process_close_ticket(ctx: TxContext, tx: CloseTicket) -> list[Event]:
    """The customer or staff close a resolved ticket for good."""
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # The sender is the ticket's customer, or staff of the ticket's branch
    if ctx.sender != ticket.customer:
        if not is_staff(ctx):
            verify_ticket_customer(tx.ticket_id, ticket, ctx.sender)
        verify_ticket_branch(ctx, tx.ticket_id, ticket)
    # Only a resolved ticket closes
    verify_ticket_state(tx.ticket_id, ticket, ("resolved",), "close")

    set_ticket(ctx.state, tx.ticket_id, replace(ticket, state="closed", closed_at=ctx.timestamp_ms))
    return [TicketClosed(tx.ticket_id, ctx.sender)]


def process_compensate(ctx: TxContext, tx: Compensate) -> list[Event]:
    """Credit compensation coins to the customer of an active complaint ticket, within the cap per ticket and
    the cap per customer per period (compensation is no earning: it never raises a tier)."""
    # Only staff compensate
    verify_role(ctx, "staff")
    # The ticket exists
    ticket = verify_ticket(ctx.state, tx.ticket_id)
    # It is in the sender's branch
    verify_ticket_branch(ctx, tx.ticket_id, ticket)
    # It is not the sender's own ticket
    verify_not_self(ctx, ticket.customer, "compensate a ticket")
    # It is a complaint
    verify_rule(ticket.category == "complaint", reasons.NOT_A_COMPLAINT,
                f"ticket {tx.ticket_id!r} is a {ticket.category}; compensation needs a complaint")
    # It is active: a resolved or closed ticket is compensated no more
    verify_ticket_state(tx.ticket_id, ticket, ACTIVE, "compensate")
    # The amount is positive
    verify_positive_amount(tx.amount)
    # The ticket's total stays within the cap
    cap = get_policy_value(ctx, "compensation_cap_per_ticket")
    verify_rule(ticket.compensated + tx.amount <= cap, reasons.COMPENSATION_CAP_EXCEEDED,
                f"ticket {tx.ticket_id!r} has {ticket.compensated} compensated; {tx.amount} more would make "
                f"{ticket.compensated + tx.amount}, the cap is {cap}")
    # The customer's total this period stays within the cap per customer, whatever the ticket
    limits.add_compensation(ctx, ticket.customer, tx.amount)

    events = lots.credit(ctx, ticket.customer, tx.amount, "compensation")
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
        verify_rule(not order.refunded_at, reasons.ORDER_REFUNDED,
                    f"order {tx.target_id!r} was refunded at {order.refunded_at}; feedback needs an unrefunded order")
    # Feedback is rewarded once per target
    key = feedback_key(tx.target_kind, tx.target_id)
    previous = get_reward(ctx.state, key)
    verify_rule(previous is None, reasons.ALREADY_REWARDED,
                f"feedback on {tx.target_kind} {tx.target_id!r} was rewarded at {previous.at if previous else 0}; "
                "a target is rewarded once")

    reward = get_policy_value(ctx, "feedback_reward")
    events = lots.credit(ctx, ctx.sender, reward, "reward") if reward else []
    set_reward(ctx.state, key, Reward(ctx.sender, reward, ctx.timestamp_ms, tx.rating))
    if tx.target_kind == "ticket":
        set_ticket(ctx.state, tx.target_id, replace(ticket, rating=tx.rating))
    else:
        set_order(ctx.state, tx.target_id, replace(order, rating=tx.rating))
    branch, currency, amount = ((ticket.branch, "", 0) if tx.target_kind == "ticket"
                                else (order.branch, order.currency, order.base_amount))
    return events + [Feedback(tx.target_kind, tx.target_id, ctx.sender, tx.rating, reward),
                     *campaigns.process_trigger(ctx, "feedback", ctx.sender, branch=branch, currency=currency,
                                                amount_base=amount)]


SPECS = (
    declare_kind("open-ticket", OpenTicket, process_open_ticket, senders="customer, or staff on a customer's order",
                 help="Open a ticket: complaint, inquiry or suggestion, priority 1-3, optionally on an order."),
    declare_kind("assign-ticket", AssignTicket, process_assign_ticket, senders="staff or branch admin",
                 help="Assign a ticket to a staff member (staff or branch admin)."),
    declare_kind("respond-ticket", RespondTicket, process_respond_ticket, senders="staff",
                 help="Respond to a ticket (staff); the first response fixes the first-response time."),
    declare_kind("wait-ticket", WaitTicket, process_wait_ticket, senders="staff",
                 help="Ask the ticket's customer something (staff); the SLA clock pauses until they reply."),
    declare_kind("reply-ticket", ReplyTicket, process_reply_ticket, senders="the ticket's customer",
                 help="Answer your ticket waiting on you (customer); its SLA clock resumes."),
    declare_kind("resolve-ticket", ResolveTicket, process_resolve_ticket, senders="staff",
                 help="Resolve a ticket (staff)."),
    declare_kind("reopen-ticket", ReopenTicket, process_reopen_ticket, senders="the ticket's customer",
                 help="Reopen your resolved ticket (customer)."),
    declare_kind("close-ticket", CloseTicket, process_close_ticket, senders="the ticket's customer or staff",
                 help="Close a ticket for good (its customer or staff)."),
    declare_kind("compensate", Compensate, process_compensate, senders="staff",
                 help="Pay coins on a complaint ticket, capped per ticket by policy (staff)."),
    declare_kind("submit-feedback", SubmitFeedback, process_submit_feedback, senders="customer",
                 help="Rate a resolved ticket or a confirmed order 1-5; rewarded once (customer)."),
)
