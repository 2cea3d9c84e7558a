"""Currencies and FX rates: which currencies orders may use, and what they are worth in the base currency.

Theory of operation
-------------------
Policy names the ``base_currency`` (default "EUR") and the ``currencies`` orders may also use (a comma list,
default "EUR"; the base currency is always accepted). Treasury sets the rate of every other currency on the
list with ``set-fx-rate`` (``ledger.process.fx``); a rate is an integer: **base-currency minor units per
1,000,000 (``FX_UNIT``) minor units of the currency**. Examples with EUR as base: USD at 1 USD = 0.92 EUR is
920_000 (100 cents -> 92 cents); JPY at 1 JPY = 0.0061 EUR is 610_000 (¥10,000 -> 6,100 cents = €61.00,
because the yen has no minor unit and the euro has cents). The base currency is worth itself (FX_UNIT).

State: ``b"i" + currency(utf-8)`` -> ``P([rate, set_at_ms, set_by])``. A rate older than ``fx_max_age_ms``
at the block time is stale: ``create-order`` refuses a currency whose rate is missing or stale, and an order
keeps the rate of its creation for its whole life (pay, confirm, refund), so a later rate never re-prices it.
Conversions floor once: ``base = minor * rate // FX_UNIT``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import reasons
from ledger.context import DEFAULT_POLICY, TxContext, get_policy_value, verify_rule
from ledger.errors import SchemaError
from ledger.state import Overlay, PREFIX_FX, StateReader, get_policy, get_record, set_record

FX_UNIT = 1_000_000  # a rate is base minor units per FX_UNIT minor units of the currency


@dataclass(frozen=True, slots=True)
class FxRate:
    """A currency's rate as treasury set it."""

    rate: int
    set_at_ms: int
    set_by: bytes


def is_currency(code: str) -> bool:
    """True iff ``code`` has the shape of an ISO 4217 code: three ASCII capital letters."""
    return len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()


def get_policy_text(state: StateReader, name: str) -> str:
    """Return the str policy parameter ``name`` in force; raise ``SchemaError`` if the chain stored an int."""
    value = get_policy(state, name, DEFAULT_POLICY[name])
    if type(value) is not str:
        raise SchemaError(f"state policy {name}: expected a str, got {value!r:.40}")
    return value


def get_base_currency(state: StateReader) -> str:
    """The currency every value is reported and earned in."""
    return get_policy_text(state, "base_currency").strip()


def get_currencies(state: StateReader) -> tuple[str, ...]:
    """The currencies orders may use: the base currency first, then the policy list (in its order, once)."""
    out = [get_base_currency(state)]
    for code in get_policy_text(state, "currencies").split(","):
        code = code.strip()
        if code and code not in out:
            out.append(code)
    return tuple(out)


def fx_key(currency: str) -> bytes:
    """State key of a currency's FX rate."""
    return PREFIX_FX + currency.encode()


def get_rate(state: StateReader, currency: str) -> FxRate | None:
    """Return the rate treasury set for ``currency`` (None if never set)."""
    value = get_record(state, fx_key(currency))
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 3 and type(value[0]) is int and value[0] > 0
            and type(value[1]) is int and type(value[2]) is bytes):
        raise SchemaError(f"state fx rate {currency!r}: expected [rate > 0, set_at_ms, set_by], got {value!r:.60}")
    return FxRate(value[0], value[1], value[2])


def set_rate(state: Overlay, currency: str, rate: FxRate) -> None:
    """Store ``currency``'s rate."""
    set_record(state, fx_key(currency), [rate.rate, rate.set_at_ms, rate.set_by])


def verify_accepted(ctx: TxContext, currency: str) -> None:
    """Raise ``invalid_currency`` for a malformed code, ``currency_not_accepted`` for one not on the policy list."""
    verify_rule(is_currency(currency), reasons.INVALID_CURRENCY,
                f"currency is {currency[:20]!r}; expected three capital letters such as 'EUR'")
    accepted = get_currencies(ctx.state)
    verify_rule(currency in accepted, reasons.CURRENCY_NOT_ACCEPTED,
                f"currency {currency!r} is not accepted; the policy accepts {', '.join(accepted)}")


def get_fresh_rate(ctx: TxContext, currency: str) -> int:
    """The rate of ``currency`` usable at the block time (FX_UNIT for the base currency); raise
    ``fx_rate_missing`` or ``fx_rate_stale``."""
    if currency == get_base_currency(ctx.state):
        return FX_UNIT
    found = get_rate(ctx.state, currency)
    # Treasury has set a rate for the currency
    verify_rule(found is not None, reasons.FX_RATE_MISSING,
                f"no FX rate for {currency!r}; treasury must set one (set-fx-rate) before orders use it")
    assert found is not None
    # ... recently enough
    max_age = get_policy_value(ctx, "fx_max_age_ms")
    age = ctx.timestamp_ms - found.set_at_ms
    verify_rule(age <= max_age, reasons.FX_RATE_STALE,
                f"the {currency} rate was set at {found.set_at_ms}, {age} ms before this block; the policy's "
                f"maximum age is {max_age} ms")
    return found.rate


def compute_base(minor: int, rate: int) -> int:
    """``minor`` units of a currency at ``rate`` in base-currency minor units (one floor)."""
    return minor * rate // FX_UNIT
