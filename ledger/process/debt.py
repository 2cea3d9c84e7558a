"""``repay-debt``: a customer burns their own coins to clear the debt a refund left (``ledger.debt``).

The one outflow allowed while in debt. payload = [amount: int] (at most the debt); events = the sweep (if
any), ["spent", account, amount, "debt"], ["debt_repaid", account, amount, "repay-debt", debt_left]. It pays
no one, so it counts toward no outflow limit; a frozen account cannot do it (frozen means frozen).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import debt, reasons
from ledger.events import Event
from ledger.limits import verify_not_frozen
from ledger.lots import spend
from ledger.process.common import TxContext, verify_positive_amount, verify_rule
from ledger.process.payload import Amount, arg, declare_kind

KIND = "repay-debt"


@dataclass(frozen=True, slots=True)
class RepayDebt:
    """A repay-debt payload."""

    amount: Amount = arg("Coins to burn against your debt (at most what you owe).", cli_min=1)


def process_repay_debt(ctx: TxContext, tx: RepayDebt) -> list[Event]:
    """Burn ``tx.amount`` of the sender's coins and reduce their debt by as much; raise ``TxFailure``."""
    # The amount is positive
    verify_positive_amount(tx.amount)
    # The sender owes coins
    owed = debt.get_debt(ctx.state, ctx.sender)
    verify_rule(owed > 0, reasons.NO_DEBT, f"account {ctx.sender.hex()[:16]}… owes nothing; expected a debt")
    # ... at least the amount
    verify_rule(tx.amount <= owed, reasons.REPAY_EXCEEDS_DEBT, f"{tx.amount} offered; the debt is {owed}")
    # A frozen account burns nothing
    verify_not_frozen(ctx, ctx.sender)
    # The sender holds the coins (insufficient_balance)
    events = spend(ctx, ctx.sender, tx.amount, "debt", repaying_debt=True)
    return events + debt.process_repay(ctx, ctx.sender, tx.amount, "repay-debt")[1]


SPECS = (declare_kind(KIND, RepayDebt, process_repay_debt, senders="the account in debt",
                      help="Burn your own coins to repay the debt a refund left (the one outflow allowed in debt)."),)
