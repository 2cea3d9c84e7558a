"""Campaigns: decided by governance, evaluated deterministically inside the transaction that triggers them.

Theory of operation
-------------------
A campaign is a governance decision (``propose-campaign``, ``ledger.process.governance``): nobody creates
one alone. It names

* a **trigger**: ``order_confirmed`` (staff confirm an order), ``first_order`` (the customer's first confirmed
  order), ``feedback`` (the customer's rated feedback) or ``registration`` (staff register the customer);
* **conditions**: the branch (or any), the currency (or any), a minimum amount in base-currency minor units,
  a minimum tier (or any), and a date range ``starts_at_ms`` <= block time < ``ends_at_ms`` (0 = no end);
* **limits**: how many times one customer benefits, and a total budget;
* an **effect**: ``bonus`` (``amount`` coins), ``multiplier`` (``amount`` percent of the coins the order
  earned, on top) or ``coupon`` (a personal coupon of ``amount`` minor units of ``coupon_currency``, living
  ``coupon_lifetime_ms``). The budget is spent in the effect's unit: coins for bonus and multiplier, coupon
  value for coupons (an ``issue-coupon`` naming the campaign reserves ``value × total`` of it).

``process_trigger`` is called by the triggering kind (confirm-order, register-customer, submit-feedback). It
reads the active campaigns of that trigger in id order (the index ``b"m\\x01" + trigger + id`` holds at most
``MAX_ACTIVE`` entries, so the work per transaction is bounded), checks each one's conditions, the customer's
count and the budget left, and applies the effect. An effect that cannot apply (budget left too small, the
supply cap, a frozen customer) never fails the triggering transaction: its writes are rolled back to a
checkpoint and ``campaign_skipped`` says why. A campaign past its end date or whose budget cannot pay one
more effect leaves the index (``campaign_ended``, why ``over`` / ``exhausted``) when next evaluated or when a
new campaign is decided; governance can end one early (``propose-end-campaign``, why ``governance``).

Bonus coins paid on an order are remembered per order (``b"m\\x04" + order_id``) so that refunding the order
takes them back (``process_refund``).

Keys (``b"m"``): ``\\x00 + id`` -> the campaign record (``Campaign.to_list``); ``\\x01 + trigger code(1) + id``
-> P(1) while active; ``\\x02 + customer(32) + id`` -> P(times applied to that customer); ``\\x03 +
customer(32)`` -> P(1) once the customer had a confirmed order (for ``first_order``); ``\\x04 + order_id`` ->
P(bonus coins credited on that order).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, replace
from typing import Any

from ledger import lots, reasons
from ledger.context import TxContext, verify_rule
from ledger.coupons import CAMPAIGN_ISSUER, Coupon, set_coupon
from ledger.customers import TIERS, get_tier
from ledger.errors import SchemaError
from ledger.events import CampaignApplied, CampaignCreated, CampaignEnded, CampaignSkipped, CouponIssued, Event
from ledger.orders import verify_id
from ledger.reasons import TxFailure
from ledger.state import PREFIX_CAMPAIGN, StateReader, get_record, set_record
from ledger.validator_sets import get_branches

TRIGGERS = ("order_confirmed", "first_order", "feedback", "registration")  # index = the trigger's key code
EFFECTS = ("bonus", "multiplier", "coupon")
ORDER_TRIGGERS = ("order_confirmed", "first_order")
MAX_ACTIVE = 32  # active campaigns (all triggers): bounds the work of every triggering transaction
MAX_CAMPAIGN_ID_BYTES = 40  # leaves room for "#<n>" in the ids of the coupons it issues
MAX_MULTIPLIER_PCT = 1_000
MAX_PER_CUSTOMER = 1_000
MAX_COUPON_LIFETIME_MS = 5 * 365 * 86_400_000
_RECORD, _ACTIVE, _USES, _FIRST, _ORDER_BONUS = b"\x00", b"\x01", b"\x02", b"\x03", b"\x04"


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign as stored: what triggers it, its conditions, limits and effect, and what it has spent."""

    trigger: str
    effect: str
    amount: int  # bonus coins | multiplier percent | coupon value (minor units of coupon_currency)
    budget: int
    per_customer: int
    branch: str  # "" = any
    currency: str  # "" = any
    min_amount: int  # base-currency minor units (0 = none)
    min_tier: str  # "" = any
    starts_at_ms: int
    ends_at_ms: int  # 0 = no end date
    coupon_currency: str  # coupon effect only
    coupon_lifetime_ms: int  # coupon effect only
    spent: int = 0  # of the budget
    applied: int = 0  # effects applied (a personal coupon's id is "<id>#<applied>")
    created_height: int = 0
    ended_at_ms: int = 0  # 0 = not ended

    def to_list(self) -> list:
        return list(astuple(self))

    @property
    def remaining(self) -> int:
        return self.budget - self.spent

    @property
    def min_cost(self) -> int:
        """The least one effect can cost: below it the campaign can never apply again."""
        return 1 if self.effect == "multiplier" else self.amount

    def is_over(self, now_ms: int) -> bool:
        return bool(self.ended_at_ms) or (self.ends_at_ms != 0 and now_ms >= self.ends_at_ms)

    def is_running(self, now_ms: int) -> bool:
        """Not ended, inside its dates, and able to pay at least one more effect."""
        return not self.is_over(now_ms) and self.starts_at_ms <= now_ms and self.remaining >= self.min_cost


