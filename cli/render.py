"""Human output of the CLI: aligned lines and columns, amounts with their units, times as ISO-8601.

``--json`` prints documents as they are (machine-readable, ms since the epoch, integer amounts); everything
else goes through here. Times show in the operator's zone: ``TZ`` (an IANA name such as Europe/Berlin),
else the system's, or UTC with ``--utc`` (env ``CARECOIN_UTC=1``). Coins print as ``250 coins``; fiat as
``EUR 12.50`` (the minor units of the document's ``currency``).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone, tzinfo
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

_UTC = {"on": False}
COIN_KEYS = {"balance", "stored_balance", "debt", "lifetime_earned", "tier_earned", "compensated", "coins_paid",
             "earned", "coins_returned", "clawed_back", "amount", "reward", "coins", "debt_coins"}
FIAT_KEYS = {"fiat_amount", "discount", "fiat_paid", "fiat_refunded", "amount_due"}
DURATION_KEYS = {"first_response_ms", "resolution_ms", "mean_first_response_ms", "mean_resolution_ms"}
ZERO_DIGIT_CURRENCIES = {"JPY", "KRW", "VND", "CLP", "ISK", "HUF"}


def use_utc(on: bool) -> None:
    _UTC["on"] = on


def utc_option(func):
    """``--utc``: print times in UTC instead of the operator's zone (env CARECOIN_UTC)."""
    return click.option("--utc", is_flag=True, envvar="CARECOIN_UTC", expose_value=False, is_eager=True,
                        callback=lambda ctx, param, value: use_utc(bool(value)),
                        help="Show times in UTC (default: TZ, else the system's zone).")(func)


def operator_zone() -> tzinfo | None:
    """UTC with --utc; else the zone named by TZ; else None (the system's)."""
    if _UTC["on"]:
        return timezone.utc
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return None


def format_time(ms: int | None) -> str:
    """ISO-8601 with the zone's offset, to the second (``-`` for 0/None: not yet)."""
    if not ms:
        return "-"
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    zone = operator_zone()
    return (moment.astimezone(zone) if zone else moment.astimezone()).isoformat(timespec="seconds")


def format_duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p)


def format_coins(amount: int | None) -> str:
    if amount is None:
        return "-"
    return f"{amount} coin" + ("" if abs(amount) == 1 else "s")


def format_fiat(minor: int | None, currency: str | None) -> str:
    """``EUR 12.50`` from 1250 minor units (no decimals for zero-digit currencies)."""
    if minor is None:
        return "-"
    code = (currency or "").upper() or "?"
    if code in ZERO_DIGIT_CURRENCIES:
        return f"{code} {minor}"
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{code} {sign}{whole}.{cents:02d}"


POLICY_FIAT = {"coin_value_minor", "refund_second_factor_threshold"}  # minor units of the base currency


def format_policy_value(name: str, value: Any, base_currency: str | None) -> str:
    """A policy parameter with its unit: durations (``_ms``), basis points, percents, fiat in the base
    currency, coins for every other number; text as it is."""
    if not isinstance(value, int) or isinstance(value, bool):
        return str(value)
    if "_ms" in name:
        return "no target" if value == 0 and name.startswith("sla_") else format_duration(value)
    if name.endswith("_bp"):
        return f"{value} bp ({value / 100:.2f} %)"
    if name.endswith("_pct"):
        return f"{value} %"
    if name in POLICY_FIAT:
        return format_fiat(value, base_currency)
    return format_coins(value)


def is_time_key(key: str) -> bool:
    return key == "timestamp_ms" or key.endswith(("_at", "_at_ms", "_due"))


def format_value(key: str, value: Any, doc: Mapping[str, Any] | None = None) -> str:
    """One field as a person reads it: units on amounts, ISO times, durations; nested values as JSON."""
    doc = doc or {}
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    if isinstance(value, int):
        if is_time_key(key):
            return format_time(value)
        if key in DURATION_KEYS:
            return format_duration(value)
        if key in COIN_KEYS:
            return format_coins(value)
        if key in FIAT_KEYS:
            return format_fiat(value, doc.get("currency"))
        return str(value)
    if key == "expiring" and isinstance(value, list):  # [[expiry ms, coins], ...]
        return ", ".join(f"{format_coins(a)} on {format_time(e)}" for e, a in value) or "none"
    if key == "privileges" and isinstance(value, dict):  # {privilege: expiry ms}
        return ", ".join(f"{p} until {format_time(e)}" for p, e in value.items() if e) or "none"
    if isinstance(value, (dict, list)):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ", ".join(value) or "none"
        return json.dumps(value, sort_keys=True)
    return str(value)


def echo_fields(doc: Mapping[str, Any], skip: frozenset[str] = frozenset()) -> None:
    """A document as aligned ``field: value`` lines (values with units, ISO times; never truncated)."""
    keys = [k for k in doc if k not in skip]
    width = max((len(k) for k in keys), default=0)
    for key in keys:
        click.echo(f"{key:>{width}}: {format_value(key, doc[key], doc)}")


def echo_rows(rows: list[Mapping[str, Any]], columns: list[str]) -> None:
    """Rows as aligned columns under a header, each value formatted by its column name (never truncated)."""
    cells = [[format_value(c, row.get(c), row) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
