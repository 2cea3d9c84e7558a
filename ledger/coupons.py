"""Coupon records in state (read and written by ``ledger.process.coupons`` and by ``ledger.campaigns``).

A coupon belongs to a campaign decided by governance: a discount of ``value`` minor units of ``currency``,
redeemable until ``expires_at_ms`` (dead at exactly that block time, like a coin lot), by ONE customer
(``customer``) or by anyone (``customer`` = 32 zero bytes) up to ``total`` times in all, and once per
customer. A coupon creates no coins: its value is fiat, off the coin supply.

Keys: ``b"k\\x00" + coupon_id`` -> P([campaign, value, currency, expires_at_ms, customer, total, redeemed,
issuer, branch, issued_at_ms]) (``issuer`` = 32 zero bytes for a coupon a campaign's effect issued);
``b"k\\x01" + customer(32) + coupon_id`` -> P(times redeemed: 1).

Ids holding ``#`` are the campaigns' own (``<campaign>#<n>``): ``issue-coupon`` refuses them, so a coupon an
effect issues can never collide with one an issuer chose.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import SchemaError
from ledger.state import PREFIX_COUPON, StateReader, get_record, set_record

COUPON_RECORD = b"\x00"
COUPON_USE = b"\x01"
MAX_COUPON_ID_BYTES = 64
ANYONE = b"\x00" * 32  # the ``customer`` of a coupon anyone may redeem
CAMPAIGN_ISSUER = b"\x00" * 32  # the ``issuer`` of a coupon a campaign's effect issued
_TYPES = (str, int, str, int, bytes, int, int, bytes, str, int)


@dataclass(frozen=True, slots=True)
class Coupon:
    """An issued coupon and how many times it has been redeemed."""

    campaign: str
    value: int
    currency: str
    expires_at_ms: int
    customer: bytes  # ANYONE, or the one customer who may redeem it
    total: int
    redeemed: int
    issuer: bytes
    branch: str
    issued_at_ms: int

    def to_list(self) -> list:
        return [self.campaign, self.value, self.currency, self.expires_at_ms, self.customer, self.total,
                self.redeemed, self.issuer, self.branch, self.issued_at_ms]


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
    if not (isinstance(value, list) and len(value) == len(_TYPES)
            and all(type(v) is t for v, t in zip(value, _TYPES))):
        raise SchemaError(f"state coupon {coupon_id!r}: expected {len(_TYPES)} typed fields")
    return Coupon(*value)


def set_coupon(state, coupon_id: str, coupon: Coupon) -> None:
    """Store ``coupon`` (``state`` is an ``Overlay``)."""
    set_record(state, coupon_key(coupon_id), coupon.to_list())


def get_coupon_uses(state: StateReader, customer: bytes, coupon_id: str) -> int:
    """Return how many times ``customer`` has redeemed ``coupon_id``."""
    value = get_record(state, coupon_use_key(customer, coupon_id))
    if value is not None and not (type(value) is int and value > 0):
        raise SchemaError(f"state coupon use of {coupon_id!r}: expected a positive int")
    return value or 0