_TYPES = tuple(type(v) for v in Campaign("", "", 0, 0, 0, "", "", 0, "", 0, 0, "", 0).to_list())


# --- state -------------------------------------------------------------------------------------------------


def campaign_key(campaign_id: str) -> bytes:
    return PREFIX_CAMPAIGN + _RECORD + campaign_id.encode()


def _active_key(trigger: str, campaign_id: str) -> bytes:
    return PREFIX_CAMPAIGN + _ACTIVE + bytes([TRIGGERS.index(trigger)]) + campaign_id.encode()


def _uses_key(customer: bytes, campaign_id: str) -> bytes:
    return PREFIX_CAMPAIGN + _USES + customer + campaign_id.encode()


def get_campaign(state: StateReader, campaign_id: str) -> Campaign | None:
    """The campaign ``campaign_id`` (None: governance never decided one)."""
    if not 0 < len(campaign_id.encode()) <= MAX_CAMPAIGN_ID_BYTES:
        return None
    value = get_record(state, campaign_key(campaign_id))
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == len(_TYPES)
            and all(type(v) is t for v, t in zip(value, _TYPES))):
        raise SchemaError(f"state campaign {campaign_id!r}: expected {len(_TYPES)} typed fields")
    return Campaign(*value)


def set_campaign(state: Any, campaign_id: str, campaign: Campaign) -> None:
    set_record(state, campaign_key(campaign_id), campaign.to_list())


def get_active_ids(state: StateReader, trigger: str | None = None) -> list[str]:
    """Ids in the active index (of one trigger, or all), in key order: trigger code, then id."""
    start = PREFIX_CAMPAIGN + _ACTIVE + (b"" if trigger is None else bytes([TRIGGERS.index(trigger)]))
    stop = start[:-1] + bytes([start[-1] + 1])
    skip = len(PREFIX_CAMPAIGN + _ACTIVE) + 1
    return [key[skip:].decode() for key, _ in state.scan(start, stop, MAX_ACTIVE + 1)]


def get_uses(state: StateReader, customer: bytes, campaign_id: str) -> int:
    """How many times the campaign's effect applied to ``customer``."""
    return get_record(state, _uses_key(customer, campaign_id)) or 0  # type: ignore[return-value]


def get_order_bonus(state: StateReader, order_id: str) -> int:
    """Campaign coins credited on the confirmation of ``order_id`` (taken back if it is refunded)."""
    return get_record(state, PREFIX_CAMPAIGN + _ORDER_BONUS + order_id.encode()) or 0  # type: ignore[return-value]


def _end(ctx: TxContext, campaign_id: str, campaign: Campaign, why: str) -> list[Event]:
    set_campaign(ctx.state, campaign_id, replace(campaign, ended_at_ms=ctx.timestamp_ms))
    set_record(ctx.state, _active_key(campaign.trigger, campaign_id), None)
    return [CampaignEnded(campaign_id, why)]


