"""Customers (KYC level and the commitment of their personal data), staff branches, lifetime earnings, tiers
and privileges.

The chain never holds personal data: a customer record is ``[kyc_level, commitment, registered_by, branch,
registered_at_ms, erased_at_ms]`` under ``b"c" + account``. Tiers need no transaction: ``get_tier`` derives
them from the earnings inside a rolling window (``tier_window_ms``; ``b"e" + account``, written by
``ledger.lots.credit`` and ``clawback`` through ``record_earning`` / ``record_clawback``) minus the debt, and
the policy thresholds: tiers go down as earnings age out, with refunds and with debt. Compensation is no
earning: it never raises a tier. A privilege is its expiry time under ``b"v" + account + code``; its effects
come from policy: VIP adds ``privilege_vip_earn_bonus_pct`` to the earn multiplier
(``get_tier_multiplier_pct``), priority shortens SLA targets (``ledger.sla``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import codec, reasons
from ledger.context import DEFAULT_POLICY, TxContext, get_policy_value, verify_rule
from ledger.errors import SchemaError
from ledger.state import (
    Overlay, PREFIX_BRANCH, PREFIX_CUSTOMER, PREFIX_DEBT, PREFIX_EARNED, PREFIX_PRIVILEGE, StateReader, account_record_key,
    get_policy_int, get_record, new_decode_memo, read_parsed, remember, set_record,
)

TIERS = ("base", "silver", "gold", "platinum")
PRIVILEGE_CODES: dict[str, int] = {"priority": 1, "vip": 2}  # part of the key layout: append only
KYC_LEVELS = (0, 1, 2)

_CUSTOMERS = new_decode_memo()
_BAD = object()  # a typed parser's answer for bytes of the wrong shape (the getter raises, naming the account)


@dataclass(frozen=True, slots=True)
class Customer:
    """A registered customer: KYC level and the commitment H(salt || personal data); no personal data."""

    account: bytes
    kyc_level: int
    commitment: bytes
    registered_by: bytes
    branch: str
    registered_at_ms: int
    erased_at_ms: int = 0  # 0 = the personal data behind the commitment has not been erased

    @property
    def erased(self) -> bool:
        return self.erased_at_ms != 0

    def to_list(self) -> list:
        return [self.kyc_level, self.commitment, self.registered_by, self.branch, self.registered_at_ms,
                self.erased_at_ms]



# --- customers, branches, tiers, privileges ------------------------------------------------------------------


def get_customer(state: StateReader, account: bytes) -> Customer | None:
    """Return the registered customer ``account`` (None if it is not one)."""
    value = read_parsed(state, account_record_key(PREFIX_CUSTOMER, account), _parse_customer)
    if value is None:
        return None
    if value is _BAD:
        raise SchemaError(f"state customer {account.hex()[:16]}…: expected [kyc, commitment, by, branch, at, erased]")
    return Customer(account, *value)  # type: ignore[misc]


def get_kyc_level(state: StateReader, account: bytes) -> int | None:
    """Return the customer's KYC level, or None if ``account`` is not a registered customer (no record built)."""
    value = read_parsed(state, account_record_key(PREFIX_CUSTOMER, account), _parse_customer)
    if value is None:
        return None
    if value is _BAD:
        get_customer(state, account)  # raises, naming the account
    return value[0]  # type: ignore[index]


def _parse_customer(raw: bytes) -> object:
    parsed = _CUSTOMERS.get(raw)
    if parsed is None:
        value = codec.decode(raw)
        if not (isinstance(value, list) and len(value) == 6 and type(value[0]) is int
                and isinstance(value[1], bytes) and isinstance(value[2], bytes) and isinstance(value[3], str)
                and type(value[4]) is int and type(value[5]) is int):
            parsed = _BAD
        else:
            parsed = tuple(value)
        remember(_CUSTOMERS, raw, parsed)
    return parsed


def set_customer(state: Overlay, customer: Customer) -> None:
    """Store the customer record."""
    set_record(state, account_record_key(PREFIX_CUSTOMER, customer.account), customer.to_list())


def verify_customer(ctx: TxContext, account: bytes) -> None:
    """Raise ``unknown_customer`` unless ``account`` is a registered customer."""
    verify_rule(get_customer(ctx.state, account) is not None, reasons.UNKNOWN_CUSTOMER,
                f"account {account.hex()[:16]}… is not a registered customer")


