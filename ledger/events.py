"""Typed, named events: one frozen dataclass per event kind, declared once.

A step builds typed events (``Credited(account, amount, source, expires_at_ms)``); ``to_wire()`` gives the
array committed in a result, ``[kind, *fields]`` in field order, byte-for-byte the format of DESIGN "Wire
formats" (field order here IS the wire order: never reorder, only add new kinds). Readers turn a committed
array back into its typed event with ``decode_event`` and read fields by name; an array of an unknown kind
or of an unexpected arity decodes to ``UnknownEvent`` instead of raising, so an old reader never crashes
on a newer chain.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any, ClassVar, Iterable, Sequence


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every typed event: ``KIND`` is its wire name, its dataclass fields are the wire fields."""

    KIND: ClassVar[str] = ""
    ACCOUNT_FIELDS: ClassVar[tuple[str, ...]] = ()  # fields that name an account (history, mentions)
    _GET: ClassVar[Any] = None  # attrgetter over every field, in wire order (set by ``_event``)

    def to_wire(self) -> list:
        """The committed array: ``[KIND, *fields]`` in declaration order."""
        values = self._GET(self)
        return [self.KIND, *values] if type(values) is tuple else [self.KIND, values]

    def accounts(self) -> tuple[bytes, ...]:
        """The accounts this event names (who should see it in their history)."""
        return tuple(getattr(self, name) for name in self.ACCOUNT_FIELDS)

    def mentions(self, account: bytes) -> bool:
        """True iff ``account`` is one of the accounts this event names."""
        return account in self.accounts()


_REGISTRY: dict[str, type[Event]] = {}


def _event(kind: str, *account_fields: str):
    """Class decorator: name the event kind, note its account fields, register it for ``decode_event``."""

    def register(cls: type[Event]) -> type[Event]:
        if kind in _REGISTRY:
            raise RuntimeError(f"event kind {kind!r} is declared twice")
        names = tuple(f.name for f in fields(cls))
        if not set(account_fields) <= set(names):
            raise RuntimeError(f"event {kind!r}: account fields {account_fields} are not all fields of {names}")
        cls.KIND, cls.ACCOUNT_FIELDS, cls._GET = kind, account_fields, attrgetter(*names)
        _REGISTRY[kind] = cls
        return cls

    return register


# --- coin (ledger.lots) --------------------------------------------------------------------------------------


@_event("credited", "account")
@dataclass(frozen=True, slots=True)
class Credited(Event):
    account: bytes
    amount: int
    source: str
    expires_at_ms: int


@_event("spent", "account")
@dataclass(frozen=True, slots=True)
class Spent(Event):
    account: bytes
    amount: int
    purpose: str


@_event("expired", "account")
@dataclass(frozen=True, slots=True)
class Expired(Event):
    account: bytes
    amount: int


@_event("clawed_back", "account")
@dataclass(frozen=True, slots=True)
class ClawedBack(Event):
    account: bytes
    amount: int
    purpose: str


@_event("transferred", "sender", "to")
@dataclass(frozen=True, slots=True)
class Transferred(Event):
    sender: bytes
    to: bytes
    amount: int


# --- governance, customers, compliance, privileges -----------------------------------------------------------


@_event("policy_set")
@dataclass(frozen=True, slots=True)
class PolicySet(Event):
    name: str
    value: int | str
    version: int


@_event("role_granted", "account")
@dataclass(frozen=True, slots=True)
class RoleGranted(Event):
    account: bytes
    role: str
    branch: str


@_event("role_revoked", "account")
@dataclass(frozen=True, slots=True)
class RoleRevoked(Event):
    account: bytes
    role: str


@_event("customer_registered", "customer")
@dataclass(frozen=True, slots=True)
class CustomerRegistered(Event):
    customer: bytes
    kyc_level: int
    commitment: bytes
    branch: str


@_event("second_factor_set", "account", "second_key")
@dataclass(frozen=True, slots=True)
class SecondFactorSet(Event):
    account: bytes
    second_key: bytes


@_event("customer_data_erased", "customer")
@dataclass(frozen=True, slots=True)
class CustomerDataErased(Event):
    customer: bytes
    commitment: bytes


@_event("account_frozen", "account")
@dataclass(frozen=True, slots=True)
class AccountFrozen(Event):
    account: bytes
    reason_code: str


@_event("account_unfrozen", "account")
@dataclass(frozen=True, slots=True)
class AccountUnfrozen(Event):
    account: bytes
    reason_code: str


@_event("privilege_bought", "account")
@dataclass(frozen=True, slots=True)
class PrivilegeBought(Event):
    account: bytes
    privilege: str
    price: int
    expires_at_ms: int


# --- coupons and orders --------------------------------------------------------------------------------------


@_event("coupon_issued", "customer")
@dataclass(frozen=True, slots=True)
class CouponIssued(Event):
    coupon_id: str
    campaign: str
    value: int  # minor units of ``currency``
    currency: str
    expires_at_ms: int
    customer: bytes  # the one customer who may redeem it; 32 zero bytes = anyone (up to ``total``)
    total: int