def process_prune(ctx: TxContext, trigger: str | None = None) -> list[Event]:
    """Take campaigns that can never apply again (past their end, budget spent) out of the active index."""
    events: list[Event] = []
    for campaign_id in get_active_ids(ctx.state, trigger):
        campaign = get_campaign(ctx.state, campaign_id)
        if campaign is not None and campaign.is_over(ctx.timestamp_ms):
            events += _end(ctx, campaign_id, campaign, "over")
        elif campaign is not None and campaign.remaining < campaign.min_cost:
            events += _end(ctx, campaign_id, campaign, "exhausted")
    return events


# --- governance: the rules of a new campaign, creating and ending one ---------------------------------------


def _invalid(ok: bool, detail: str) -> None:
    verify_rule(ok, reasons.INVALID_CAMPAIGN, detail)


def _is_currency(code: str) -> bool:
    return len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()


def verify_new_campaign(ctx: TxContext, tx: Any) -> None:
    """Every field of a ``propose-campaign`` is valid and the campaign can be added now (raise ``TxFailure``)."""
    cid = tx.campaign_id
    # The id is usable as a key, short enough for its coupons' ids, and holds no '#'
    verify_id("campaign id", cid)
    _invalid(len(cid.encode()) <= MAX_CAMPAIGN_ID_BYTES and "#" not in cid,
             f"campaign id {cid!r}: expected at most {MAX_CAMPAIGN_ID_BYTES} bytes and no '#'")
    # It is new (a campaign is never redefined)
    verify_rule(get_campaign(ctx.state, cid) is None, reasons.CAMPAIGN_EXISTS, f"campaign {cid!r} already exists")
    # Trigger and effect are known ones
    _invalid(tx.trigger in TRIGGERS, f"trigger {tx.trigger[:40]!r}; expected one of {', '.join(TRIGGERS)}")
    _invalid(tx.effect in EFFECTS, f"effect {tx.effect[:40]!r}; expected one of {', '.join(EFFECTS)}")
    # The effect's amount, the budget and the per-customer limit are positive (a multiplier at most 1000 %)
    _invalid(tx.amount > 0 and tx.budget > 0, f"amount {tx.amount}, budget {tx.budget}; expected both above 0")
    _invalid(tx.effect != "multiplier" or tx.amount <= MAX_MULTIPLIER_PCT,
             f"multiplier {tx.amount} %; expected 1..{MAX_MULTIPLIER_PCT}")
    _invalid(tx.effect == "multiplier" or tx.amount <= tx.budget,
             f"one effect costs {tx.amount}, more than the whole budget {tx.budget}")
    _invalid(0 < tx.per_customer <= MAX_PER_CUSTOMER, f"per-customer limit {tx.per_customer}; expected "
                                                      f"1..{MAX_PER_CUSTOMER}")
    # A multiplier multiplies coins an order earned: only order triggers have any
    _invalid(tx.effect != "multiplier" or tx.trigger in ORDER_TRIGGERS,
             f"a multiplier needs an order trigger ({', '.join(ORDER_TRIGGERS)}); got {tx.trigger!r}")
    # Conditions: an existing branch or any, a currency code or any, an amount >= 0, a tier or any
    branches = get_branches(ctx.state)
    verify_rule(tx.branch == "" or tx.branch in branches, reasons.UNKNOWN_BRANCH,
                f"branch {tx.branch[:80]!r} does not exist; expected '' (any) or one of {', '.join(branches)}")
    _invalid(tx.currency == "" or _is_currency(tx.currency),
             f"currency {tx.currency[:20]!r}; expected '' (any) or three capital letters such as 'EUR'")
    _invalid(tx.min_amount >= 0, f"minimum amount {tx.min_amount}; expected 0 or more")
    _invalid(tx.min_tier in ("", *TIERS), f"minimum tier {tx.min_tier[:40]!r}; expected '' (any) or one of "
                                          f"{', '.join(TIERS)}")
    # Registration has no order: a currency or amount condition would never match
    _invalid(tx.trigger != "registration" or (tx.currency == "" and tx.min_amount == 0),
             "a registration campaign cannot have a currency or minimum amount condition")
    # The dates: a start >= 0, and an end (0 = none) after the start and after this block
    _invalid(tx.starts_at_ms >= 0, f"starts at {tx.starts_at_ms}; expected 0 or a block time")
    _invalid(tx.ends_at_ms == 0 or tx.ends_at_ms > max(tx.starts_at_ms, ctx.timestamp_ms),
             f"ends at {tx.ends_at_ms}; expected 0 (no end) or after its start {tx.starts_at_ms} and after the "
             f"block time {ctx.timestamp_ms}")
    # A coupon effect has a currency and a lifetime; the other effects have neither
    if tx.effect == "coupon":
        _invalid(_is_currency(tx.coupon_currency), f"coupon currency {tx.coupon_currency[:20]!r}; expected three "
                                                   "capital letters such as 'EUR'")
        _invalid(0 < tx.coupon_lifetime_ms <= MAX_COUPON_LIFETIME_MS,
                 f"coupon lifetime {tx.coupon_lifetime_ms} ms; expected 1..{MAX_COUPON_LIFETIME_MS}")
    else:
        _invalid(tx.coupon_currency == "" and tx.coupon_lifetime_ms == 0,
                 f"a {tx.effect} effect takes no coupon currency or lifetime")
    # Room is left: at most MAX_ACTIVE campaigns that can still apply
    live = [c for c in map(lambda i: get_campaign(ctx.state, i), get_active_ids(ctx.state))
            if c is not None and not c.is_over(ctx.timestamp_ms) and c.remaining >= c.min_cost]
    verify_rule(len(live) < MAX_ACTIVE, reasons.TOO_MANY_CAMPAIGNS,
                f"{len(live)} campaigns are active; at most {MAX_ACTIVE}")


