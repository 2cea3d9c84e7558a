"""Order records in state, shared id rules, and ``apply_coupon`` (the hook coupons use to discount an order).

Theory of operation
-------------------
An order is one state record under ``b"o" + order_id`` (utf-8), written by the order kinds
(``ledger/process/orders.py``) and by ``apply_coupon``. Its life is a one-way path read from its timestamps:

    created --pay--> paid --confirm--> confirmed
                      \\______________________\\--refund--> refunded   (from paid or confirmed, once)

A timestamp of 0 means "not yet" (block times are far above 0). The record keeps everything a report needs
(branch, amounts, times, earned, refunded, rating), so analytics read state without replaying history.
An order in another currency than the base records the FX rate in force at its creation (``ledger.fx``)
and its value in base-currency minor units: coin shares and earnings use the base value, while the fiat
paid and refunded stay in the order's own currency.
The record is a canonical msgpack array in the field order of ``Order``: a wire format — append only.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from ledger import codec, reasons
from ledger.fx import FX_UNIT
from ledger.errors import SchemaError
from ledger.events import CouponApplied, Event
from ledger.reasons import TxFailure
from ledger.state import PREFIX_ORDER, StateReader

if TYPE_CHECKING:
    from ledger.process.common import TxContext

MAX_ID_BYTES = 64


@dataclass(frozen=True, slots=True)
class Order:
    """An order as stored: who, what, how it was paid, and what happened to it (0 = not yet)."""

    customer: bytes
    staff: bytes  # who created it
    branch: str  # the creating staff member's branch, for per-branch reports
    fiat_amount: int  # minor units of ``currency``, before any coupon
    currency: str
    items_hash: bytes
    created_at: int
    discount: int = 0  # coupon discount in fiat minor units
    coupon_applied: int = 0  # 1 once a coupon was applied (at most one per order)
    coins_paid: int = 0
    fiat_paid: int = 0
    paid_at: int = 0
    confirmed_at: int = 0
    earned: int = 0
    refunded_at: int = 0
    coins_returned: int = 0
    clawed_back: int = 0
    fiat_refunded: int = 0
    rating: int = 0  # feedback rating 1..5, 0 = none
    # issue 12 (orders): the FX rate at creation, values in the base currency, the lots paid, the debt left
    fx_rate: int = FX_UNIT  # base minor units per FX_UNIT minor units of ``currency`` (FX_UNIT = the base itself)
    base_amount: int = 0  # ``fiat_amount`` in base-currency minor units (floor)
    paid_lots: tuple = ()  # ((expires_at_ms, amount), ...): the coin lots pay-order burned, for the refund
    debt_incurred: int = 0  # earned coins the refund could not claw back (the customer's debt from this order)

    def to_list(self) -> list:
        """The record's canonical array form."""
        return list(astuple(self))

    @property
    def amount_due(self) -> int:
        """Fiat minor units to pay after the coupon discount (never below 0)."""
        return max(0, self.fiat_amount - self.discount)

    def to_base(self, minor: int) -> int:
        """``minor`` units of the order's currency in base-currency minor units, at the order's rate (floor)."""
        return minor * self.fx_rate // FX_UNIT

    @property
    def amount_due_base(self) -> int:
        """The amount due after the coupon, in base-currency minor units (the coin share is taken of this)."""
        return self.to_base(self.amount_due)

    @property
    def status(self) -> str:
        """created | paid | confirmed | refunded (the latest step reached)."""
        if self.refunded_at:
            return "refunded"
        if self.confirmed_at:
            return "confirmed"
        return "paid" if self.paid_at else "created"



def compute_record(cls: Any, raw: bytes, what: str) -> Any:
    """Decode a stored record array into ``cls`` (a dataclass of int/str/bytes fields, and ``tuple`` fields of
    ``[int, int]`` pairs such as lots); raise ``SchemaError``."""
    value = codec.decode(raw)
    names = [f.name for f in fields(cls)]
    if not isinstance(value, list) or len(value) != len(names):
        raise SchemaError(f"state {what}: expected an array of {len(names)} fields, got {value!r:.60}")
    items = []
    for name, field_type, item in zip(names, (f.type for f in fields(cls)), value):
        if field_type == "tuple":
            if not (type(item) is list and all(type(p) is list and len(p) == 2 and all(type(x) is int and x >= 0
                                                                                      for x in p) for p in item)):
                raise SchemaError(f"state {what}.{name}: expected [[int, int], ...], got {item!r:.40}")
            items.append(tuple((p[0], p[1]) for p in item))
            continue
        expected = {"int": int, "str": str, "bytes": bytes}[field_type]
        if type(item) is not expected or (expected is int and item < 0):
            raise SchemaError(f"state {what}.{name}: expected a {field_type}, got {item!r:.40}")
        items.append(item)
    return cls(*items)