@_event("coupon_applied", "customer")
@dataclass(frozen=True, slots=True)
class CouponApplied(Event):
    order_id: str
    customer: bytes
    discount: int


@_event("coupon_redeemed", "customer")
@dataclass(frozen=True, slots=True)
class CouponRedeemed(Event):
    coupon_id: str
    customer: bytes
    order_id: str
    value: int


@_event("order_created", "customer")
@dataclass(frozen=True, slots=True)
class OrderCreated(Event):
    order_id: str
    customer: bytes
    fiat_amount: int
    currency: str
    branch: str


@_event("order_paid", "customer")
@dataclass(frozen=True, slots=True)
class OrderPaid(Event):
    order_id: str
    customer: bytes
    coins: int
    fiat_paid: int


@_event("order_confirmed", "customer")
@dataclass(frozen=True, slots=True)
class OrderConfirmed(Event):
    order_id: str
    customer: bytes
    earned: int


@_event("order_refunded", "customer")
@dataclass(frozen=True, slots=True)
class OrderRefunded(Event):
    order_id: str
    customer: bytes
    coins_returned: int
    clawed_back: int
    fiat_refunded: int


# --- tickets, feedback, training -----------------------------------------------------------------------------


@_event("ticket_opened", "customer")
@dataclass(frozen=True, slots=True)
class TicketOpened(Event):
    ticket_id: str
    customer: bytes
    category: str
    priority: int
    flagged: int
    branch: str


@_event("ticket_assigned", "staff")
@dataclass(frozen=True, slots=True)
class TicketAssigned(Event):
    ticket_id: str
    staff: bytes
    branch: str


@_event("ticket_responded", "staff")
@dataclass(frozen=True, slots=True)
class TicketResponded(Event):
    ticket_id: str
    staff: bytes
    first_response_ms: int  # since the ticket was opened


@_event("ticket_resolved", "staff")
@dataclass(frozen=True, slots=True)
class TicketResolved(Event):
    ticket_id: str
    staff: bytes
    resolution_ms: int  # since the ticket was opened


@_event("ticket_reopened", "customer")
@dataclass(frozen=True, slots=True)
class TicketReopened(Event):
    ticket_id: str
    customer: bytes
    reopen_count: int


@_event("ticket_closed", "closed_by")
@dataclass(frozen=True, slots=True)
class TicketClosed(Event):
    ticket_id: str
    closed_by: bytes


@_event("compensated", "customer")
@dataclass(frozen=True, slots=True)
class Compensated(Event):
    ticket_id: str
    customer: bytes
    amount: int


@_event("feedback", "customer")
@dataclass(frozen=True, slots=True)
class Feedback(Event):
    target_kind: str  # "ticket" | "order"
    target_id: str
    customer: bytes
    rating: int
    reward: int


@_event("trained", "staff")
@dataclass(frozen=True, slots=True)
class Trained(Event):
    staff: bytes
    course_id: str
    reward: int


# --- governance proposals and their effects (ledger.process.governance) -------------------------------------


@_event("proposal_opened", "proposer")
@dataclass(frozen=True, slots=True)
class ProposalOpened(Event):
    proposal_id: str
    action: str  # "grant-role", "set-policy", "add-validator", ...
    proposer: bytes
    branch: str
    expires_at_ms: int


@_event("proposal_approved", "approver")
@dataclass(frozen=True, slots=True)
class ProposalApproved(Event):
    proposal_id: str
    approver: bytes
    branch: str
    approvals: int  # distinct branches that approved so far (this one included)
    quorum: int  # distinct branches needed


@_event("proposal_decided")
@dataclass(frozen=True, slots=True)
class ProposalDecided(Event):
    proposal_id: str
    action: str
    effect: str  # the kind of the effect event that follows (role_granted, policy_set, ...)


@_event("validator_set_scheduled", "node_public_key")
@dataclass(frozen=True, slots=True)
class ValidatorSetScheduled(Event):
    change: str  # "add" | "remove"
    branch_name: str
    node_public_key: bytes
    effective_height: int  # the first height the new set seals
    validator_set_hash: bytes  # H(new set)


@_event("training_course_set")
@dataclass(frozen=True, slots=True)
class TrainingCourseSet(Event):
    course_id: str
    reward: int


@_event("governance_quorum_set")
@dataclass(frozen=True, slots=True)
class GovernanceQuorumSet(Event):
    quorum: int
    branches: int


# --- issue 12, orders: FX rates, refunds of unconfirmed fiat, debt (ledger.fx, ledger.debt) -------------------


@_event("fx_rate_set", "set_by")
@dataclass(frozen=True, slots=True)
class FxRateSet(Event):
    currency: str
    rate: int  # base-currency minor units per 1,000,000 minor units of ``currency``
    set_by: bytes


@_event("fiat_refund_withheld", "customer")
@dataclass(frozen=True, slots=True)
class FiatRefundWithheld(Event):
    order_id: str
    customer: bytes
    fiat_paid: int  # the fiat recorded as paid but never confirmed as received: none of it is refunded


