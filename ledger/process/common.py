"""Helpers shared by every ``process_*`` step: the execution context, rule checks, roles, balances.

A step is a list of checks, each one comment plus one call that raises ``TxFailure(reason)``, followed by
the writes. Steps never catch ``TxFailure``: the executor rolls the transaction's writes back.
"""

from __future__ import annotations

from ledger import reasons
# The context, policy defaults and rule check live in ledger.context (no import cycle with ledger.lots);
# steps keep importing them from here.
from ledger.context import DAY_MS, DEFAULT_POLICY, TxContext, get_policy_value, verify_rule  # noqa: F401
from ledger.process.payload import KindSpec, declare_kind  # noqa: F401
from ledger.state import Overlay, get_balance_nonce, has_role, set_balance_nonce

MAX_MEMO_CHARS = 140
MAX_NAME_CHARS = 64  # branch names, reason codes, campaign names


# --- rule checks (a broken rule raises TxFailure: committed with a failed status) --------------------------


def verify_name(what: str, value: str) -> None:
    """Raise ``invalid_name`` unless ``value`` is 1..``MAX_NAME_CHARS`` printable characters."""
    verify_rule(0 < len(value) <= MAX_NAME_CHARS and value.isprintable(), reasons.INVALID_NAME,
                f"{what} {value[:80]!r} has {len(value)} characters; expected 1..{MAX_NAME_CHARS} printable ones")


def verify_any_role(ctx: TxContext, *roles: str) -> None:
    """Raise ``unauthorized`` unless the sender holds at least one of ``roles``."""
    verify_rule(any(has_role(ctx.state, role, ctx.sender) for role in roles), reasons.UNAUTHORIZED,
                f"sender {ctx.sender.hex()[:16]}… holds none of the roles {', '.join(roles)}")


def verify_role(ctx: TxContext, role: str) -> None:
    """Raise ``unauthorized`` unless the sender holds ``role``."""
    verify_rule(has_role(ctx.state, role, ctx.sender), reasons.UNAUTHORIZED,
                f"sender {ctx.sender.hex()[:16]}… does not hold the {role!r} role")


def verify_positive_amount(amount: int) -> None:
    """Raise ``invalid_amount`` unless ``amount`` > 0."""
    verify_rule(amount > 0, reasons.INVALID_AMOUNT, lambda: f"amount is {amount}; expected more than 0")


# --- writes ----------------------------------------------------------------------------------------------


def process_credit(state: Overlay, account: bytes, amount: int) -> None:
    """Add ``amount`` to the account's balance counter only; kinds use ``ledger.lots.credit`` (lots, supply)."""
    balance, nonce = get_balance_nonce(state, account)
    set_balance_nonce(state, account, balance + amount, nonce)


def process_debit(state: Overlay, account: bytes, amount: int) -> None:
    """Take ``amount`` from the balance counter only (checked by the caller); kinds use ``ledger.lots.spend``."""
    balance, nonce = get_balance_nonce(state, account)
    if balance < amount:  # a step forgot its check: a bug, not a user error
        raise RuntimeError(f"debit of {amount} from a balance of {balance}")
    set_balance_nonce(state, account, balance - amount, nonce)


def process_nonce(state: Overlay, account: bytes) -> int:
    """Advance the account's nonce by one and return the new nonce."""
    balance, nonce = get_balance_nonce(state, account)
    set_balance_nonce(state, account, balance, nonce + 1)
    return nonce + 1
