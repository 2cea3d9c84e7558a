"""The SLA clock of a ticket: deadlines, the pause while waiting on the customer, and breaches that compensate.

Theory of operation
-------------------
**Targets.** Policy sets two targets per category and priority, in milliseconds (0 = no target):
``sla_first_response_ms_<category>_p<priority>`` and ``sla_resolution_ms_<category>_p<priority>``. A
customer holding the ``priority`` privilege when the ticket opens gets every target x
``privilege_priority_sla_factor_pct`` / 100; the factor used is recorded on the ticket (``sla_factor_pct``)
so later clock changes use the same one.

**Deadlines** are absolute block times on the ticket record (``first_response_due``, ``resolution_due``),
set at opening, and each has an entry in the SLA due queue (``ledger.due.QUEUE_SLA``, subject =
target code byte + ticket id). A target is **met** when its action (first response or question to the
customer / resolution) happens at a block time strictly before the deadline; the block-time sweep runs
the entry of a deadline D in the first block with time >= D, before that block's transactions, so an answer
in that block is late.

**The pause.** ``wait-ticket`` (a real question: an empty commitment is refused) stops the clock
(``paused_at``) and moves the entries of the deadlines still running to their **wait bound**, deadline +
``sla_max_wait_ms``. Only the customer's ``reply-ticket`` credits the wait: every deadline running at the pause
moves later by the time waited, at most ``sla_max_wait_ms`` (``paused_ms`` adds up what was credited), and is
scheduled anew. Staff acting again while the ticket waits (respond, resolve) end the wait with nothing
credited: the deadlines stay where they were, and one that passed meanwhile breaches at the next block, so
staff cannot stop the clock alone. A ticket left waiting is late at its wait bound (the sweep breaches it
there). A deadline already missed before the pause stays where it is.

**Reopen** restarts the resolution clock: a new resolution deadline of the full target (x the recorded
factor) from the reopen time, unless the resolution target has already breached or was missed (a target
breaches at most once per ticket). The first-response target is never restarted.

**Breach.** ``process_sla_due`` runs for each due entry (the sweep has removed the entry). The record
decides, not the entry: an entry whose deadline is no longer the record's (moved), whose target was met,
whose ticket waits since before the deadline, or whose target already breached is stale and does nothing.
Otherwise the target breaches once: bit set in ``breached``, the policy's
``sla_breach_compensation_<target>`` credited to the customer (``ledger.lots.credit``, source "sla"), and
``["sla_breached", ticket_id, customer, target, deadline_ms, compensation]``. The compensation counts against
the customer's cap per period like a manual one (``ledger.limits.add_compensation``), all or nothing: a
breach that would take the customer past ``compensation_cap_per_customer`` pays 0. A credit the ledger
refuses (that cap, the supply cap, a frozen account) is rolled back alone: the breach is still recorded,
with compensation 0 and ``["sla_compensation_refused", ticket_id, customer, target, reason]``.
"""

from __future__ import annotations

from dataclasses import replace

from ledger import customers, due, limits, lots
from ledger.context import TxContext, get_policy_value
from ledger.events import Event, SlaBreached, SlaClock, SlaCompensationRefused
from ledger.reasons import TxFailure
from ledger.state import UINT_MAX
from ledger.tickets import Ticket, get_ticket, set_ticket

FIRST_RESPONSE = 1
RESOLUTION = 2
TARGETS: dict[int, str] = {FIRST_RESPONSE: "first_response", RESOLUTION: "resolution"}  # code: wire name


# --- pure arithmetic -----------------------------------------------------------------------------------------


def sla_subject(target: int, ticket_id: str) -> bytes:
    """The due-queue subject of a ticket's target: the target code byte, then the ticket id (utf-8)."""
    return bytes([target]) + ticket_id.encode()


def compute_subject(subject: bytes) -> tuple[int, str] | None:
    """(target, ticket_id) of a due-queue subject, or None if it is not one ``sla_subject`` makes."""
    if len(subject) < 2 or subject[0] not in TARGETS:
        return None
    try:
        return subject[0], subject[1:].decode()
    except UnicodeDecodeError:
        return None


def get_deadline(ticket: Ticket, target: int) -> int:
    """The ticket's deadline for ``target`` (0 = no target)."""
    return ticket.first_response_due if target == FIRST_RESPONSE else ticket.resolution_due


def get_met_at(ticket: Ticket, target: int) -> int:
    """When ``target``'s action happened (0 = not yet)."""
    return ticket.first_response_at if target == FIRST_RESPONSE else ticket.resolved_at


def with_deadline(ticket: Ticket, target: int, deadline: int) -> Ticket:
    """``ticket`` with ``target``'s deadline set."""
    if target == FIRST_RESPONSE:
        return replace(ticket, first_response_due=deadline)
    return replace(ticket, resolution_due=deadline)


def is_breached(ticket: Ticket, target: int) -> bool:
    """True once ``target`` has breached on this ticket (it never breaches again)."""
    return bool(ticket.breached & target)


