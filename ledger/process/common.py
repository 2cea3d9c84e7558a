"""Helpers shared by every ``process_*`` step: the execution context, payload shape checks, roles, balances.

A step is a list of checks, each one comment plus one call that raises ``TxFailure(reason)``, followed by
the writes. Steps never catch ``TxFailure``: the executor rolls the transaction's writes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import reasons
from ledger.reasons import Reason, TxFailure, invalid_tx
from ledger.state import Account, Overlay, get_account, get_policy_int, has_role, set_account
from ledger.types import AccountId, Hash32, Height, TimestampMs

# Policy parameters with their code defaults; a genesis file (and later, governance) may override them.
DEFAULT_POLICY: dict[str, int | str] = {
    "mint_cap": 10**15,  # total supply ceiling, smallest units
}

MAX_MEMO_CHARS = 140


@dataclass(frozen=True, slots=True)
class TxContext:
    """What a step may see: the state overlay, who sent and signed the tx, and the block it is in."""

    state: Overlay
    sender: AccountId
    signers: tuple[AccountId, ...]
    tx_hash: Hash32
    height: Height
    timestamp_ms: TimestampMs


# --- payload shape (admission: a bad shape raises InvalidTransaction, never a failed result) --------------


def expect_payload(kind: str, payload: Any, fields: str, count: int) -> tuple:
    """Return ``payload`` as a tuple if it has exactly ``count`` fields, else raise ``bad_payload``."""
    if not isinstance(payload, (list, tuple)) or len(payload) != count:
        seen = len(payload) if isinstance(payload, (list, tuple)) else type(payload).__name__
        raise invalid_tx(reasons.BAD_PAYLOAD, f"{kind} payload has {seen} fields; expected {count}: {fields}")
    return tuple(payload)


def expect_account(kind: str, name: str, value: Any) -> bytes:
    """Return ``value`` if it is a 32-byte account id, else raise ``bad_payload``."""
    if not isinstance(value, bytes) or len(value) != 32:
        seen = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise invalid_tx(reasons.BAD_PAYLOAD, f"{kind}.{name} is {seen}; expected a 32-byte account id")
    return value


def expect_int(kind: str, name: str, value: Any) -> int:
    """Return ``value`` if it is an int (sign is a rule, checked by the step), else raise ``bad_payload``."""
    if type(value) is not int:
        raise invalid_tx(reasons.BAD_PAYLOAD, f"{kind}.{name} is {type(value).__name__}; expected an int")
    return value


def expect_str(kind: str, name: str, value: Any) -> str:
    """Return ``value`` if it is a str (length is a rule, checked by the step), else raise ``bad_payload``."""
    if not isinstance(value, str):
        raise invalid_tx(reasons.BAD_PAYLOAD, f"{kind}.{name} is {type(value).__name__}; expected a str")
    return value


# --- rule checks (a broken rule raises TxFailure: committed with a failed status) --------------------------


def verify_rule(ok: bool, reason: Reason, detail: str) -> None:
    """Raise ``TxFailure(reason, detail)`` unless ``ok``; ``detail`` names what was seen and expected."""
    if not ok:
        raise TxFailure(reason, detail)


def verify_role(ctx: TxContext, role: str) -> None:
    """Raise ``unauthorized`` unless the sender holds ``role``."""
    verify_rule(has_role(ctx.state, role, ctx.sender), reasons.UNAUTHORIZED,
                f"sender {ctx.sender.hex()[:16]}… does not hold the {role!r} role")


def verify_positive_amount(amount: int) -> None:
    """Raise ``invalid_amount`` unless ``amount`` > 0."""
    verify_rule(amount > 0, reasons.INVALID_AMOUNT, f"amount is {amount}; expected more than 0")


def get_policy_value(ctx: TxContext, name: str) -> int:
    """Return the integer policy parameter ``name`` in force (chain value, else the code default)."""
    default = DEFAULT_POLICY[name]
    if type(default) is not int:
        raise TypeError(f"policy {name} default is not an int")
    return get_policy_int(ctx.state, name, default)


# --- writes ----------------------------------------------------------------------------------------------


def process_credit(state: Overlay, account: bytes, amount: int) -> None:
    """Add ``amount`` to the account's balance."""
    acct = get_account(state, account)
    set_account(state, account, Account(acct.balance + amount, acct.nonce))


def process_debit(state: Overlay, account: bytes, amount: int) -> None:
    """Take ``amount`` from the account's balance (the caller has checked it is sufficient)."""
    acct = get_account(state, account)
    if acct.balance < amount:  # a step forgot its check: a bug, not a user error
        raise RuntimeError(f"debit of {amount} from a balance of {acct.balance}")
    set_account(state, account, Account(acct.balance - amount, acct.nonce))


def process_nonce(state: Overlay, account: bytes) -> int:
    """Advance the account's nonce by one and return the new nonce."""
    acct = get_account(state, account)
    set_account(state, account, Account(acct.balance, acct.nonce + 1))
    return acct.nonce + 1