# --- ids -------------------------------------------------------------------------------------------------


def is_valid_id(value: str) -> bool:
    """True iff ``value`` is 1..64 utf-8 bytes of printable text (ids become state keys and CLI arguments)."""
    return 0 < len(value.encode()) <= MAX_ID_BYTES and value.isprintable() and value == value.strip()


def verify_id(name: str, value: str) -> None:
    """Raise ``TxFailure(invalid_id)`` unless ``value`` is a usable id."""
    if not is_valid_id(value):
        raise TxFailure(reasons.INVALID_ID, f"{name} {value[:80]!r} is not 1..{MAX_ID_BYTES} bytes of printable "
                                            "text without surrounding spaces")


# --- state -----------------------------------------------------------------------------------------------


def order_key(order_id: str) -> bytes:
    """State key of an order."""
    raw = order_id.encode()
    if not 0 < len(raw) <= MAX_ID_BYTES:
        raise SchemaError(f"order id of {len(raw)} bytes; expected 1..{MAX_ID_BYTES}")
    return PREFIX_ORDER + raw


def get_order(state: StateReader, order_id: str) -> Order | None:
    """Return the stored order, or None if there is none (or the id could never be one)."""
    if not is_valid_id(order_id):
        return None
    raw = state.get_state(order_key(order_id))
    return None if raw is None else compute_record(Order, raw, f"order {order_id!r}")


def set_order(state: Any, order_id: str, order: Order) -> None:
    """Store ``order`` (``state`` is an ``Overlay``)."""
    state.set_state(order_key(order_id), codec.encode(order.to_list()))


def verify_order(state: StateReader, order_id: str) -> Order:
    """Return the order; raise ``TxFailure(order_not_found)`` if there is none."""
    order = get_order(state, order_id)
    if order is None:
        raise TxFailure(reasons.ORDER_NOT_FOUND, f"order {order_id[:80]!r} does not exist")
    return order


def verify_order_customer(order_id: str, order: Order, account: bytes) -> None:
    """Raise ``TxFailure(not_order_customer)`` unless ``account`` is the order's customer (the message
    never names the owner: the sender reads it in tx status and may not read the order)."""
    if order.customer != account:
        raise TxFailure(reasons.NOT_ORDER_CUSTOMER, f"order {order_id!r} is not an order of "
                                                    f"{account.hex()[:16]}…")


# --- coupons ---------------------------------------------------------------------------------------------


def apply_coupon(ctx: TxContext, order_id: str, customer: bytes, value: int) -> list[Event]:
    """Record a coupon discount of ``value`` fiat minor units on an unpaid order of ``customer``; return events.

    Refusals: order_not_found, not_order_customer, already_paid, coupon_already_applied, invalid_amount.
    """
    # The order exists
    order = verify_order(ctx.state, order_id)
    # It belongs to the customer redeeming the coupon
    verify_order_customer(order_id, order, customer)
    # It is not paid yet: a discount after payment would change a settled amount
    if order.paid_at:
        raise TxFailure(reasons.ALREADY_PAID, f"order {order_id!r} was paid at {order.paid_at}; a coupon "
                                              "applies only to an unpaid order")
    # At most one coupon per order
    if order.coupon_applied:
        raise TxFailure(reasons.COUPON_ALREADY_APPLIED, f"order {order_id!r} already has a discount of "
                                                        f"{order.discount}; expected no coupon yet")
    # The discount is positive
    if value <= 0:
        raise TxFailure(reasons.INVALID_AMOUNT, f"coupon value is {value}; expected more than 0")

    discount = min(value, order.fiat_amount)  # a coupon worth more than the order only zeroes it
    set_order(ctx.state, order_id, replace(order, discount=discount, coupon_applied=1))
    return [CouponApplied(order_id, customer, discount)]
