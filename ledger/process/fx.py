"""``set-fx-rate``: treasury sets what a currency on the policy list is worth in the base currency.

payload = [currency: str, rate: int] where ``rate`` is base-currency minor units per 1,000,000 minor units
of ``currency`` (``ledger.fx``); events = ["fx_rate_set", currency, rate, set_by]. The rate is stamped with
the block time: orders refuse it once it is older than ``fx_max_age_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import fx, reasons
from ledger.events import Event, FxRateSet
from ledger.process.common import TxContext, get_policy_value, verify_role, verify_rule
from ledger.process.payload import Amount, Text, arg, declare_kind

KIND = "set-fx-rate"


@dataclass(frozen=True, slots=True)
class SetFxRate:
    """A set-fx-rate payload."""

    currency: Text = arg("ISO 4217 code of a currency on the policy list (not the base currency).")
    rate: Amount = arg("Base-currency minor units per 1,000,000 minor units of the currency "
                       "(USD at 0.92 EUR: 920000).", cli_min=1)


def process_set_fx_rate(ctx: TxContext, tx: SetFxRate) -> list[Event]:
    """Record ``tx.rate`` for ``tx.currency`` at the block time; raise ``TxFailure`` if a rule forbids it."""
    # Only treasury sets rates
    verify_role(ctx, "treasury")
    # The currency is a well-formed code on the policy's list
    fx.verify_accepted(ctx, tx.currency)
    # ... and not the base currency, which is worth itself
    base = fx.get_base_currency(ctx.state)
    verify_rule(tx.currency != base, reasons.BASE_CURRENCY_RATE,
                f"{tx.currency} is the base currency; rates are set for the other currencies on the list")
    # The rate is positive
    verify_rule(tx.rate > 0, reasons.INVALID_FX_RATE,
                f"rate is {tx.rate}; expected more than 0 {base} minor units per {fx.FX_UNIT} {tx.currency} "
                "minor units")
    # A rate moves in bounded steps from the current one (a rogue or mistyped rate cannot value an order at
    # many times its worth; a real move larger than the step takes several rates, each on chain)
    current = fx.get_rate(ctx.state, tx.currency)
    if current is not None:
        step = get_policy_value(ctx, "fx_max_step_pct")
        low, high = current.rate * (100 - min(step, 99)) // 100, current.rate * (100 + step) // 100
        verify_rule(low <= tx.rate <= high, reasons.FX_RATE_JUMP,
                    f"rate {tx.rate} for {tx.currency}; the current rate is {current.rate} and one step may move "
                    f"it at most {step}% (to {low}..{high})")

    fx.set_rate(ctx.state, tx.currency, fx.FxRate(tx.rate, ctx.timestamp_ms, ctx.sender))
    return [FxRateSet(tx.currency, tx.rate, ctx.sender)]


SPECS = (declare_kind(KIND, SetFxRate, process_set_fx_rate, senders="treasury",
                      help="Set a currency's FX rate: base minor units per 1,000,000 of its minor units (treasury)."),)
