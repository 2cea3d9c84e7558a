"""Order kinds: ``create-order``, ``pay-order``, ``confirm-order``, ``request-refund``.

Theory of operation
-------------------
Separation of duties: staff act only on orders of their own branch (an order belongs to the branch of the
staff member who created it) and never confirm their own order (``wrong_branch``, ``self_dealing``).
Staff create an order for a registered customer (``ledger.orders`` holds the record and its life cycle)
in the base currency or one on the policy list with a fresh FX rate (``ledger.fx``); the order keeps that
rate and its value in base-currency minor units. The customer pays it once: up to ``max_redeem_share_bp``
of the amount due (after any coupon, in base units) in coins, valued at ``coin_value_minor`` base minor
units each, and the rest in fiat of the order's currency (recorded, not moved: fiat lives outside the
chain). Staff confirm they received the fiat, which earns
``floor(fiat_paid_base * earn_rate_bp * tier_multiplier_pct / 1_000_000)`` coins — one floor over the whole
product, so no rounding step favours anyone. A refund is checked by rule (inside the window, once, the
customer not frozen) and executes at once: the coin lots paid come back with their ORIGINAL expiry (a lot
already dead is swept at once), the coins earned are clawed back and what the customer no longer holds of
them becomes a debt (``ledger.debt``), and the fiat is refunded only if staff had confirmed receiving it
(else ``fiat_refund_withheld``). Coins move only through ``ledger.lots`` (lots, expiry, supply, debt);
limits are ``ledger.limits``.

payloads:
    create-order   [order_id: str, customer: bin32, fiat_amount: int, currency: str, items_hash: bin32]
    pay-order      [order_id: str, coins: int]
    confirm-order  [order_id: str]
    request-refund [order_id: str, reason_hash: bin32]   (the reason text is kept off chain)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ledger import campaigns, customers, debt, fx, limits, lots, reasons
from ledger.events import Event, FiatRefundWithheld, OrderConfirmed, OrderCreated, OrderPaid, OrderRefunded
from ledger.orders import Order, get_order, set_order, verify_id, verify_order, verify_order_customer
from ledger.process.common import (
    MAX_MEMO_CHARS, TxContext, get_policy_value, verify_not_self, verify_own_branch, verify_positive_amount,
    verify_role, verify_rule,
)
from ledger.process.payload import MAX_AMOUNT, Account, Amount, ContentHash, Id, Text, arg, declare_kind
from ledger.state import has_role


def verify_text(name: str, text: str) -> None:
    """Raise ``TxFailure(text_too_long)`` if a free-text field would not fit on a receipt."""
    verify_rule(len(text) <= MAX_MEMO_CHARS, reasons.TEXT_TOO_LONG,
                f"{name} has {len(text)} characters; at most {MAX_MEMO_CHARS} are allowed")


def is_staff(ctx: TxContext) -> bool:
    """True iff the sender holds the staff role."""
    return has_role(ctx.state, "staff", ctx.sender)


# --- create-order ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateOrder:
    """A create-order payload."""

    order_id: Id = arg("The new order's id.")
    customer: Account = arg("The registered customer's account id (64 hex digits).")
    fiat_amount: Amount = arg("The amount in fiat minor units (cents).")
    currency: Text = arg("ISO 4217 code: the base currency or one on the policy list with a fresh FX rate.", "EUR")
    items_hash: ContentHash = arg("The order's items", "")


def process_create_order(ctx: TxContext, tx: CreateOrder) -> list[Event]:
    """Record a new unpaid order for a registered customer; raise ``TxFailure`` if a rule forbids it."""
    # Only staff create orders
    verify_role(ctx, "staff")
    # The order id is usable as a key
    verify_id("order id", tx.order_id)
    # It was never used before
    verify_rule(get_order(ctx.state, tx.order_id) is None, reasons.ORDER_EXISTS,
                f"order {tx.order_id!r} already exists; expected a new order id")
    # The amount is positive
    verify_positive_amount(tx.fiat_amount)
    # The currency is an ISO 4217 code that the policy accepts
    fx.verify_accepted(ctx, tx.currency)
    # ... with an FX rate treasury set recently enough (the base currency is worth itself)
    rate = fx.get_fresh_rate(ctx, tx.currency)
    # The value in the base currency stays within what any amount may be
    base_amount = fx.compute_base(tx.fiat_amount, rate)
    verify_rule(base_amount <= MAX_AMOUNT, reasons.INVALID_AMOUNT,
                f"{tx.fiat_amount} {tx.currency} is {base_amount} base minor units; at most {MAX_AMOUNT}")
    # The customer is registered
    customers.verify_customer(ctx, tx.customer)

    branch = customers.get_branch_of(ctx.state, ctx.sender)
    set_order(ctx.state, tx.order_id, Order(tx.customer, ctx.sender, branch, tx.fiat_amount, tx.currency,
                                            tx.items_hash, ctx.timestamp_ms, fx_rate=rate, base_amount=base_amount))
    return [OrderCreated(tx.order_id, tx.customer, tx.fiat_amount, tx.currency, branch)]


# --- pay-order -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PayOrder:
    """A pay-order payload."""

    order_id: Id = arg("Your order.")
    coins: Amount = arg("Coins to pay with (up to the policy share); the rest is fiat.", 0)


def get_max_redeem_coins(ctx: TxContext, order: Order) -> int:
    """Most coins the order's amount due may be paid with: the policy share of its base-currency value,
    converted at the coin's value (base minor units per coin)."""
    share_bp, coin_value = get_policy_value(ctx, "max_redeem_share_bp"), get_policy_value(ctx, "coin_value_minor")
    if coin_value <= 0:  # a policy that gives coins no value lets none be redeemed
        return 0
    return order.amount_due_base * min(share_bp, 10_000) // (10_000 * coin_value)