def is_missed(ticket: Ticket, target: int, now_ms: int, max_wait_ms: int) -> bool:
    """True iff ``target`` has a deadline, has not breached yet, and was not met in time as of ``now_ms``.

    Met in time = its action before the deadline; a ticket waiting since before the deadline is not late
    (its clock is stopped) until its wait bound, deadline + ``max_wait_ms``.
    """
    deadline = get_deadline(ticket, target)
    if not deadline or is_breached(ticket, target):
        return False
    met_at = get_met_at(ticket, target)
    if met_at:
        return met_at >= deadline
    if ticket.paused_at:
        return ticket.paused_at >= deadline or now_ms >= get_wait_bound(deadline, max_wait_ms)
    return now_ms >= deadline


def get_wait_bound(deadline: int, max_wait_ms: int) -> int:
    """The block time a deadline running when the ticket started waiting is missed at if it is still waiting."""
    return min(deadline + max(0, max_wait_ms), UINT_MAX)


def is_running(ticket: Ticket, target: int, now_ms: int) -> bool:
    """True iff ``target``'s deadline is still ahead and nothing has met or breached it yet."""
    deadline = get_deadline(ticket, target)
    return bool(deadline) and not is_breached(ticket, target) and not get_met_at(ticket, target) \
        and now_ms < deadline