def get_branch_of(state: StateReader, account: bytes) -> str:
    """Return the branch a staff/admin account belongs to ("" if none was recorded)."""
    value = get_record(state, account_record_key(PREFIX_BRANCH, account))
    if value is not None and not isinstance(value, str):
        raise SchemaError(f"state branch of {account.hex()[:16]}…: expected a str")
    return value or ""


def set_branch_of(state: Overlay, account: bytes, branch: str) -> None:
    """Record the branch of a staff/admin account ("" forgets it)."""
    set_record(state, account_record_key(PREFIX_BRANCH, account), branch or None)


# --- earnings over a rolling window, tiers ------------------------------------------------------------------
#
# ``b"e" + account`` -> ``[lifetime, bucket_ms, [[bucket, amount], ...]]``: the net lifetime earnings (earnings
# minus clawbacks) and the earnings of the tier window in ``TIER_BUCKETS`` time buckets of ``bucket_ms`` =
# ``tier_window_ms // TIER_BUCKETS`` (bucket = block time // bucket_ms, oldest first). A bucket counts while
# fewer than ``TIER_BUCKETS`` buckets separate it from the current one: an earning counts for at least 11/12 of
# the window and never longer than it. Older buckets are dropped at the next write; a policy change of the
# window re-buckets the record on read (a bucket keeps its start time). Clawbacks take from the newest buckets.

TIER_BUCKETS = 12


@dataclass(frozen=True, slots=True)
class Earnings:
    """An account's net lifetime earnings and its earnings per time bucket of the tier window."""

    lifetime: int
    bucket_ms: int
    buckets: tuple[tuple[int, int], ...]  # (bucket index, amount), oldest first


def _get_earnings(state: StateReader, account: bytes) -> Earnings:
    value = get_record(state, account_record_key(PREFIX_EARNED, account))
    if value is None:
        return Earnings(0, 0, ())
    if not (isinstance(value, list) and len(value) == 3 and type(value[0]) is int and value[0] >= 0
            and type(value[1]) is int and value[1] > 0 and isinstance(value[2], list)
            and all(isinstance(b, list) and len(b) == 2 and all(type(x) is int and x >= 0 for x in b)
                    for b in value[2])):
        raise SchemaError(f"state earnings of {account.hex()[:16]}…: expected [lifetime, bucket_ms, "
                          "[[bucket, amount], ...]]")
    return Earnings(value[0], value[1], tuple((b[0], b[1]) for b in value[2]))


