"""Helpers shared by every ``process_*`` step: the execution context, payload shape checks, roles, balances.

A step is a list of checks, each one comment plus one call that raises ``TxFailure(reason)``, followed by
the writes. Steps never catch ``TxFailure``: the executor rolls the transaction's writes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ledger import reasons
# The context, policy defaults and rule check live in ledger.context (no import cycle with ledger.coin);
# steps keep importing them from here.
from ledger.context import DAY_MS, DEFAULT_POLICY, TxContext, get_policy_value, verify_rule  # noqa: F401
from ledger.events import Event
from ledger.reasons import invalid_tx
from ledger.state import Overlay, get_balance_nonce, has_role, set_balance_nonce

MAX_MEMO_CHARS = 140
MAX_NAME_CHARS = 64  # branch names, reason codes, campaign names


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One transaction kind: its name, its payload shape check and its state-transition step."""

    name: str
    compute_payload: Callable[[Any], Any]  # shape check: payload -> typed tx, raises InvalidTransaction
    step: Callable[["TxContext", Any], list[Event]]  # rules and writes: raises TxFailure

    def process(self, ctx: TxContext, tx: Any) -> list[list]:
        """Run the step; return its events as the committed arrays (``Event.to_wire``)."""
        return [event.to_wire() for event in self.step(ctx, tx)]


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


def expect_bytes32(kind: str, name: str, value: Any) -> bytes:
    """Return ``value`` if it is 32 bytes (a key, hash or commitment), else raise ``bad_payload``."""
    if not isinstance(value, bytes) or len(value) != 32:
        seen = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise invalid_tx(reasons.BAD_PAYLOAD, f"{kind}.{name} is {seen}; expected 32 bytes")
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
    """Add ``amount`` to the account's balance counter only; kinds use ``ledger.coin.credit`` (lots, supply)."""
    balance, nonce = get_balance_nonce(state, account)
    set_balance_nonce(state, account, balance + amount, nonce)


def process_debit(state: Overlay, account: bytes, amount: int) -> None:
    """Take ``amount`` from the balance counter only (checked by the caller); kinds use ``ledger.coin.spend``."""
    balance, nonce = get_balance_nonce(state, account)
    if balance < amount:  # a step forgot its check: a bug, not a user error
        raise RuntimeError(f"debit of {amount} from a balance of {balance}")
    set_balance_nonce(state, account, balance - amount, nonce)


def process_nonce(state: Overlay, account: bytes) -> int:
    """Advance the account's nonce by one and return the new nonce."""
    balance, nonce = get_balance_nonce(state, account)
    set_balance_nonce(state, account, balance, nonce + 1)
    return nonce + 1
