"""Debt: coins an account owes after a refund took back more earned coins than it still held.

Theory of operation
-------------------
A refund claws back the coins the order earned (``ledger.process.orders``). What the customer already spent
or sent away of them cannot be burned; that shortfall becomes a **debt** under ``b"j" + account`` ->
``P(int > 0)`` (absent = 0; a debt of 0 is never stored). While in debt an account cannot spend, pay an order
with coins, buy a privilege or send coins (``verify_not_in_debt``, called by ``ledger.lots.spend`` and
``ledger.lots.process_move``: reason ``in_debt``). The debt is repaid two ways:

* **by later credits**: every ``ledger.lots.credit`` except refund returns and transfers (``EXEMPT_SOURCES``)
  first pays the debt (``process_repay_from_credit``); the repaid part never becomes coins (it is not minted,
  so the supply does not move) and shows as ``["debt_repaid", account, amount, source, debt_left]``;
* **by burning coins**: the ``repay-debt`` kind burns the customer's own coins (the one outflow allowed in
  debt; ``ledger.lots.spend(..., repaying_debt=True)``).

Counters ``debt_incurred`` and ``debt_repaid`` (``b"n"``) give the outstanding debt of the whole ledger:
incurred - repaid. A debt is no coin: the supply invariant (supply = minted - expired - burned) is untouched.
"""

from __future__ import annotations

from ledger import reasons
from ledger.context import TxContext, verify_rule
from ledger.errors import SchemaError
from ledger.customers import record_clawback
from ledger.events import DebtIncurred, DebtRepaid, Event
from ledger.state import Overlay, PREFIX_DEBT, StateReader, account_record_key, add_counter, get_record, set_record

EXEMPT_SOURCES = frozenset({"refund", "transfer"})  # credits that never repay a debt (the customer's own coins)


def debt_key(account: bytes) -> bytes:
    """State key of an account's debt."""
    return account_record_key(PREFIX_DEBT, account)


def get_debt(state: StateReader, account: bytes) -> int:
    """Return the coins ``account`` owes (0 when it owes nothing)."""
    value = get_record(state, debt_key(account))
    if value is None:
        return 0
    if type(value) is not int or value <= 0:
        raise SchemaError(f"state debt of {account.hex()[:16]}…: expected an int > 0, got {value!r:.40}")
    return value


def set_debt(state: Overlay, account: bytes, debt: int) -> None:
    """Store the account's debt (0 deletes the record)."""
    if type(debt) is not int or debt < 0:
        raise ValueError(f"debt {debt!r}; expected an int >= 0")
    set_record(state, debt_key(account), debt or None)


def verify_not_in_debt(ctx: TxContext, account: bytes, what: str) -> None:
    """Raise ``in_debt`` if ``account`` owes coins (``what`` names the refused outflow)."""
    debt = get_debt(ctx.state, account)
    verify_rule(debt == 0, reasons.IN_DEBT,
                lambda: f"account {account.hex()[:16]}… owes {debt} coins from a refund; {what} is refused until "
                        "the debt is repaid (later earnings repay it, or `repay-debt` burns coins for it)")


def process_incur(ctx: TxContext, account: bytes, amount: int, purpose: str) -> list[Event]:
    """Add ``amount`` (> 0) to the account's debt; return ``[["debt_incurred", ...]]`` ([] for 0)."""
    if type(amount) is not int or amount < 0:
        raise ValueError(f"debt amount {amount!r}; expected an int >= 0")
    if amount == 0:
        return []
    debt = get_debt(ctx.state, account) + amount
    set_debt(ctx.state, account, debt)
    add_counter(ctx.state, "debt_incurred", amount)
    return [DebtIncurred(account, amount, purpose, debt)]


def process_repay(ctx: TxContext, account: bytes, amount: int, source: str) -> tuple[int, list[Event]]:
    """Repay up to ``amount`` of the account's debt; return (repaid, events). Moves no coin: callers do."""
    debt = get_debt(ctx.state, account)
    repaid = min(debt, amount)
    if repaid <= 0:
        return 0, []
    set_debt(ctx.state, account, debt - repaid)
    add_counter(ctx.state, "debt_repaid", repaid)
    # The debt stood for earnings clawed back: repaying it takes them back from the tier's earnings, so the
    # tier (window earnings - debt) does not rise as the debt falls
    record_clawback(ctx.state, account, repaid, ctx.timestamp_ms)
    return repaid, [DebtRepaid(account, repaid, source, debt - repaid)]


def process_repay_from_credit(ctx: TxContext, account: bytes, amount: int, source: str) -> tuple[int, list[Event]]:
    """The part of a credit of ``amount`` from ``source`` that repays the debt first: (repaid, events)."""
    if source in EXEMPT_SOURCES:
        return 0, []
    return process_repay(ctx, account, amount, source)
