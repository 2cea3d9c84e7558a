"""``mint``: an issuer creates coins in an account, within the policy's cap on total supply.

payload = [to: bin32, amount: int]; events = the recipient's sweep (if any), then
["credited", to, amount, "mint", expires_at_ms]: minted coins are a lot like any other (``ledger.coin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.events import Event
from ledger import reasons
from ledger.coin import credit
from ledger.process.common import (
    KindSpec,
    TxContext, expect_account, expect_int, expect_payload, get_policy_value, verify_positive_amount,
    verify_role, verify_rule,
)
from ledger.state import get_supply
from ledger.types import AccountId, Amount

KIND = "mint"


@dataclass(frozen=True, slots=True)
class Mint:
    """A mint payload, shape-checked."""

    to: AccountId
    amount: Amount


def compute_mint(payload: Any) -> Mint:
    """Check the payload's shape and return a ``Mint``; raise ``InvalidTransaction(bad_payload)``."""
    to, amount = expect_payload(KIND, payload, "[to: bin32, amount: int]", 2)
    return Mint(expect_account(KIND, "to", to), expect_int(KIND, "amount", amount))


def process_mint(ctx: TxContext, tx: Mint) -> list[Event]:
    """Credit ``tx.amount`` new coins to ``tx.to``; raise ``TxFailure`` if a rule forbids it."""
    # Only an issuer may create coins
    verify_role(ctx, "issuer")
    # The amount must be positive
    verify_positive_amount(tx.amount)
    # The total supply must stay within the policy's mint cap
    supply, cap = get_supply(ctx.state), get_policy_value(ctx, "mint_cap")
    verify_rule(supply + tx.amount <= cap, reasons.MINT_CAP_EXCEEDED,
                f"supply {supply} + {tx.amount} = {supply + tx.amount}; the mint cap is {cap}")

    return credit(ctx, tx.to, tx.amount, "mint")


SPECS = (KindSpec(KIND, compute_mint, process_mint),)
