"""Coupon kinds: ``issue-coupon`` (issuer or branch admin) and ``redeem-coupon`` (a customer, on an order).

Theory of operation
-------------------
A coupon is a campaign's discount of ``value`` fiat minor units, redeemable ``total`` times in all and
``per_customer_limit`` times per customer until ``expires_at_ms`` (dead at exactly that block time, like a
coin lot). Redeeming is always ON AN ORDER: ``ledger.orders.apply_coupon`` records the discount on the
customer's unpaid order and refuses an order that already has one, so a coupon never pays twice for one
order; the counters here (``redeemed`` in the coupon record, one count per (customer, coupon)) bound the rest.
A coupon creates no coins: its value is fiat, off the coin supply.

Keys: ``b"k\\x00" + coupon_id`` -> P([campaign, value, expires_at_ms, per_customer_limit, total, redeemed,
issuer, branch, issued_at_ms]); ``b"k\\x01" + customer(32) + coupon_id`` -> P(times redeemed).

issue-coupon  payload [coupon_id: str, campaign: str, value: int, expires_at_ms: int, per_customer_limit: int,
              total: int]; event ["coupon_issued", coupon_id, campaign, value, expires_at_ms, per_customer_limit,
              total]
redeem-coupon payload [coupon_id: str, order_id: str]; events = apply_coupon's ["coupon_applied", order_id,
              customer, discount], then ["coupon_redeemed", coupon_id, customer, order_id, value]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ledger import reasons
from ledger.customers import get_branch_of, verify_customer
from ledger.limits import verify_not_frozen
from ledger.errors import SchemaError
from ledger.events import CouponIssued, CouponRedeemed, Event
from ledger.orders import apply_coupon, verify_id
from ledger.process.common import TxContext, verify_any_role, verify_name, verify_rule
from ledger.process.payload import Amount, Id, Int, Text, arg, declare_kind
from ledger.reasons import TxFailure
from ledger.state import PREFIX_COUPON, StateReader, get_record, set_record

COUPON_RECORD = b"\x00"
COUPON_USE = b"\x01"
MAX_COUPON_ID_BYTES = 64


@dataclass(frozen=True, slots=True)
class Coupon:
    """An issued coupon and how many times it has been redeemed."""

    campaign: str
    value: int
    expires_at_ms: int
    per_customer_limit: int
    total: int
    redeemed: int
    issuer: bytes
    branch: str
    issued_at_ms: int

    def to_list(self) -> list:
        return [self.campaign, self.value, self.expires_at_ms, self.per_customer_limit, self.total, self.redeemed,
                self.issuer, self.branch, self.issued_at_ms]


@dataclass(frozen=True, slots=True)
class IssueCoupon:
    """An issue-coupon payload."""

    coupon_id: Id = arg("The new coupon's id.")
    campaign: Text = arg("The campaign it belongs to.")
    value: Amount = arg("Its discount in fiat minor units.")
    expires_at_ms: Int = arg("Block time (ms since the epoch) at which it dies.")
    per_customer_limit: Int = arg("Times one customer may redeem it.", 1)
    total: Int = arg("Copies in all.", 1)


@dataclass(frozen=True, slots=True)
class RedeemCoupon:
    """A redeem-coupon payload."""

    coupon_id: Id = arg("The coupon to redeem.")
    order_id: Id = arg("Your unpaid order it discounts.")


# --- state -----------------------------------------------------------------------------------------------


def coupon_key(coupon_id: str) -> bytes:
    """State key of a coupon."""
    raw = coupon_id.encode()
    if not 0 < len(raw) <= MAX_COUPON_ID_BYTES:
        raise SchemaError(f"coupon id of {len(raw)} bytes; expected 1..{MAX_COUPON_ID_BYTES}")
    return PREFIX_COUPON + COUPON_RECORD + raw


def coupon_use_key(customer: bytes, coupon_id: str) -> bytes:
    """State key of how many times ``customer`` redeemed ``coupon_id``."""
    if len(customer) != 32:
        raise SchemaError(f"customer id of {len(customer)} bytes; expected 32")
    return PREFIX_COUPON + COUPON_USE + customer + coupon_key(coupon_id)[2:]


def get_coupon(state: StateReader, coupon_id: str) -> Coupon | None:
    """Return the coupon, or None if it was never issued."""
    if not 0 < len(coupon_id.encode()) <= MAX_COUPON_ID_BYTES:
        return None
    value = get_record(state, coupon_key(coupon_id))
    if value is None:
        return None
    types = (str, int, int, int, int, int, bytes, str, int)
    if not (isinstance(value, list) and len(value) == len(types)
            and all(type(v) is t for v, t in zip(value, types))):
        raise SchemaError(f"state coupon {coupon_id!r}: expected {len(types)} typed fields")
    return Coupon(*value)


def get_coupon_uses(state: StateReader, customer: bytes, coupon_id: str) -> int:
    """Return how many times ``customer`` has redeemed ``coupon_id``."""
    value = get_record(state, coupon_use_key(customer, coupon_id))
    if value is not None and not (type(value) is int and value > 0):
        raise SchemaError(f"state coupon use of {coupon_id!r}: expected a positive int")
    return value or 0


# --- issue-coupon ----------------------------------------------------------------------------------------


def process_issue_coupon(ctx: TxContext, tx: IssueCoupon) -> list[Event]:
    """Issue coupon ``tx.coupon_id`` for a campaign."""
    # Only an issuer or a branch admin issues coupons
    verify_any_role(ctx, "issuer", "branch-admin")
    # The coupon id is usable as a key and on the command line
    verify_id("coupon id", tx.coupon_id)
    # The campaign is named
    verify_name("campaign", tx.campaign)
    # The value and both limits are positive
    verify_rule(tx.value > 0 and tx.per_customer_limit > 0 and tx.total > 0, reasons.INVALID_COUPON,
                f"value {tx.value}, per-customer limit {tx.per_customer_limit}, total {tx.total}; "
                "expected each above 0")
    # It expires after this block (a coupon born dead would only confuse customers)
    verify_rule(tx.expires_at_ms > ctx.timestamp_ms, reasons.INVALID_COUPON,
                f"expires at {tx.expires_at_ms}; expected after the block time {ctx.timestamp_ms}")
    # The id is new: an issued coupon is never redefined
    verify_rule(get_coupon(ctx.state, tx.coupon_id) is None, reasons.COUPON_EXISTS,
                f"coupon {tx.coupon_id!r} already exists")

    coupon = Coupon(tx.campaign, tx.value, tx.expires_at_ms, tx.per_customer_limit, tx.total, 0, ctx.sender,
                    get_branch_of(ctx.state, ctx.sender), ctx.timestamp_ms)
    set_record(ctx.state, coupon_key(tx.coupon_id), coupon.to_list())
    return [CouponIssued(tx.coupon_id, tx.campaign, tx.value, tx.expires_at_ms, tx.per_customer_limit, tx.total)]


# --- redeem-coupon ---------------------------------------------------------------------------------------


def process_redeem_coupon(ctx: TxContext, tx: RedeemCoupon) -> list[Event]:
    """Apply coupon ``tx.coupon_id`` as a discount on the sender's unpaid order ``tx.order_id``."""
    # Only a registered customer redeems coupons
    verify_customer(ctx, ctx.sender)
    # A frozen account cannot redeem
    verify_not_frozen(ctx, ctx.sender)
    # The coupon exists
    coupon = get_coupon(ctx.state, tx.coupon_id)
    if coupon is None:
        raise TxFailure(reasons.UNKNOWN_COUPON, f"coupon {tx.coupon_id[:80]!r} was never issued")
    # It has not expired at this block's time
    verify_rule(ctx.timestamp_ms < coupon.expires_at_ms, reasons.COUPON_EXPIRED,
                f"coupon {tx.coupon_id!r} expired at {coupon.expires_at_ms}; the block time is {ctx.timestamp_ms}")
    # Copies are left
    verify_rule(coupon.redeemed < coupon.total, reasons.COUPON_EXHAUSTED,
                f"coupon {tx.coupon_id!r} was redeemed {coupon.redeemed} of {coupon.total} times")
    # The customer is under the per-customer limit
    uses = get_coupon_uses(ctx.state, ctx.sender, tx.coupon_id)
    verify_rule(uses < coupon.per_customer_limit, reasons.COUPON_LIMIT_REACHED,
                f"customer redeemed {tx.coupon_id!r} {uses} time(s); the limit is {coupon.per_customer_limit}")
    # The order exists, is the customer's, is unpaid and has no coupon yet (ledger.orders)
    events = apply_coupon(ctx, tx.order_id, ctx.sender, coupon.value)

    set_record(ctx.state, coupon_key(tx.coupon_id), replace(coupon, redeemed=coupon.redeemed + 1).to_list())
    set_record(ctx.state, coupon_use_key(ctx.sender, tx.coupon_id), uses + 1)
    events.append(CouponRedeemed(tx.coupon_id, ctx.sender, tx.order_id, coupon.value))
    return events


SPECS = (
    declare_kind("issue-coupon", IssueCoupon, process_issue_coupon, senders="issuer or branch admin",
                 help="Issue a coupon of a campaign: fiat value, expiry, per-customer limit, total copies."),
    declare_kind("redeem-coupon", RedeemCoupon, process_redeem_coupon, senders="customer",
                 help="Redeem a coupon on one of your unpaid orders (customer)."),
)