def compute_duration(ctx: TxContext, ticket: Ticket, target: int) -> int:
    """The target's duration for this ticket (policy target x the ticket's factor / 100; 0 = no target)."""
    name = f"sla_{TARGETS[target]}_ms_{ticket.category}_p{ticket.priority}"
    target_ms = get_policy_value(ctx, name)
    return max(1, target_ms * ticket.sla_factor_pct // 100) if target_ms else 0


def compute_factor(ctx: TxContext, customer: bytes) -> int:
    """The factor (percent) a new ticket of ``customer`` gets: the priority privilege's, else 100."""
    if customers.has_privilege(ctx.state, customer, "priority", ctx.timestamp_ms):
        return get_policy_value(ctx, "privilege_priority_sla_factor_pct")
    return 100


# --- clock steps (called by the ticket kinds; each returns the new record and its events) ------------------


def _unschedule(ctx: TxContext, ticket_id: str, target: int, deadline: int) -> None:
    # (only an entry that is there: no write for one the sweep or an earlier step already removed)
    if ctx.state.get_state(due.due_key(due.QUEUE_SLA, deadline, sla_subject(target, ticket_id))) is not None:
        due.unschedule(ctx.state, due.QUEUE_SLA, deadline, sla_subject(target, ticket_id))


def _set_deadline(ctx: TxContext, ticket_id: str, ticket: Ticket, target: int, deadline: int) -> Ticket:
    old = get_deadline(ticket, target)
    if old and old != deadline:
        _unschedule(ctx, ticket_id, target, old)
    if deadline:
        due.schedule(ctx.state, due.QUEUE_SLA, deadline, sla_subject(target, ticket_id))
    return with_deadline(ticket, target, deadline)


def _clock_event(ticket_id: str, ticket: Ticket) -> list[Event]:
    if not (ticket.first_response_due or ticket.resolution_due):
        return []
    return [SlaClock(ticket_id, ticket.customer, ticket.first_response_due, ticket.resolution_due)]


def process_start(ctx: TxContext, ticket_id: str, ticket: Ticket) -> tuple[Ticket, list[Event]]:
    """A new ticket: fix its factor and set both deadlines from the block time."""
    ticket = replace(ticket, sla_factor_pct=compute_factor(ctx, ticket.customer))
    for target in TARGETS:
        duration = compute_duration(ctx, ticket, target)
        deadline = min(ctx.timestamp_ms + duration, UINT_MAX) if duration else 0
        ticket = _set_deadline(ctx, ticket_id, ticket, target, deadline)
    return ticket, _clock_event(ticket_id, ticket)


def process_pause(ctx: TxContext, ticket_id: str, ticket: Ticket) -> Ticket:
    """The ticket starts waiting on the customer: running deadlines' entries move to their wait bound."""
    max_wait = get_policy_value(ctx, "sla_max_wait_ms")
    for target in TARGETS:
        if is_running(ticket, target, ctx.timestamp_ms):
            deadline = get_deadline(ticket, target)
            _unschedule(ctx, ticket_id, target, deadline)
            due.schedule(ctx.state, due.QUEUE_SLA, get_wait_bound(deadline, max_wait), sla_subject(target, ticket_id))
    return replace(ticket, paused_at=ctx.timestamp_ms)


def process_resume(ctx: TxContext, ticket_id: str, ticket: Ticket, *, credit: bool) -> tuple[Ticket, list[Event]]:
    """The ticket stops waiting. With ``credit`` (the customer replied), deadlines still running at the pause
    move later by the time waited, at most ``sla_max_wait_ms``; without (staff ended the wait), they stay."""
    if not ticket.paused_at:
        return ticket, []
    max_wait = get_policy_value(ctx, "sla_max_wait_ms")
    credited = min(ctx.timestamp_ms - ticket.paused_at, max(0, max_wait)) if credit else 0
    for target in TARGETS:
        if is_running(ticket, target, ticket.paused_at):  # (running when the clock stopped)
            deadline = get_deadline(ticket, target)
            _unschedule(ctx, ticket_id, target, get_wait_bound(deadline, max_wait))
            ticket = with_deadline(ticket, target, 0)  # (its entry is not at the deadline: schedule it anew)
            ticket = _set_deadline(ctx, ticket_id, ticket, target, min(deadline + credited, UINT_MAX))
    ticket = replace(ticket, paused_at=0, paused_ms=ticket.paused_ms + credited)
    return ticket, _clock_event(ticket_id, ticket) if credited else []


def process_met(ctx: TxContext, ticket_id: str, ticket: Ticket, target: int) -> None:
    """``target``'s action was just recorded on ``ticket``: in time, its entry leaves the queue (late, it stays
    for the sweep)."""
    deadline = get_deadline(ticket, target)
    if deadline and get_met_at(ticket, target) < deadline and not is_breached(ticket, target):
        _unschedule(ctx, ticket_id, target, deadline)


def process_restart_resolution(ctx: TxContext, ticket_id: str, ticket: Ticket) -> tuple[Ticket, list[Event]]:
    """A resolved ticket reopens: a fresh resolution deadline from now (returned with ``resolved_at`` still set),
    unless the resolution target breached or was missed (a target breaches at most once; a missed one keeps
    its deadline and its queue entry, so the sweep still breaches it once the caller clears ``resolved_at``)."""
    if is_breached(ticket, RESOLUTION) or is_missed(ticket, RESOLUTION, ctx.timestamp_ms,
                                                    get_policy_value(ctx, "sla_max_wait_ms")):
        return ticket, []
    duration = compute_duration(ctx, ticket, RESOLUTION)
    deadline = min(ctx.timestamp_ms + duration, UINT_MAX) if duration else 0
    ticket = _set_deadline(ctx, ticket_id, ticket, RESOLUTION, deadline)
    return ticket, _clock_event(ticket_id, ticket)


# --- the sweep ----------------------------------------------------------------------------------------------


def process_sla_due(ctx: TxContext, due_ms: int, subject: bytes) -> list[Event]:
    """Check one due SLA entry (already removed from the queue); breach and compensate if the target was missed.

    A stale entry (unknown subject or ticket, deadline moved, target met or breached, ticket waiting since
    before the deadline and not yet at its wait bound) returns [] and writes nothing (an entry of a wait bound
    that ``sla_max_wait_ms`` has since made later is scheduled again at the new bound).
    """
    parsed = compute_subject(subject)
    if parsed is None:
        return []
    target, ticket_id = parsed
    ticket = get_ticket(ctx.state, ticket_id)
    if ticket is None:
        return []
    max_wait = get_policy_value(ctx, "sla_max_wait_ms")
    deadline = get_deadline(ticket, target)
    if ticket.paused_at and is_running(ticket, target, ticket.paused_at):  # waiting: its entry is a wait bound
        bound = get_wait_bound(deadline, max_wait)
        if due_ms <= deadline:
            return []
        if ctx.timestamp_ms < bound:  # (a bound set under a shorter sla_max_wait_ms: wait until the current one)
            due.schedule(ctx.state, due.QUEUE_SLA, bound, subject)
            return []
    elif due_ms != deadline:
        return []
    if not is_missed(ticket, target, ctx.timestamp_ms, max_wait):
        return []
    return process_breach(ctx, ticket_id, ticket, target)


def process_breach(ctx: TxContext, ticket_id: str, ticket: Ticket, target: int) -> list[Event]:
    """Record ``target``'s breach on the ticket and credit the policy's compensation (a refused credit: 0)."""
    name = TARGETS[target]
    amount = get_policy_value(ctx, f"sla_breach_compensation_{name}")
    events: list[Event] = []
    refused = ""
    mark = ctx.state.checkpoint()
    try:
        limits.add_compensation(ctx, ticket.customer, amount)  # (the customer's cap per period, as compensate)
        events = lots.credit(ctx, ticket.customer, amount, "sla")
    except TxFailure as failure:  # that cap, the supply cap, a frozen account: the breach stands, unpaid
        ctx.state.rollback(mark)
        events, refused, amount = [], failure.reason.name, 0
    set_ticket(ctx.state, ticket_id, replace(ticket, breached=ticket.breached | target,
                                             sla_compensated=ticket.sla_compensated + amount))
    events.append(SlaBreached(ticket_id, ticket.customer, name, get_deadline(ticket, target), amount))
    if refused:
        events.append(SlaCompensationRefused(ticket_id, ticket.customer, name, refused))
    return events
