"""``buy-privilege``: a customer spends coins on a privilege ("priority" support or "vip") for a while.

The price is the policy's ``privilege_<name>_price``; the privilege lasts ``privilege_lifetime_ms``. Buying
it again while it is active extends it from its current expiry (nothing already paid for is lost). Spending
on a privilege is a redemption: the sender must not be frozen and it counts toward the daily outflow (and the
second factor past the threshold: ``ledger.limits.verify_outflow``).

Effects (policy, while the privilege holds): VIP adds ``privilege_vip_earn_bonus_pct`` to the earn multiplier
(``ledger.customers.get_tier_multiplier_pct``, used by confirm-order); priority applies the SLA factor to the
customer's tickets (``ledger.sla``). Tiers need no transaction: ``ledger.customers.get_tier`` derives them
from the earnings of the rolling window.

payload [privilege: str]; events = the sweep (if any), ["spent", account, price, "privilege:<name>"],
["privilege_bought", account, privilege, price, expires_at_ms]
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import reasons
from ledger.customers import PRIVILEGE_CODES, get_privilege_expiry, privilege_key, verify_customer
from ledger.limits import verify_not_frozen, verify_outflow
from ledger.lots import spend
from ledger.events import Event, PrivilegeBought
from ledger.process.common import TxContext, get_policy_value, verify_rule
from ledger.process.payload import Text, arg, declare_kind
from ledger.state import set_record

KIND = "buy-privilege"


@dataclass(frozen=True, slots=True)
class BuyPrivilege:
    """A buy-privilege payload."""

    privilege: Text = arg("priority or vip.")


def process_buy_privilege(ctx: TxContext, tx: BuyPrivilege) -> list[Event]:
    """Spend the policy price and hold ``tx.privilege`` for ``privilege_lifetime_ms`` more."""
    # The privilege exists
    verify_rule(tx.privilege in PRIVILEGE_CODES, reasons.UNKNOWN_PRIVILEGE,
                f"privilege {tx.privilege[:40]!r} does not exist; expected one of {', '.join(PRIVILEGE_CODES)}")
    # Only a registered customer buys privileges
    verify_customer(ctx, ctx.sender)
    # A frozen account cannot redeem coins
    verify_not_frozen(ctx, ctx.sender)
    price = get_policy_value(ctx, f"privilege_{tx.privilege}_price")
    events: list[Event] = []
    if price > 0:
        # The customer holds the price in live coins (checked by spend)
        events = spend(ctx, ctx.sender, price, f"privilege:{tx.privilege}")
        # The price fits the customer's daily outflow limit
        verify_outflow(ctx, ctx.sender, price)

    start = max(get_privilege_expiry(ctx.state, ctx.sender, tx.privilege), ctx.timestamp_ms)
    expires = start + get_policy_value(ctx, "privilege_lifetime_ms")
    set_record(ctx.state, privilege_key(ctx.sender, tx.privilege), expires)
    events.append(PrivilegeBought(ctx.sender, tx.privilege, price, expires))
    return events


SPECS = (declare_kind(KIND, BuyPrivilege, process_buy_privilege, senders="customer",
                      help="Spend coins on a privilege: priority or vip (customer)."),)
