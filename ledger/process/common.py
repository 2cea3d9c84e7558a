"""Helpers shared by every ``process_*`` step: the execution context, payload shape checks, roles, balances.

A step is a list of checks, each one comment plus one call that raises ``TxFailure(reason)``, followed by
the writes. Steps never catch ``TxFailure``: the executor rolls the transaction's writes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ledger import reasons
from ledger.reasons import Reason, TxFailure, invalid_tx
from ledger.state import Account, Overlay, get_account, get_policy_int, has_role, set_account
from ledger.types import AccountId, Hash32, Height, TimestampMs

# Policy parameters with their code defaults; a genesis file (and later, governance) may override them.
# Every parameter of issue 6 is declared here once (names are on-chain: never rename, only add).
DAY_MS = 86_400_000
DEFAULT_POLICY: dict[str, int | str] = {
    "mint_cap": 10**15,                      # total supply ceiling, smallest units
    # coin lots
    "coin_lifetime_ms": 365 * DAY_MS,        # a credited lot expires this long after its block time
    # earning on confirmed orders: floor(fiat_minor * earn_rate_bp / 10_000 * tier_multiplier_pct / 100)
    "earn_rate_bp": 100,                     # 1 coin per 100 fiat minor units at the base tier
    "tier_silver_threshold": 10_000,         # lifetime earned coins to reach each tier
    "tier_gold_threshold": 50_000,
    "tier_platinum_threshold": 200_000,
    "tier_base_multiplier_pct": 100,
    "tier_silver_multiplier_pct": 125,
    "tier_gold_multiplier_pct": 150,
    "tier_platinum_multiplier_pct": 200,
    # rewards
    "feedback_reward": 50,                   # coins for feedback on a resolved ticket or confirmed order (once)
    "training_reward": 500,                  # coins for a completed training course (once per course)
    "compensation_cap_per_ticket": 2_000,    # total coins compensated on one complaint ticket
    # orders and refunds
    "max_redeem_share_bp": 5_000,            # at most this share of an order's fiat amount paid in coins
    "coin_value_minor": 1,                   # fiat minor units one coin is worth when redeemed on an order
    "refund_window_ms": 30 * DAY_MS,         # a paid order can be refunded this long after payment
    "refund_second_factor_threshold": 100_000,  # refunds above this fiat amount need the second factor
    # KYC and transfers
    "daily_outflow_kyc0": 1_000,             # coins a customer may send/redeem per UTC day, by KYC level
    "daily_outflow_kyc1": 20_000,
    "daily_outflow_kyc2": 500_000,
    "second_factor_threshold": 10_000,       # transfers above this amount need the second-factor signature
    # privileges
    "privilege_priority_price": 1_000,
    "privilege_vip_price": 5_000,
    "privilege_lifetime_ms": 90 * DAY_MS,
}

MAX_MEMO_CHARS = 140


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One transaction kind: its name, its payload shape check and its state-transition step."""

    name: str
    compute_payload: Callable[[Any], Any]  # shape check: payload -> typed tx, raises InvalidTransaction
    process: Callable[["TxContext", Any], list[list]]  # rules and writes: raises TxFailure


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
