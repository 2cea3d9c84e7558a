"""Limits on what an account may send and receive: compliance freezes, daily outflow by KYC level, the second
factor on the day's cumulative outflow, and compensation per customer per period.

**Freezes.** ``verify_not_frozen`` refuses a frozen account: senders are checked by every outflow kind, and
``ledger.lots.credit`` / ``process_move`` check the receiving account, so a frozen account neither sends nor
receives (nor is refunded) until compliance unfreezes it.

**Daily outflow.** ``verify_outflow`` is the one check of every outflow (transfer, coins paying an order,
buying a privilege, redeeming): it adds the amount to the account's outflow of the UTC day of the block time
(``b"d" + account``) and refuses ``daily_limit_exceeded`` past the limit of the account's KYC level. An
account that is neither a registered customer nor a role holder has the lowest level's limit
(``daily_outflow_kyc0``): an unregistered account cannot move more than a KYC-0 customer. Role holders (staff,
issuers, ...) have no KYC limit, as before; their outflow is still counted for the second factor.

**Second factor.** Once the day's cumulative outflow would cross ``second_factor_threshold`` (six transfers
of 9,999 cross 10,000 at the second), the tx must be co-signed by the account's second key
(``b"x" + account``, ``verify_second_factor``); an account with no second key cannot go past the threshold.
Large refunds use ``verify_second_factor`` directly.

**Compensation per customer.** ``b"C" + customer`` -> ``[period_index, amount]`` (period = block time //
``compensation_period_ms``): ``add_compensation`` refuses past ``compensation_cap_per_customer`` in a period.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import codec, reasons
from ledger.context import DAY_MS, TxContext, get_policy_value, verify_rule
from ledger.customers import KYC_LEVELS, get_kyc_level
from ledger.errors import SchemaError
from ledger.genesis import ROLES
from ledger.state import (
    Overlay, PREFIX_COMPENSATION, PREFIX_FREEZE, PREFIX_OUTFLOW, PREFIX_ROLE, PREFIX_SECOND_KEY, ROLE_CODES,
    StateReader, UINT_MAX,
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
    # Hot (several times per transfer) and nearly always absent: one read, no record built, when there is none
    if type(account) is bytes and len(account) == 32 and ctx.state.get_state(PREFIX_FREEZE + account) is None:
        return
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


def get_limit_level(state: StateReader, account: bytes) -> int | None:
    """The KYC level whose daily limit applies to ``account``: a customer's own level, 0 for an account that is
    neither a customer nor a role holder, None (no KYC limit) for a role holder that is no customer."""
    level = get_kyc_level(state, account)  # checks the account id (32 bytes)
    if level is not None:
        return level
    # Hot on every transfer: the role keys (``role_key``) of every role, their prefixes built once
    get = state.get_state
    for prefix in _ROLE_PREFIXES:
        if get(prefix + account) is not None:
            return None
    return 0


_ROLE_PREFIXES = tuple(PREFIX_ROLE + bytes([ROLE_CODES[role]]) for role in ROLES)


def verify_outflow(ctx: TxContext, account: bytes, amount: int) -> None:
    """Record ``amount`` against the account's outflow of the UTC day; raise if a limit refuses it.

    ``daily_limit_exceeded`` past the daily limit of the account's KYC level (``get_limit_level``);
    ``second_factor_required`` when the day's outflow crosses ``second_factor_threshold`` and the account's
    second key did not co-sign.
    """
    used = get_outflow(ctx.state, account, ctx.timestamp_ms)
    total = used + amount
    level = get_limit_level(ctx.state, account)
    if level is not None:
        limit = get_policy_value(ctx, _OUTFLOW_POLICY.get(level) or f"daily_outflow_kyc{level}")
        # The account's outflow on one UTC day stays within the limit of its KYC level
        verify_rule(total <= limit, reasons.DAILY_LIMIT_EXCEEDED,
                    lambda: f"already {used} out today + {amount} = {total}; the KYC {level} daily limit is {limit}")
    threshold = get_policy_value(ctx, "second_factor_threshold")
    if total > threshold:
        # Past the threshold, the day's outflow needs the second key: splitting does not avoid it
        verify_second_factor(ctx, account, f"an outflow of {amount} after {used} today ({total}, above {threshold})")
    key, value = account_record_key(PREFIX_OUTFLOW, account), (ctx.timestamp_ms // DAY_MS, total)
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
                + (f"key {second.hex()[:16]}…" if second else
                   "a second key, and none is registered (set-second-factor registers one)")
                + f"; signed by {len(ctx.signers)} key(s)")




# --- compensation per customer per period ----------------------------------------------------------------------


def get_compensated(state: StateReader, customer: bytes, now_ms: int, period_ms: int) -> int:
    """Return the compensation paid to ``customer`` in the period of ``now_ms`` (periods of ``period_ms``)."""
    value = get_record(state, account_record_key(PREFIX_COMPENSATION, customer))
    if value is None:
        return 0
    if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int and v >= 0 for v in value)):
        raise SchemaError(f"state compensation of {customer.hex()[:16]}…: expected [period_index, amount]")
    return value[1] if value[0] == now_ms // max(1, period_ms) else 0


def add_compensation(ctx: TxContext, customer: bytes, amount: int) -> None:
    """Add ``amount`` to the customer's compensation of this period; raise ``customer_compensation_cap_exceeded``
    past ``compensation_cap_per_customer`` (whatever the tickets: three tickets cannot pay three caps)."""
    period_ms = max(1, get_policy_value(ctx, "compensation_period_ms"))
    paid, cap = get_compensated(ctx.state, customer, ctx.timestamp_ms, period_ms), get_policy_value(
        ctx, "compensation_cap_per_customer")
    # The customer's compensation in this period stays within the cap
    verify_rule(paid + amount <= cap, reasons.CUSTOMER_COMPENSATION_CAP_EXCEEDED,
                lambda: f"customer {customer.hex()[:16]}… has {paid} compensated this period; {amount} more would "
                f"make {paid + amount}, the cap per customer is {cap} per {period_ms} ms")
    set_record(ctx.state, account_record_key(PREFIX_COMPENSATION, customer),
               [ctx.timestamp_ms // period_ms, paid + amount])