def compute_fiat_paid(order: Order, coins: int, coin_value: int) -> int:
    """The fiat part, in the order's currency: the amount due less what the coins are worth in that currency
    (floored: a coin is never worth more than its base value). Never below 0 for coins within the share."""
    return order.amount_due - coins * coin_value * fx.FX_UNIT // order.fx_rate


def process_pay_order(ctx: TxContext, tx: PayOrder) -> list[Event]:
    """Pay an order with up to the policy share in coins, the rest recorded as fiat; raise ``TxFailure``."""
    # The order exists
    order = verify_order(ctx.state, tx.order_id)
    # It belongs to the sender
    verify_order_customer(tx.order_id, order, ctx.sender)
    # It is not paid yet
    verify_rule(not order.paid_at, reasons.ALREADY_PAID,
                f"order {tx.order_id!r} was paid at {order.paid_at}; expected an unpaid order")
    # The coin part is not negative
    verify_rule(tx.coins >= 0, reasons.INVALID_AMOUNT, f"coins is {tx.coins}; expected 0 or more")
    # The coin part is within the policy's share of the amount due
    most = get_max_redeem_coins(ctx, order)
    verify_rule(tx.coins <= most, reasons.REDEEM_SHARE_EXCEEDED,
                f"{tx.coins} coins offered; at most {most} may pay an amount due of {order.amount_due} "
                f"{order.currency}")
    # A frozen account cannot pay
    limits.verify_not_frozen(ctx, ctx.sender)
    events: list[Event] = []
    paid_lots: list[lots.Lot] = []
    if tx.coins:
        # Redeeming counts against the daily outflow limit
        limits.verify_outflow(ctx, ctx.sender, tx.coins)
        # The customer owes no debt and holds the coins (in_debt, insufficient_balance); the lots are kept
        paid_lots, spent = lots.take(ctx, ctx.sender, tx.coins, f"order:{tx.order_id}")
        events += spent

    fiat_paid = compute_fiat_paid(order, tx.coins, get_policy_value(ctx, "coin_value_minor"))
    set_order(ctx.state, tx.order_id, replace(order, coins_paid=tx.coins, fiat_paid=fiat_paid,
                                              paid_at=ctx.timestamp_ms, paid_lots=tuple(paid_lots)))
    return events + [OrderPaid(tx.order_id, ctx.sender, tx.coins, fiat_paid)]


# --- confirm-order ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfirmOrder:
    """A confirm-order payload."""

    order_id: Id = arg("The paid order.")


def compute_earned(fiat_paid: int, earn_rate_bp: int, multiplier_pct: int) -> int:
    """Coins earned on ``fiat_paid``: floor(fiat × rate_bp / 10_000 × multiplier_pct / 100), one floor."""
    return fiat_paid * earn_rate_bp * multiplier_pct // 1_000_000


def process_confirm_order(ctx: TxContext, tx: ConfirmOrder) -> list[Event]:
    """Staff confirm they received the order's fiat; credit the coins it earns (on the fiat part's base value)."""
    # Only staff confirm orders
    verify_role(ctx, "staff")
    # The order exists
    order = verify_order(ctx.state, tx.order_id)
    # ... in the staff member's own branch
    verify_own_branch(ctx, order.branch, f"order {tx.order_id!r}")
    # ... and not their own order (confirming earns the customer coins)
    verify_not_self(ctx, order.customer, "confirm an order")
    # It is paid
    verify_rule(bool(order.paid_at), reasons.NOT_PAID, f"order {tx.order_id!r} is unpaid; expected a paid order")
    # It was not refunded
    verify_rule(not order.refunded_at, reasons.ALREADY_REFUNDED,
                f"order {tx.order_id!r} was refunded at {order.refunded_at}; a refunded order earns nothing")
    # It was not confirmed before
    verify_rule(not order.confirmed_at, reasons.ALREADY_CONFIRMED,
                f"order {tx.order_id!r} was confirmed at {order.confirmed_at}; coins are earned once")

    earned = compute_earned(order.to_base(order.fiat_paid), get_policy_value(ctx, "earn_rate_bp"),
                            customers.get_tier_multiplier_pct(ctx, order.customer))
    events = lots.credit(ctx, order.customer, earned, "earn") if earned else []
    set_order(ctx.state, tx.order_id, replace(order, confirmed_at=ctx.timestamp_ms, earned=earned))
    events.append(OrderConfirmed(tx.order_id, order.customer, earned))
    return events + campaigns.process_trigger(ctx, "order_confirmed", order.customer, branch=order.branch,
                                              currency=order.currency, amount_base=order.base_amount, earned=earned,
                                              order_id=tx.order_id)


