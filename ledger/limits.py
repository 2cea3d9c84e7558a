"""Limits on what an account may send: compliance freezes, daily outflow by KYC level, the second factor.

**Limits.** ``verify_outflow`` caps what a registered customer sends or redeems per UTC day (of the block
time) by KYC level; staff and other non-customer accounts are exempt. ``verify_not_frozen`` refuses a frozen
sender. Callers run these checks: ``spend`` itself only checks the balance.
A second-factor key (``b"x" + account``) must co-sign large transfers and refunds (``verify_second_factor``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import codec, reasons
from ledger.context import DAY_MS, TxContext, get_policy_value, verify_rule
from ledger.customers import KYC_LEVELS, get_kyc_level
from ledger.errors import SchemaError
from ledger.state import (
    Overlay, PREFIX_FREEZE, PREFIX_OUTFLOW, PREFIX_SECOND_KEY, StateReader, UINT_MAX,
    account_record_key, encode_checked, get_record, new_decode_memo, read_parsed, remember, set_record,
)

_OUTFLOWS = new_decode_memo()
_BAD = object()  # a typed parser's answer for bytes of the wrong shape (the getter raises, naming the account)


@dataclass(frozen=True, slots=True)
class Freeze:
    """Why and by whom an account was frozen."""

    reason_code: str
    frozen_by: bytes
    height: int


# --- freezes, outflow, second factor -------------------------------------------------------------------------


def get_freeze(state: StateReader, account: bytes) -> Freeze | None:
    """Return the account's freeze, or None when it is not frozen."""
    value = get_record(state, account_record_key(PREFIX_FREEZE, account))
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)
            and isinstance(value[1], bytes) and type(value[2]) is int):
        raise SchemaError(f"state freeze of {account.hex()[:16]}…: expected [reason_code, by, height]")
    return Freeze(value[0], value[1], value[2])


def set_freeze(state: Overlay, account: bytes, freeze: Freeze | None) -> None:
    """Freeze the account (or lift its freeze with None)."""
    value = None if freeze is None else [freeze.reason_code, freeze.frozen_by, freeze.height]
    set_record(state, account_record_key(PREFIX_FREEZE, account), value)


def verify_not_frozen(ctx: TxContext, account: bytes) -> None:
    """Raise ``account_frozen`` if compliance froze ``account``."""
    freeze = get_freeze(ctx.state, account)
    verify_rule(freeze is None, reasons.ACCOUNT_FROZEN,
                lambda: f"account {account.hex()[:16]}… is frozen ({freeze.reason_code if freeze else ''}); "
                "expected an active account")


def get_outflow(state: StateReader, account: bytes, now_ms: int) -> int:
    """Return what the account has sent or redeemed so far on the UTC day of ``now_ms``."""
    value = read_parsed(state, account_record_key(PREFIX_OUTFLOW, account), _parse_outflow)
    if value is None:
        return 0
    if value is _BAD:
        raise SchemaError(f"state outflow of {account.hex()[:16]}…: expected [utc_day, amount]")
    return value[1] if value[0] == now_ms // DAY_MS else 0  # type: ignore[index]


def _parse_outflow(raw: bytes) -> object:
    parsed = _OUTFLOWS.get(raw)
    if parsed is None:
        value = codec.decode(raw)
        if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int and v >= 0 for v in value)):
            parsed = _BAD
        else:
            parsed = (value[0], value[1])
        remember(_OUTFLOWS, raw, parsed)
    return parsed




def _encode_outflow(value: tuple[int, int]) -> bytes:
    raw = encode_checked(value)
    remember(_OUTFLOWS, raw, value)
    return raw


def verify_outflow(ctx: TxContext, account: bytes, amount: int) -> None:
    """Record ``amount`` against the customer's daily limit (by KYC level); raise ``daily_limit_exceeded``.

    Accounts that are not registered customers (staff, issuers) are exempt and nothing is recorded.
    """
    kyc_level = get_kyc_level(ctx.state, account)
    if kyc_level is None:
        return
    used, limit = get_outflow(ctx.state, account, ctx.timestamp_ms), get_policy_value(
        ctx, _OUTFLOW_POLICY.get(kyc_level) or f"daily_outflow_kyc{kyc_level}")
    # A customer's outflow on one UTC day stays within the limit of their KYC level
    verify_rule(used + amount <= limit, reasons.DAILY_LIMIT_EXCEEDED,
                lambda: f"already {used} out today + {amount} = {used + amount}; the KYC {kyc_level} "
                f"daily limit is {limit}")
    key, value = account_record_key(PREFIX_OUTFLOW, account), (ctx.timestamp_ms // DAY_MS, used + amount)
    if type(ctx.state) is Overlay and 0 <= value[0] <= UINT_MAX and 0 <= value[1] <= UINT_MAX:
        ctx.state.set_parsed(key, value, _parse_outflow, _encode_outflow)
    else:
        set_record(ctx.state, key, list(value))


_OUTFLOW_POLICY = {level: f"daily_outflow_kyc{level}" for level in KYC_LEVELS}


def get_second_key(state: StateReader, account: bytes) -> bytes | None:
    """Return the account's registered second-factor key, or None."""
    value = get_record(state, account_record_key(PREFIX_SECOND_KEY, account))
    if value is not None and not (isinstance(value, bytes) and len(value) == 32):
        raise SchemaError(f"state second key of {account.hex()[:16]}…: expected 32 bytes")
    return value


def verify_second_factor(ctx: TxContext, account: bytes, what: str) -> None:
    """Raise ``second_factor_required`` unless the account's second key co-signed this tx."""
    second = get_second_key(ctx.state, account)
    # The account's registered second key signed too (signatures were verified at admission)
    verify_rule(second is not None and second in ctx.signers[1:], reasons.SECOND_FACTOR_REQUIRED,
                f"{what} needs a second signature by "
                + (f"key {second.hex()[:16]}…" if second else "a second key, and none is registered")
                + f"; signed by {len(ctx.signers)} key(s)")


