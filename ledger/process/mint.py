"""``mint``: an issuer creates coins in an account (never its own: ``self_dealing``), within the policy's cap on
total supply; a frozen account receives nothing (``account_frozen``).

payload = [to: bin32, amount: int]; events = the recipient's sweep (if any), then
["credited", to, amount, "mint", expires_at_ms]: minted coins are a lot like any other (``ledger.lots``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import reasons
from ledger.lots import credit
from ledger.events import Event
from ledger.process.common import TxContext, verify_positive_amount, verify_role, verify_rule
from ledger.process.payload import Account, Amount, arg, declare_kind

KIND = "mint"


@dataclass(frozen=True, slots=True)
class Mint:
    """A mint payload."""

    to: Account = arg("Account id (64 hex digits) receiving the coins.")
    amount: Amount = arg("Amount in the smallest unit.", cli_min=1)


def process_mint(ctx: TxContext, tx: Mint) -> list[Event]:
    """Credit ``tx.amount`` new coins to ``tx.to``; raise ``TxFailure`` if a rule forbids it."""
    # Only an issuer may create coins
    verify_role(ctx, "issuer")
    # ... and never to its own account
    verify_rule(tx.to != ctx.sender, reasons.SELF_DEALING,
                lambda: f"issuer {ctx.sender.hex()[:16]}… would mint to its own account; another issuer must do it")
    # The amount must be positive
    verify_positive_amount(tx.amount)
    # The total supply must stay within the policy's mint cap (``credit`` checks it for every coin creation)
    return credit(ctx, tx.to, tx.amount, "mint")


SPECS = (declare_kind(KIND, Mint, process_mint, senders="issuer",
                      help="Mint new coins to an account (the sender must hold the issuer role)."),)