@_event("debt_incurred", "account")
@dataclass(frozen=True, slots=True)
class DebtIncurred(Event):
    account: bytes
    amount: int  # coins the clawback could not take back
    purpose: str  # "refund:<order_id>"
    debt: int  # the account's whole debt after this


@_event("debt_repaid", "account")
@dataclass(frozen=True, slots=True)
class DebtRepaid(Event):
    account: bytes
    amount: int  # coins that went to the debt instead of the account (never minted) or were burned for it
    source: str  # the credit source it came out of ("earn", "reward", ...), or "repay-debt"
    debt: int  # what the account still owes

# --- sweep: block-time sweeps (ledger.sweeps) -----------------------------------------------------------------


@_event("sweep_failed")
@dataclass(frozen=True, slots=True)
class SweepFailed(Event):
    """A due entry whose sweeper failed: its writes were rolled back and the entry was dropped (no retry loop)."""

    queue: int
    due_ms: int
    subject: bytes
    reason: str


# --- issue 12, sla: waiting on the customer and the SLA clock (ledger.sla) ---------------------------------


@_event("ticket_waiting", "staff")
@dataclass(frozen=True, slots=True)
class TicketWaiting(Event):
    ticket_id: str
    staff: bytes  # who asked the customer (the SLA clock pauses)


@_event("ticket_replied", "customer")
@dataclass(frozen=True, slots=True)
class TicketReplied(Event):
    ticket_id: str
    customer: bytes
    waited_ms: int  # how long the ticket waited on the customer (the clock resumes)


@_event("sla_clock", "customer")
@dataclass(frozen=True, slots=True)
class SlaClock(Event):
    ticket_id: str
    customer: bytes
    first_response_due_ms: int  # the deadlines now in force (0 = no target)
    resolution_due_ms: int


@_event("sla_breached", "customer")
@dataclass(frozen=True, slots=True)
class SlaBreached(Event):
    ticket_id: str
    customer: bytes
    target: str  # "first_response" | "resolution"
    deadline_ms: int
    compensation: int  # coins credited to the customer (0 when the credit was refused)


@_event("sla_compensation_refused", "customer")
@dataclass(frozen=True, slots=True)
class SlaCompensationRefused(Event):
    ticket_id: str
    customer: bytes
    target: str
    reason: str  # the failure reason of the credit (mint_cap_exceeded, account_frozen, ...)


# --- campaigns (issue 12, campaigns branch: ledger.campaigns) ---------------------------------------------


@_event("campaign_created")
@dataclass(frozen=True, slots=True)
class CampaignCreated(Event):
    campaign_id: str
    trigger: str  # order_confirmed | first_order | feedback | registration
    effect: str  # bonus | multiplier | coupon
    amount: int  # bonus coins, multiplier percent of the coins earned, or the coupon's value
    budget: int
    starts_at_ms: int
    ends_at_ms: int  # 0 = no end date


@_event("campaign_ended")
@dataclass(frozen=True, slots=True)
class CampaignEnded(Event):
    campaign_id: str
    why: str  # governance | over (past its end date) | exhausted (budget left below one effect)


@_event("campaign_applied", "customer")
@dataclass(frozen=True, slots=True)
class CampaignApplied(Event):
    campaign_id: str
    customer: bytes
    effect: str
    amount: int  # coins credited, or the coupon's value
    ref: str  # the coupon id for a coupon effect, the order id for an order's bonus, else ""


@_event("campaign_skipped", "customer")
@dataclass(frozen=True, slots=True)
class CampaignSkipped(Event):
    campaign_id: str
    customer: bytes
    reason: str  # the reason code that kept the effect from applying (campaign_budget_exhausted, ...)


# --- decoding ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnknownEvent(Event):
    """An array this code has no declaration for (unknown kind, wrong arity, not an array): kept as is."""

    kind: str
    values: tuple

    def to_wire(self) -> list:
        return [self.kind, *self.values]

    def accounts(self) -> tuple[bytes, ...]:
        return tuple(v for v in self.values if isinstance(v, bytes) and len(v) == 32)


_ARITY: dict[str, int] = {kind: len(fields(cls)) for kind, cls in _REGISTRY.items()}


def decode_event(wire: Any) -> Event:
    """The typed event of a committed array ``[kind, *fields]``; ``UnknownEvent`` for anything else."""
    if not isinstance(wire, (list, tuple)) or not wire or not isinstance(wire[0], str):
        return UnknownEvent("", tuple(wire) if isinstance(wire, (list, tuple)) else (wire,))
    kind = wire[0]
    cls = _REGISTRY.get(kind)
    if cls is None or len(wire) - 1 != _ARITY[kind]:
        return UnknownEvent(kind, tuple(wire[1:]))
    return cls(*wire[1:])


def to_wire_events(events: Iterable[Event]) -> list[list]:
    """The committed arrays of ``events``, in order."""
    return [event.to_wire() for event in events]


def get_event_kinds() -> dict[str, type[Event]]:
    """Every declared event kind and its class."""
    return dict(_REGISTRY)


def events_mention(events: Sequence[Any], account: bytes) -> bool:
    """True iff one of the committed arrays ``events`` names ``account`` in an account field."""
    return any(decode_event(e).mentions(account) for e in events)
