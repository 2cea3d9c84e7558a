"""Coupon kinds: ``issue-coupon`` (issuer or branch admin, for a campaign) and ``redeem-coupon`` (a customer).

Theory of operation
-------------------
A coupon is issued BY A CAMPAIGN decided by governance (``ledger.campaigns``): either by the campaign's own
coupon effect (a personal coupon for the customer who triggered it) or by ``issue-coupon`` naming an active
campaign whose effect is a coupon. The campaign bounds what an issuer may issue: the value (at most the
campaign's), the currency (the campaign's), the life (at most the campaign's coupon lifetime) and, in all,
its budget (``value × total`` is reserved from it at issue). A coupon is for one customer (``total`` 1) or for
anyone up to ``total`` redemptions, and each customer redeems it at most once.

Redeeming is always ON AN ORDER of the coupon's currency: ``ledger.orders.apply_coupon`` records the discount
on the customer's unpaid order and refuses an order that already has one, so a coupon never pays twice for
one order. A coupon creates no coins: its value is fiat, off the coin supply. Records: ``ledger.coupons``.

issue-coupon  payload [coupon_id: str, campaign: str, value: int, currency: str, expires_at_ms: int,
              customer: bin32 (32 zero bytes = anyone), total: int]; event ["coupon_issued", coupon_id, campaign,
              value, currency, expires_at_ms, customer, total]
redeem-coupon payload [coupon_id: str, order_id: str]; events = apply_coupon's ["coupon_applied", order_id,
              customer, discount], then ["coupon_redeemed", coupon_id, customer, order_id, value]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ledger import reasons
from ledger.campaigns import get_campaign, set_campaign
from ledger.coupons import (  # noqa: F401 - re-exported for readers and tests
    ANYONE, MAX_COUPON_ID_BYTES, Coupon, coupon_key, coupon_use_key, get_coupon, get_coupon_uses, set_coupon,
)
from ledger.customers import get_branch_of, verify_customer
from ledger.limits import verify_not_frozen
from ledger.events import CouponIssued, CouponRedeemed, Event
from ledger.orders import apply_coupon, verify_id, verify_order, verify_order_customer
from ledger.process.common import TxContext, verify_any_role, verify_own_branch, verify_rule
from ledger.process.payload import Account, Amount, Id, Int, Text, arg, declare_kind
from ledger.reasons import TxFailure
from ledger.state import has_role, set_record


@dataclass(frozen=True, slots=True)
class IssueCoupon:
    """An issue-coupon payload."""

    coupon_id: Id = arg("The new coupon's id (no '#': those are the campaigns' own).")
    campaign: Id = arg("The active campaign (effect coupon) it belongs to.")
    value: Amount = arg("Its discount in minor units of the currency (at most the campaign's).")
    currency: Text = arg("Its currency: the campaign's coupon currency.")
    expires_at_ms: Int = arg("Block time (ms since the epoch) at which it dies.")
    customer: Account = arg("The one customer who may redeem it (64 hex digits); zeros = anyone.", "00" * 32)
    total: Int = arg("Redemptions in all (1 for one customer); each customer redeems it once.", 1)


@dataclass(frozen=True, slots=True)
class RedeemCoupon:
    """A redeem-coupon payload."""

    coupon_id: Id = arg("The coupon to redeem.")
    order_id: Id = arg("Your unpaid order it discounts.")


# --- issue-coupon ----------------------------------------------------------------------------------------


def process_issue_coupon(ctx: TxContext, tx: IssueCoupon) -> list[Event]:
    """Issue coupon ``tx.coupon_id`` of an active coupon campaign, reserving its value from the budget."""
    # Only an issuer or a branch admin issues coupons
    verify_any_role(ctx, "issuer", "branch-admin")
    # The coupon id is usable as a key and on the command line, and is not of the campaigns' own form
    verify_id("coupon id", tx.coupon_id)
    verify_rule("#" not in tx.coupon_id, reasons.INVALID_ID,
                f"coupon id {tx.coupon_id!r} holds '#'; those ids are the campaigns' own")
    # The id is new: an issued coupon is never redefined
    verify_rule(get_coupon(ctx.state, tx.coupon_id) is None, reasons.COUPON_EXISTS,
                f"coupon {tx.coupon_id!r} already exists")
    # The campaign exists (governance decided it), is active now, and its effect is a coupon
    campaign = get_campaign(ctx.state, tx.campaign)
    if campaign is None:
        raise TxFailure(reasons.UNKNOWN_CAMPAIGN, f"campaign {tx.campaign[:80]!r} was never decided")
    verify_rule(not campaign.is_over(ctx.timestamp_ms) and campaign.starts_at_ms <= ctx.timestamp_ms,
                reasons.CAMPAIGN_NOT_ACTIVE, f"campaign {tx.campaign!r} runs {campaign.starts_at_ms}.."
                f"{campaign.ends_at_ms or 'no end'} (ended at {campaign.ended_at_ms}); the block time is "
                f"{ctx.timestamp_ms}")
    verify_rule(campaign.effect == "coupon", reasons.CAMPAIGN_WRONG_EFFECT,
                f"campaign {tx.campaign!r} has effect {campaign.effect!r}; expected 'coupon'")
    # A branch admin issues only for a campaign of their own branch (or of any branch)
    if campaign.branch and not has_role(ctx.state, "issuer", ctx.sender):
        verify_own_branch(ctx, campaign.branch, f"campaign {tx.campaign!r}")
    # The value is positive and at most the campaign's; the count is positive, and 1 for one customer
    personal = tx.customer != ANYONE
    verify_rule(0 < tx.value <= campaign.amount and tx.total > 0 and (tx.total == 1 or not personal),
                reasons.INVALID_COUPON, f"value {tx.value}, total {tx.total}; expected a value of 1.."
                f"{campaign.amount} and a total above 0 (1 for a coupon of one customer)")
    # It is in the campaign's currency
    verify_rule(tx.currency == campaign.coupon_currency, reasons.COUPON_WRONG_CURRENCY,
                f"coupon currency {tx.currency[:20]!r}; campaign {tx.campaign!r} issues {campaign.coupon_currency}")
    # It expires after this block and within the campaign's coupon lifetime
    latest = ctx.timestamp_ms + campaign.coupon_lifetime_ms
    verify_rule(ctx.timestamp_ms < tx.expires_at_ms <= latest, reasons.INVALID_COUPON,
                f"expires at {tx.expires_at_ms}; expected after the block time {ctx.timestamp_ms} and at most {latest}")
    # A coupon for one customer names a registered customer
    if personal:
        verify_customer(ctx, tx.customer)
    # The campaign's budget covers every redemption
    cost = tx.value * tx.total
    verify_rule(cost <= campaign.remaining, reasons.CAMPAIGN_BUDGET_EXHAUSTED,
                f"{tx.total} × {tx.value} = {cost}; campaign {tx.campaign!r} has {campaign.remaining} left")

    set_campaign(ctx.state, tx.campaign, replace(campaign, spent=campaign.spent + cost))
    set_coupon(ctx.state, tx.coupon_id, Coupon(tx.campaign, tx.value, tx.currency, tx.expires_at_ms, tx.customer,
                                               tx.total, 0, ctx.sender, get_branch_of(ctx.state, ctx.sender),
                                               ctx.timestamp_ms))
    return [CouponIssued(tx.coupon_id, tx.campaign, tx.value, tx.currency, tx.expires_at_ms, tx.customer, tx.total)]


# --- redeem-coupon ---------------------------------------------------------------------------------------


def process_redeem_coupon(ctx: TxContext, tx: RedeemCoupon) -> list[Event]:
    """Apply coupon ``tx.coupon_id`` as a discount on the sender's unpaid order ``tx.order_id``."""
    # Only a registered customer redeems coupons
    verify_customer(ctx, ctx.sender)
    # A frozen account cannot redeem
    verify_not_frozen(ctx, ctx.sender)
    # The coupon exists
    coupon = get_coupon(ctx.state, tx.coupon_id)
    if coupon is None:
        raise TxFailure(reasons.UNKNOWN_COUPON, f"coupon {tx.coupon_id[:80]!r} was never issued")
    # It is for anyone, or for the sender
    verify_rule(coupon.customer in (ANYONE, ctx.sender), reasons.NOT_COUPON_CUSTOMER,
                f"coupon {tx.coupon_id!r} is for another customer, not {ctx.sender.hex()[:16]}…")
    # It has not expired at this block's time
    verify_rule(ctx.timestamp_ms < coupon.expires_at_ms, reasons.COUPON_EXPIRED,
                f"coupon {tx.coupon_id!r} expired at {coupon.expires_at_ms}; the block time is {ctx.timestamp_ms}")
    # Redemptions are left
    verify_rule(coupon.redeemed < coupon.total, reasons.COUPON_EXHAUSTED,
                f"coupon {tx.coupon_id!r} was redeemed {coupon.redeemed} of {coupon.total} times")
    # The customer has not redeemed it yet (once per customer)
    uses = get_coupon_uses(ctx.state, ctx.sender, tx.coupon_id)
    verify_rule(uses == 0, reasons.COUPON_LIMIT_REACHED, f"customer already redeemed {tx.coupon_id!r}; a coupon "
                                                         "is redeemed once per customer")
    # The order exists, is the customer's and is in the coupon's currency
    order = verify_order(ctx.state, tx.order_id)
    verify_order_customer(tx.order_id, order, ctx.sender)
    verify_rule(order.currency == coupon.currency, reasons.COUPON_WRONG_CURRENCY,
                f"coupon {tx.coupon_id!r} is in {coupon.currency}; order {tx.order_id!r} is in {order.currency}")
    # ... is unpaid and has no coupon yet (ledger.orders)
    events = apply_coupon(ctx, tx.order_id, ctx.sender, coupon.value)

    set_coupon(ctx.state, tx.coupon_id, replace(coupon, redeemed=coupon.redeemed + 1))
    set_record(ctx.state, coupon_use_key(ctx.sender, tx.coupon_id), uses + 1)
    events.append(CouponRedeemed(tx.coupon_id, ctx.sender, tx.order_id, coupon.value))
    return events


SPECS = (
    declare_kind("issue-coupon", IssueCoupon, process_issue_coupon, senders="issuer or branch admin",
                 help="Issue a coupon of an active coupon campaign: value, currency, expiry, one customer or anyone "
                      "up to a count (reserved from the campaign's budget)."),
    declare_kind("redeem-coupon", RedeemCoupon, process_redeem_coupon, senders="customer",
                 help="Redeem a coupon on one of your unpaid orders (customer)."),
)
