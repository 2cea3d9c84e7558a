"""``transfer``: an account sends coins to another account.

payload = [to: bin32, amount: int, memo: str]; event = ["transferred", from, to, amount].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import reasons
from ledger.process.common import (
    KindSpec,
    MAX_MEMO_CHARS, TxContext, expect_account, expect_int, expect_payload, expect_str, process_credit,
    process_debit, verify_positive_amount, verify_rule,
)
from ledger.state import get_balance
from ledger.types import AccountId, Amount

KIND = "transfer"


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer payload, shape-checked."""

    to: AccountId
    amount: Amount
    memo: str


def compute_transfer(payload: Any) -> Transfer:
    """Check the payload's shape and return a ``Transfer``; raise ``InvalidTransaction(bad_payload)``."""
    to, amount, memo = expect_payload(KIND, payload, "[to: bin32, amount: int, memo: str]", 3)
    return Transfer(expect_account(KIND, "to", to), expect_int(KIND, "amount", amount),
                    expect_str(KIND, "memo", memo))


def process_transfer(ctx: TxContext, tx: Transfer) -> list[list]:
    """Move ``tx.amount`` from the sender to ``tx.to``; raise ``TxFailure`` if a rule forbids it."""
    # The amount must be positive
    verify_positive_amount(tx.amount)
    # Sending to oneself is refused: it would only burn a nonce and confuse the history
    verify_rule(tx.to != ctx.sender, reasons.SELF_TRANSFER, f"recipient {tx.to.hex()[:16]}… is the sender")
    # The memo must be short enough to show on a receipt
    verify_rule(len(tx.memo) <= MAX_MEMO_CHARS, reasons.MEMO_TOO_LONG,
                f"memo has {len(tx.memo)} characters; at most {MAX_MEMO_CHARS} are allowed")
    # The sender must hold the amount
    balance = get_balance(ctx.state, ctx.sender)
    verify_rule(balance >= tx.amount, reasons.INSUFFICIENT_BALANCE,
                f"balance is {balance}; the transfer needs {tx.amount}")

    process_debit(ctx.state, ctx.sender, tx.amount)
    process_credit(ctx.state, tx.to, tx.amount)
    return [["transferred", ctx.sender, tx.to, tx.amount]]


SPECS = (KindSpec(KIND, compute_transfer, process_transfer),)
