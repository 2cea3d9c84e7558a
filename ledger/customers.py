"""Customers (KYC level and the commitment of their personal data), staff branches, lifetime earnings, tiers
and privileges.

The chain never holds personal data: a customer record is ``[kyc_level, commitment, registered_by, branch,
registered_at_ms, erased_at_ms]`` under ``b"c" + account``. Tiers need no transaction: ``get_tier`` derives
them from lifetime earnings (``b"e" + account``, written by ``ledger.lots.credit``) and the policy thresholds.
A privilege is its expiry time under ``b"v" + account + code``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import codec, reasons
from ledger.context import DEFAULT_POLICY, TxContext, get_policy_value, verify_rule
from ledger.errors import SchemaError
from ledger.state import (
    Overlay, PREFIX_BRANCH, PREFIX_CUSTOMER, PREFIX_EARNED, PREFIX_PRIVILEGE, StateReader, account_record_key,
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


def get_earned(state: StateReader, account: bytes) -> int:
    """Return the account's lifetime earnings (earn, reward and compensation credits)."""
    value = get_record(state, account_record_key(PREFIX_EARNED, account))
    if value is not None and not (type(value) is int and value >= 0):
        raise SchemaError(f"state earnings of {account.hex()[:16]}…: expected a non-negative int")
    return value or 0


def _policy(state: StateReader, name: str) -> int:
    default = DEFAULT_POLICY[name]
    if type(default) is not int:
        raise TypeError(f"policy {name} default is not an int")
    return get_policy_int(state, name, default)


def get_tier(state: StateReader, account: bytes) -> str:
    """Return the account's tier from lifetime earnings and the policy thresholds: base..platinum."""
    earned = get_earned(state, account)
    for tier in reversed(TIERS[1:]):
        if earned >= _policy(state, f"tier_{tier}_threshold"):
            return tier
    return "base"


def get_tier_multiplier_pct(ctx: TxContext, account: bytes) -> int:
    """Return the earn multiplier (percent) of the account's tier."""
    return get_policy_value(ctx, f"tier_{get_tier(ctx.state, account)}_multiplier_pct")


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