# --- request-refund --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestRefund:
    """A request-refund payload."""

    order_id: Id = arg("The paid order.")
    reason_hash: ContentHash = arg("Why (the text stays off chain; its commitment goes on chain).", "")


def process_request_refund(ctx: TxContext, tx: RequestRefund) -> list[Event]:
    """Refund a paid order at once (coins back with their expiry, earned coins clawed back, the shortfall a
    debt, confirmed fiat back); raise ``TxFailure`` if refused."""
    # The order exists
    order = verify_order(ctx.state, tx.order_id)
    # The customer asks, or staff of the order's branch ask on their behalf
    if ctx.sender != order.customer:
        if not is_staff(ctx):
            verify_order_customer(tx.order_id, order, ctx.sender)
        verify_own_branch(ctx, order.branch, f"order {tx.order_id!r}")
    # The order was paid
    verify_rule(bool(order.paid_at), reasons.NOT_PAID, f"order {tx.order_id!r} is unpaid; only a paid order "
                                                       "can be refunded")
    # It was not refunded before
    verify_rule(not order.refunded_at, reasons.ALREADY_REFUNDED,
                f"order {tx.order_id!r} was refunded at {order.refunded_at}; a refund is paid once")
    # The request is inside the refund window, counted from payment in block time
    window = get_policy_value(ctx, "refund_window_ms")
    closes = order.paid_at + window
    verify_rule(ctx.timestamp_ms <= closes, reasons.REFUND_WINDOW_CLOSED,
                f"order {tx.order_id!r} was paid at {order.paid_at}; its refund window of {window} ms closed at "
                f"{closes}, the request came at {ctx.timestamp_ms}")
    # A frozen customer is not refunded until unfrozen
    limits.verify_not_frozen(ctx, order.customer)
    # A large fiat payment's refund needs the customer's second-factor signature (threshold in base units)
    threshold = get_policy_value(ctx, "refund_second_factor_threshold")
    if order.to_base(order.fiat_paid) > threshold:
        limits.verify_second_factor(ctx, order.customer, f"a refund of {order.fiat_paid} {order.currency} "
                                                          f"(above {threshold} base minor units)")

    purpose = f"refund:{tx.order_id}"
    # The coins paid come back as the very lots paid, with their original expiry (dead ones expire at once)
    events = lots.return_lots(ctx, order.customer, order.paid_lots)
    # The coins earned are taken back; what the customer no longer holds becomes a debt
    clawed = 0
    if order.earned:
        clawed, clawback_events = lots.clawback(ctx, order.customer, order.earned, purpose)
        events += clawback_events
    events += debt.process_incur(ctx, order.customer, order.earned - clawed, purpose)
    # Fiat comes back only if staff confirmed receiving it
    fiat_refunded = order.fiat_paid if order.confirmed_at else 0
    if order.fiat_paid and not order.confirmed_at:
        events.append(FiatRefundWithheld(tx.order_id, order.customer, order.fiat_paid))
    events += campaigns.process_refund(ctx, tx.order_id, order.customer)  # a campaign's bonus on it goes back too
    set_order(ctx.state, tx.order_id, replace(order, refunded_at=ctx.timestamp_ms, coins_returned=order.coins_paid,
                                              clawed_back=clawed, fiat_refunded=fiat_refunded,
                                              debt_incurred=order.earned - clawed))
    return events + [OrderRefunded(tx.order_id, order.customer, order.coins_paid, clawed, fiat_refunded)]


SPECS = (
    declare_kind("create-order", CreateOrder, process_create_order, senders="staff",
                 help="Create an order for a registered customer (staff)."),
    declare_kind("pay-order", PayOrder, process_pay_order, senders="the order's customer",
                 help="Pay your order: COINS in coins (up to the policy share), the rest in fiat (customer)."),
    declare_kind("confirm-order", ConfirmOrder, process_confirm_order, senders="staff",
                 help="Confirm you received a paid order's fiat; the customer earns coins (staff)."),
    declare_kind("request-refund", RequestRefund, process_request_refund, senders="the order's customer or staff",
                 help="Refund an order inside the refund window (customer or staff)."),
)
