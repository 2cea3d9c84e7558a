"""Compliance kinds: ``freeze-account`` and ``unfreeze-account``, each with a reason code.

A frozen account cannot send or redeem coins: ``transfer``, paying an order with coins, ``buy-privilege``
and ``redeem-coupon`` all call ``ledger.limits.verify_not_frozen`` on the sender. Nor can it receive coins
(``ledger.lots.credit`` and the receiving side of a transfer refuse it) or be refunded; it can still be read. The freeze record (``b"f" + account``) keeps the reason code, who froze it and the height, so
an auditor sees why without reading history; the events carry the reason codes of both directions.
A reason code is a ``Code`` (lowercase ASCII letters, digits, ``_ . : -``): a payload holding free text (a
name, a sentence) is refused before it reaches a block, where it could never be erased.

freeze-account   payload [account: bin32, reason_code: str]  event ["account_frozen", account, reason_code]
unfreeze-account payload [account: bin32, reason_code: str]  event ["account_unfrozen", account, reason_code]
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import reasons
from ledger.limits import Freeze, get_freeze, set_freeze
from ledger.events import AccountFrozen, AccountUnfrozen, Event
from ledger.process.common import TxContext, verify_name, verify_role, verify_rule
from ledger.process.payload import Account, Code, arg, declare_kind


@dataclass(frozen=True, slots=True)
class FreezeChange:
    """A freeze-account or unfreeze-account payload."""

    account: Account = arg("The account (64 hex digits).")
    reason_code: Code = arg("Why, as a short code such as fraud_check (kept on the freeze record and in the event, "
                            "on chain for good: lowercase letters, digits, _ . : - only, never a name or a "
                            "sentence).")


def process_freeze_account(ctx: TxContext, tx: FreezeChange) -> list[Event]:
    """Freeze ``tx.account``: it can no longer send or redeem coins."""
    # Only compliance freezes accounts
    verify_role(ctx, "compliance")
    # The reason code is given
    verify_name("reason code", tx.reason_code)
    # The account is not frozen already (the first reason stays on record)
    current = get_freeze(ctx.state, tx.account)
    verify_rule(current is None, reasons.ALREADY_FROZEN,
                f"account {tx.account.hex()[:16]}… is already frozen ({current.reason_code if current else ''})")

    set_freeze(ctx.state, tx.account, Freeze(tx.reason_code, ctx.sender, ctx.height))
    return [AccountFrozen(tx.account, tx.reason_code)]


def process_unfreeze_account(ctx: TxContext, tx: FreezeChange) -> list[Event]:
    """Lift the freeze of ``tx.account``."""
    # Only compliance unfreezes accounts
    verify_role(ctx, "compliance")
    # The reason code is given
    verify_name("reason code", tx.reason_code)
    # The account is frozen
    verify_rule(get_freeze(ctx.state, tx.account) is not None, reasons.NOT_FROZEN,
                f"account {tx.account.hex()[:16]}… is not frozen")

    set_freeze(ctx.state, tx.account, None)
    return [AccountUnfrozen(tx.account, tx.reason_code)]


SPECS = (
    declare_kind("freeze-account", FreezeChange, process_freeze_account, senders="compliance",
                 help="Freeze an account with a reason code (compliance)."),
    declare_kind("unfreeze-account", FreezeChange, process_unfreeze_account, senders="compliance",
                 help="Lift an account's freeze with a reason code (compliance)."),
)