def apply_new_campaign(ctx: TxContext, tx: Any) -> list[Event]:
    """Store the campaign and put it in the active index (dead ones leave it first)."""
    pruned = process_prune(ctx)
    starts = tx.starts_at_ms or ctx.timestamp_ms
    campaign = Campaign(tx.trigger, tx.effect, tx.amount, tx.budget, tx.per_customer, tx.branch, tx.currency,
                        tx.min_amount, tx.min_tier, starts, tx.ends_at_ms, tx.coupon_currency,
                        tx.coupon_lifetime_ms, created_height=ctx.height)
    set_campaign(ctx.state, tx.campaign_id, campaign)
    set_record(ctx.state, _active_key(tx.trigger, tx.campaign_id), 1)
    return [CampaignCreated(tx.campaign_id, tx.trigger, tx.effect, tx.amount, tx.budget, starts, tx.ends_at_ms),
            *pruned]


def verify_end_campaign(ctx: TxContext, tx: Any) -> None:
    """The campaign exists and has not ended."""
    campaign = get_campaign(ctx.state, tx.campaign_id)
    if campaign is None:
        raise TxFailure(reasons.UNKNOWN_CAMPAIGN, f"campaign {tx.campaign_id[:80]!r} does not exist")
    verify_rule(not campaign.ended_at_ms, reasons.CAMPAIGN_NOT_ACTIVE,
                f"campaign {tx.campaign_id!r} ended at {campaign.ended_at_ms}")


def apply_end_campaign(ctx: TxContext, tx: Any) -> list[Event]:
    campaign = get_campaign(ctx.state, tx.campaign_id)
    assert campaign is not None  # verify_end_campaign ran in this transaction
    return _end(ctx, tx.campaign_id, campaign, "governance")


# --- evaluation in the triggering transaction ---------------------------------------------------------------


def _matches(campaign: Campaign, customer: bytes, tier: str, branch: str, currency: str, amount_base: int) -> bool:
    return ((not campaign.branch or campaign.branch == branch)
            and (not campaign.currency or campaign.currency == currency)
            and amount_base >= campaign.min_amount
            and (not campaign.min_tier or TIERS.index(tier) >= TIERS.index(campaign.min_tier)))


