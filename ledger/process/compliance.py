"""Compliance kinds: ``freeze-account`` and ``unfreeze-account``, each with a reason code.

A frozen account cannot send or redeem coins: ``transfer``, paying an order with coins, ``buy-privilege``
and ``redeem-coupon`` all call ``ledger.coin.verify_not_frozen`` on the sender. It can still receive coins
and be read. The freeze record (``b"f" + account``) keeps the reason code, who froze it and the height, so
an auditor sees why without reading history; the events carry the reason codes of both directions.

freeze-account   payload [account: bin32, reason_code: str]  event ["account_frozen", account, reason_code]
unfreeze-account payload [account: bin32, reason_code: str]  event ["account_unfrozen", account, reason_code]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.events import Event, AccountFrozen, AccountUnfrozen
from ledger import reasons
from ledger.coin import Freeze, get_freeze, set_freeze
from ledger.process.common import (
    KindSpec, TxContext, expect_account, expect_payload, expect_str, verify_name, verify_role, verify_rule,
)


@dataclass(frozen=True, slots=True)
class FreezeChange:
    """A freeze-account or unfreeze-account payload, shape-checked."""

    account: bytes
    reason_code: str


def _compute(kind: str, payload: Any) -> FreezeChange:
    account, reason_code = expect_payload(kind, payload, "[account: bin32, reason_code: str]", 2)
    return FreezeChange(expect_account(kind, "account", account), expect_str(kind, "reason_code", reason_code))


def compute_freeze_account(payload: Any) -> FreezeChange:
    """Check the payload's shape and return a ``FreezeChange``; raise ``InvalidTransaction(bad_payload)``."""
    return _compute("freeze-account", payload)


def compute_unfreeze_account(payload: Any) -> FreezeChange:
    """Check the payload's shape and return a ``FreezeChange``; raise ``InvalidTransaction(bad_payload)``."""
    return _compute("unfreeze-account", payload)


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
    KindSpec("freeze-account", compute_freeze_account, process_freeze_account),
    KindSpec("unfreeze-account", compute_unfreeze_account, process_unfreeze_account),
)