def _bucket_ms(state: StateReader) -> int:
    return max(1, _policy(state, "tier_window_ms") // TIER_BUCKETS)


def _window_buckets(earnings: Earnings, bucket_ms: int, now_ms: int) -> list[tuple[int, int]]:
    """The earnings' buckets re-indexed to ``bucket_ms`` (merged, oldest first), those inside the window only."""
    merged: dict[int, int] = {}
    for index, amount in earnings.buckets:
        if amount:
            start = index * earnings.bucket_ms // bucket_ms
            merged[start] = merged.get(start, 0) + amount
    current = now_ms // bucket_ms
    return [(i, a) for i, a in sorted(merged.items()) if current - i < TIER_BUCKETS]


def _set_earnings(state: Overlay, account: bytes, lifetime: int, bucket_ms: int,
                  buckets: list[tuple[int, int]]) -> None:
    set_record(state, account_record_key(PREFIX_EARNED, account),
               [lifetime, bucket_ms, [[i, a] for i, a in buckets if a]])


def record_earning(state: Overlay, account: bytes, amount: int, now_ms: int) -> None:
    """Add ``amount`` earned at block time ``now_ms`` to the account's lifetime and tier-window earnings."""
    if amount <= 0:
        return
    earnings, bucket_ms = _get_earnings(state, account), _bucket_ms(state)
    buckets = dict(_window_buckets(earnings, bucket_ms, now_ms))
    buckets[now_ms // bucket_ms] = buckets.get(now_ms // bucket_ms, 0) + amount
    _set_earnings(state, account, earnings.lifetime + amount, bucket_ms, sorted(buckets.items()))


def record_clawback(state: Overlay, account: bytes, amount: int, now_ms: int) -> None:
    """Take ``amount`` back from the account's earnings: lifetime, and the newest buckets of the window first.

    Called by ``ledger.lots.clawback`` for the coins it takes. Whatever repays a debt (``b"j"``) must call it
    for the amount repaid as well: the tier subtracts the debt, so a repayment that did not lower the
    earnings would raise the tier.
    """
    if amount <= 0:
        return
    earnings, bucket_ms = _get_earnings(state, account), _bucket_ms(state)
    buckets, left = _window_buckets(earnings, bucket_ms, now_ms), amount
    for n in range(len(buckets) - 1, -1, -1):
        index, have = buckets[n]
        take = min(have, left)
        buckets[n], left = (index, have - take), left - take
    if earnings.lifetime or buckets:
        _set_earnings(state, account, max(0, earnings.lifetime - amount), bucket_ms, buckets)


def get_earned(state: StateReader, account: bytes) -> int:
    """Return the account's net lifetime earnings (earn and reward credits, minus clawbacks)."""
    return _get_earnings(state, account).lifetime


def get_window_earned(state: StateReader, account: bytes, now_ms: int) -> int:
    """Return the account's earnings inside the tier window at ``now_ms`` (net of clawbacks)."""
    return sum(a for _, a in _window_buckets(_get_earnings(state, account), _bucket_ms(state), now_ms))


def get_debt(state: StateReader, account: bytes) -> int:
    """Return the account's debt (coins it owes after a refund took back earnings it had spent; 0 if none)."""
    value = get_record(state, account_record_key(PREFIX_DEBT, account))
    if value is not None and not (type(value) is int and value >= 0):
        raise SchemaError(f"state debt of {account.hex()[:16]}…: expected a non-negative int")
    return value or 0


def get_tier_score(state: StateReader, account: bytes, now_ms: int) -> int:
    """What the tier is decided on: earnings inside the window minus the debt (clawbacks are already out)."""
    return get_window_earned(state, account, now_ms) - get_debt(state, account)


def _policy(state: StateReader, name: str) -> int:
    default = DEFAULT_POLICY[name]
    if type(default) is not int:
        raise TypeError(f"policy {name} default is not an int")
    return get_policy_int(state, name, default)


def get_tier(state: StateReader, account: bytes, now_ms: int) -> str:
    """Return the account's tier at ``now_ms`` from its tier score and the policy thresholds: base..platinum.

    Tiers go down: as buckets leave the window, with clawbacks (refunds) and with debt.
    """
    score = get_tier_score(state, account, now_ms)
    for tier in reversed(TIERS[1:]):
        if score >= _policy(state, f"tier_{tier}_threshold"):
            return tier
    return "base"


def get_tier_multiplier_pct(ctx: TxContext, account: bytes) -> int:
    """Return the earn multiplier (percent) of the account at the block time: its tier's multiplier plus the
    VIP earn bonus (``privilege_vip_earn_bonus_pct``) while it holds the VIP privilege."""
    pct = get_policy_value(ctx, f"tier_{get_tier(ctx.state, account, ctx.timestamp_ms)}_multiplier_pct")
    if has_privilege(ctx.state, account, "vip", ctx.timestamp_ms):
        pct += get_policy_value(ctx, "privilege_vip_earn_bonus_pct")
    return pct


def privilege_key(account: bytes, privilege: str) -> bytes:
    """State key of the expiry of ``account``'s ``privilege``."""
    code = PRIVILEGE_CODES.get(privilege)
    if code is None:
        raise SchemaError(f"unknown privilege {privilege!r}; expected one of {', '.join(PRIVILEGE_CODES)}")
    return account_record_key(PREFIX_PRIVILEGE, account) + bytes([code])


def get_privilege_expiry(state: StateReader, account: bytes, privilege: str) -> int:
    """Return when the account's ``privilege`` expires (0 if never bought)."""
    value = get_record(state, privilege_key(account, privilege))
    if value is not None and not (type(value) is int and value >= 0):
        raise SchemaError(f"state privilege {privilege} of {account.hex()[:16]}…: expected an int")
    return value or 0


def has_privilege(state: StateReader, account: bytes, privilege: str, now_ms: int) -> bool:
    """True iff the account holds ``privilege`` ("priority" | "vip") at ``now_ms``."""
    return get_privilege_expiry(state, account, privilege) > now_ms


