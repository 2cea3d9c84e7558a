"""``transfer``: an account sends coins to another account.

payload = [to: bin32, amount: int, memo_hash: bin32]; events = the sweeps of both accounts (if any), then
["transferred", from, to, amount]. Lots move with their ORIGINAL expiry, earliest first, so a transfer never
extends a coin's life (``ledger.lots.process_move``). Neither side may be frozen; the amount counts toward the
sender's outflow of the day (``ledger.limits.verify_outflow``: the KYC limit, and the second factor once the
day's total crosses ``second_factor_threshold``). The memo is never on chain: ``memo_hash`` is a salted
commitment to it (``ledger.commitments``; ``NO_TEXT`` when there is none), its text kept in a vault.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import reasons
from ledger.limits import verify_not_frozen, verify_outflow
from ledger.lots import process_move
from ledger.events import Event, Transferred
from ledger.process.common import TxContext, verify_positive_amount, verify_rule
from ledger.process.payload import Account, Amount, ContentHash, arg, declare_kind

KIND = "transfer"


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer payload."""

    to: Account = arg("Account id (64 hex digits) receiving the coins.")
    amount: Amount = arg("Amount in the smallest unit.", cli_min=1)
    memo_hash: ContentHash = arg("A note to the recipient", "")


def process_transfer(ctx: TxContext, tx: Transfer) -> list[Event]:
    """Move ``tx.amount`` from the sender to ``tx.to``; raise ``TxFailure`` if a rule forbids it."""
    # The amount must be positive
    verify_positive_amount(tx.amount)
    # Sending to oneself is refused: it would only burn a nonce and confuse the history
    verify_rule(tx.to != ctx.sender, reasons.SELF_TRANSFER, lambda: f"recipient {tx.to.hex()[:16]}… is the sender")
    # A frozen account cannot send
    verify_not_frozen(ctx, ctx.sender)
    # ... nor receive
    verify_not_frozen(ctx, tx.to)
    # The sender must hold the amount in live coins (dead lots are swept first)
    events = process_move(ctx, ctx.sender, tx.to, tx.amount)
    # The day's outflow stays within the KYC limit; past the threshold the sender's second key co-signs
    verify_outflow(ctx, ctx.sender, tx.amount)

    events.append(Transferred(ctx.sender, tx.to, tx.amount))
    return events


SPECS = (declare_kind(KIND, Transfer, process_transfer, senders="any account",
                      help="Send coins from the key's account to another account."),)