def _apply(ctx: TxContext, campaign_id: str, campaign: Campaign, customer: bytes, cost: int,
           order_id: str) -> tuple[list[Event], str]:
    """The effect's own writes and events, and its ref (coupon id / order id); raises ``TxFailure``."""
    if campaign.effect == "coupon":
        coupon_id = f"{campaign_id}#{campaign.applied + 1}"
        expires = ctx.timestamp_ms + campaign.coupon_lifetime_ms
        set_coupon(ctx.state, coupon_id, Coupon(campaign_id, cost, campaign.coupon_currency, expires, customer, 1, 0,
                                                CAMPAIGN_ISSUER, campaign.branch, ctx.timestamp_ms))
        return [CouponIssued(coupon_id, campaign_id, cost, campaign.coupon_currency, expires, customer, 1)], coupon_id
    events = lots.credit(ctx, customer, cost, "campaign")
    if order_id:
        key = PREFIX_CAMPAIGN + _ORDER_BONUS + order_id.encode()
        set_record(ctx.state, key, get_order_bonus(ctx.state, order_id) + cost)
    return events, order_id


def _evaluate(ctx: TxContext, trigger: str, customer: bytes, branch: str, currency: str, amount_base: int,
              earned: int, order_id: str) -> list[Event]:
    events = process_prune(ctx, trigger)
    tier = get_tier(ctx.state, customer, ctx.timestamp_ms)
    for campaign_id in get_active_ids(ctx.state, trigger):
        campaign = get_campaign(ctx.state, campaign_id)
        if campaign is None or not campaign.is_running(ctx.timestamp_ms):
            continue  # (not started yet)
        uses = get_uses(ctx.state, customer, campaign_id)
        if uses >= campaign.per_customer or not _matches(campaign, customer, tier, branch, currency, amount_base):
            continue
        cost = earned * campaign.amount // 100 if campaign.effect == "multiplier" else campaign.amount
        if cost <= 0:
            continue  # a multiplier of an order that earned nothing
        if cost > campaign.remaining:
            events.append(CampaignSkipped(campaign_id, customer, reasons.CAMPAIGN_BUDGET_EXHAUSTED.name))
            continue
        mark = ctx.state.checkpoint()
        try:
            applied, ref = _apply(ctx, campaign_id, campaign, customer, cost, order_id)
        except TxFailure as failure:  # the effect cannot apply: skipped, the triggering tx goes on
            ctx.state.rollback(mark)
            events.append(CampaignSkipped(campaign_id, customer, failure.reason.name))
            continue
        set_campaign(ctx.state, campaign_id, replace(campaign, spent=campaign.spent + cost,
                                                     applied=campaign.applied + 1))
        set_record(ctx.state, _uses_key(customer, campaign_id), uses + 1)
        events += [*applied, CampaignApplied(campaign_id, customer, campaign.effect, cost, ref)]
    return events


def process_trigger(ctx: TxContext, trigger: str, customer: bytes, *, branch: str = "", currency: str = "",
                    amount_base: int = 0, earned: int = 0, order_id: str = "") -> list[Event]:
    """Apply every active campaign of ``trigger`` whose conditions and limits hold for ``customer``; return the
    events. ``order_confirmed`` also runs the ``first_order`` campaigns on the customer's first confirmed order.
    Never raises ``TxFailure``: an effect that cannot apply is skipped (``campaign_skipped``)."""
    if trigger not in TRIGGERS or trigger == "first_order":
        raise ValueError(f"campaign trigger {trigger!r}; expected one of {', '.join(TRIGGERS)} but first_order")
    events = _evaluate(ctx, trigger, customer, branch, currency, amount_base, earned, order_id)
    if trigger == "order_confirmed":
        first_key = PREFIX_CAMPAIGN + _FIRST + customer
        if get_record(ctx.state, first_key) is None:
            set_record(ctx.state, first_key, 1)
            events += _evaluate(ctx, "first_order", customer, branch, currency, amount_base, earned, order_id)
    return events


def process_refund(ctx: TxContext, order_id: str, customer: bytes) -> list[Event]:
    """Take back the campaign coins credited on ``order_id`` (never below zero), as a refund of it requires."""
    bonus = get_order_bonus(ctx.state, order_id)
    if not bonus:
        return []
    set_record(ctx.state, PREFIX_CAMPAIGN + _ORDER_BONUS + order_id.encode(), None)
    return lots.clawback(ctx, customer, bonus, f"refund:{order_id}:campaign")[1]
