"""Campaigns: decided by a quorum of branches, evaluated in the triggering transaction (conditions, limits, budget),
an effect that cannot apply skipped without failing the transaction, ended early by governance, coupons by campaign.

Four branches (quorum 3); staff of branch-1 register customers, create and confirm orders: an order of 10,000 EUR
minor units earns 100 coins at the default policy."""

from __future__ import annotations

import pytest

from ledger.campaigns import MAX_ACTIVE, get_campaign, get_order_bonus
from ledger.coupons import get_coupon
from ledger.state import get_supply
from tests.ledger.governance_world import ADMINS, ALICE, BOB, ROGUE, STAFF_1, STAFF_1B, Gov
from tests.strategies import GENESIS_TIME_MS, key

CAROL = key(61)
EARNED = 100  # on an order of 10,000


def campaign_args(cid="welcome", trigger="order_confirmed", effect="bonus", amount=250, budget=10_000, *,
                  per_customer=1, branch="", currency="", min_amount=0, min_tier="", starts_at_ms=0, ends_at_ms=0,
                  coupon_currency="", coupon_lifetime_ms=0) -> list:
    return [cid, trigger, effect, amount, budget, per_customer, branch, currency, min_amount, min_tier, starts_at_ms,
            ends_at_ms, coupon_currency, coupon_lifetime_ms]


def decide(g: Gov, *args, **kw) -> list:
    return g.decide("campaign", campaign_args(*args, **kw))


def shop(policy: dict | None = None) -> Gov:
    g = Gov(policy)
    for customer in (ALICE, BOB):
        g.ok(STAFF_1, "register-customer", [customer.public_key, 1, b"\x01" * 32])
    return g


def confirm(g: Gov, oid: str, customer=ALICE, amount: int = 10_000, currency: str = "EUR") -> list:
    """Create, pay (in fiat) and confirm an order; return the confirm-order events."""
    g.ok(STAFF_1, "create-order", [oid, customer.public_key, amount, currency, b"\x02" * 32])
    g.ok(customer, "pay-order", [oid, 0])
    g.tick()
    return g.ok(STAFF_1B, "confirm-order", [oid])


def kinds(events: list) -> list[str]:
    return [e[0] for e in events]


def bonus(events: list) -> int:
    return sum(e[2] for e in events if e[0] == "credited" and e[3] == "campaign")


# --- governance ---------------------------------------------------------------------------------------------


def test_rogue_admin_cannot_start_a_campaign_alone():
    g = shop()
    g.ok(ROGUE, "propose-campaign", ["rogue", *campaign_args(amount=100_000, budget=10**9)])
    g.ok(ADMINS[0], "approve-proposal", ["rogue"])  # two branches of the three needed
    assert get_campaign(g.state, "welcome") is None
    assert bonus(confirm(g, "o-1")) == 0 and g.balance(ALICE) == EARNED


def test_a_campaign_decided_by_a_quorum_pays_its_bonus_on_a_confirmed_order_as_events():
    g = shop()
    events = decide(g)
    assert ["proposal_decided", "p-1", "campaign", "campaign_created"] in events
    assert ["campaign_created", "welcome", "order_confirmed", "bonus", 250, 10_000, g.now, 0] in events
    events = confirm(g, "o-1")
    assert kinds(events)[-3:] == ["order_confirmed", "credited", "campaign_applied"]
    assert events[-1] == ["campaign_applied", "welcome", ALICE.public_key, "bonus", 250, "o-1"]
    assert g.balance(ALICE) == EARNED + 250 and get_campaign(g.state, "welcome").spent == 250


def test_a_multiplier_adds_its_percent_of_the_coins_earned():
    g = shop()
    decide(g, "double", effect="multiplier", amount=100)
    assert bonus(confirm(g, "o-1")) == EARNED and g.balance(ALICE) == 2 * EARNED


def test_first_order_pays_on_the_customers_first_confirmed_order_only():
    g = shop()
    decide(g, "first", trigger="first_order", amount=500, per_customer=5)
    assert bonus(confirm(g, "o-1")) == 500
    assert bonus(confirm(g, "o-2")) == 0
    assert bonus(confirm(g, "o-3", customer=BOB)) == 500


def test_registration_and_feedback_trigger_their_campaigns():
    g = shop()
    decide(g, "hello", trigger="registration", amount=40)
    decide(g, "thanks", trigger="feedback", amount=30)
    events = g.ok(STAFF_1, "register-customer", [CAROL.public_key, 1, b"\x01" * 32])
    assert ["campaign_applied", "hello", CAROL.public_key, "bonus", 40, ""] in events
    confirm(g, "o-1")
    events = g.ok(ALICE, "submit-feedback", ["order", "o-1", 5, b"\x03" * 32])
    assert ["campaign_applied", "thanks", ALICE.public_key, "bonus", 30, ""] in events


@pytest.mark.parametrize("condition, order", [
    ({"branch": "branch-2"}, {}),
    ({"currency": "USD"}, {}),
    ({"min_amount": 10_001}, {}),
    ({"min_tier": "gold"}, {}),
    ({"starts_at_ms": GENESIS_TIME_MS + 10**9}, {}),
    ({"ends_at_ms": GENESIS_TIME_MS + 20_000}, {"late": True}),
])
def test_an_order_outside_a_condition_earns_no_bonus(condition, order):
    g = shop({"tier_silver_threshold": 50})  # one order of 10,000 makes a silver customer
    decide(g, **condition)
    if order.get("late"):
        g.tick(20_000)
    assert bonus(confirm(g, "o-1")) == 0 and get_campaign(g.state, "welcome").spent == 0


@pytest.mark.parametrize("condition", [{"branch": "branch-1"}, {"currency": "EUR"}, {"min_amount": 10_000},
                                       {"min_tier": "silver"}, {"ends_at_ms": GENESIS_TIME_MS + 10**9}])
def test_an_order_inside_every_condition_earns_the_bonus(condition):
    g = shop({"tier_silver_threshold": 50})  # the tier counts this order's earnings
    decide(g, **condition)
    assert bonus(confirm(g, "o-1")) == 250


def test_customer_who_orders_again_and_again_gets_the_bonus_only_per_customer_times():
    g = shop()
    decide(g, per_customer=2)
    assert [bonus(confirm(g, f"o-{i}")) for i in range(3)] == [250, 250, 0]


def test_a_spent_budget_stops_the_campaign_and_it_leaves_the_active_list():
    g = shop()
    decide(g, budget=500)
    assert bonus(confirm(g, "o-1")) == 250 and bonus(confirm(g, "o-2", customer=BOB)) == 250
    g.ok(STAFF_1, "register-customer", [CAROL.public_key, 1, b"\x01" * 32])
    events = confirm(g, "o-3", customer=CAROL)
    assert bonus(events) == 0 and ["campaign_ended", "welcome", "exhausted"] in events
    assert get_campaign(g.state, "welcome").ended_at_ms and get_supply(g.state) == 3 * EARNED + 500


def test_a_multiplier_beyond_the_budget_left_is_skipped_and_the_order_still_confirmed():
    g = shop()
    decide(g, "double", effect="multiplier", amount=100, budget=150)
    confirm(g, "o-1")
    events = confirm(g, "o-2", customer=BOB)
    assert ["campaign_skipped", "double", BOB.public_key, "campaign_budget_exhausted"] in events
    assert "order_confirmed" in kinds(events) and g.balance(BOB) == EARNED


def test_a_bonus_above_the_supply_cap_is_skipped_not_failing_the_confirmation():
    g = shop({"mint_cap": 150})
    decide(g)
    events = confirm(g, "o-1")
    assert ["campaign_skipped", "welcome", ALICE.public_key, "mint_cap_exceeded"] in events
    assert "order_confirmed" in kinds(events) and g.balance(ALICE) == EARNED and get_supply(g.state) == EARNED
    assert get_campaign(g.state, "welcome").spent == 0 and get_order_bonus(g.state, "o-1") == 0


def test_campaigns_apply_in_id_order_in_the_same_transaction():
    g = shop()
    decide(g, "b-second", amount=20)
    decide(g, "a-first", amount=10)
    applied = [e[1] for e in confirm(g, "o-1") if e[0] == "campaign_applied"]
    assert applied == ["a-first", "b-second"] and g.balance(ALICE) == EARNED + 30


def test_governance_ends_a_campaign_early():
    g = shop()
    decide(g)
    events = g.decide("end-campaign", ["welcome"])
    assert ["campaign_ended", "welcome", "governance"] in events
    assert bonus(confirm(g, "o-1")) == 0
    assert g.refused(ADMINS[0], "propose-end-campaign", ["again", "welcome"]) == "campaign_not_active"
    assert g.refused(ADMINS[0], "propose-end-campaign", ["nothing", "no-such"]) == "unknown_campaign"


@pytest.mark.parametrize("change, reason", [
    ({"trigger": "birthday"}, "invalid_campaign"),
    ({"effect": "cash"}, "invalid_campaign"),
    ({"amount": 0}, "invalid_campaign"),
    ({"budget": 0}, "invalid_campaign"),
    ({"amount": 20_000}, "invalid_campaign"),  # one bonus above the whole budget
    ({"effect": "multiplier", "amount": 1_001}, "invalid_campaign"),
    ({"effect": "multiplier", "trigger": "registration"}, "invalid_campaign"),
    ({"per_customer": 0}, "invalid_campaign"),
    ({"branch": "branch-99"}, "unknown_branch"),
    ({"currency": "euro"}, "invalid_campaign"),
    ({"min_amount": -1}, "invalid_campaign"),
    ({"min_tier": "diamond"}, "invalid_campaign"),
    ({"trigger": "registration", "min_amount": 5}, "invalid_campaign"),
    ({"ends_at_ms": GENESIS_TIME_MS}, "invalid_campaign"),
    ({"starts_at_ms": GENESIS_TIME_MS + 10**6, "ends_at_ms": GENESIS_TIME_MS + 10**5}, "invalid_campaign"),
    ({"effect": "coupon"}, "invalid_campaign"),  # no coupon currency or lifetime
    ({"coupon_currency": "EUR"}, "invalid_campaign"),  # a bonus takes none
    ({"cid": "a#1"}, "invalid_campaign"),
    ({"cid": "x" * 41}, "invalid_campaign"),
    ({"cid": " x"}, "invalid_id"),
])
def test_a_campaign_with_an_invalid_field_is_refused_with_its_reason(change, reason):
    g = shop()
    assert g.refused(ADMINS[0], "propose-campaign", ["p", *campaign_args(**change)]) == reason


def test_a_campaign_id_is_never_reused():
    g = shop()
    decide(g)
    assert g.refused(ADMINS[0], "propose-campaign", ["p", *campaign_args()]) == "campaign_exists"


def test_at_most_max_active_campaigns_run_so_every_trigger_costs_bounded_work():
    g = shop()
    for i in range(MAX_ACTIVE):
        decide(g, f"c{i:02}", amount=1)
    assert g.refused(ADMINS[0], "propose-campaign", ["one-more", *campaign_args("extra")]) == "too_many_campaigns"
    g.decide("end-campaign", ["c00"])
    decide(g, "extra")
    assert bonus(confirm(g, "o-1")) == MAX_ACTIVE - 1 + 250


# --- coupons by campaign ------------------------------------------------------------------------------------


def test_a_coupon_effect_gives_the_customer_a_personal_coupon_for_the_next_order():
    g = shop()
    decide(g, "next-time", trigger="first_order", effect="coupon", amount=700, coupon_currency="EUR",
           coupon_lifetime_ms=60_000)
    events = confirm(g, "o-1")
    assert ["campaign_applied", "next-time", ALICE.public_key, "coupon", 700, "next-time#1"] in events
    coupon = get_coupon(g.state, "next-time#1")
    assert (coupon.customer, coupon.value, coupon.currency, coupon.total) == (ALICE.public_key, 700, "EUR", 1)
    assert coupon.expires_at_ms == g.now + 60_000
    g.ok(STAFF_1, "create-order", ["o-2", ALICE.public_key, 5_000, "EUR", b"\x02" * 32])
    g.ok(STAFF_1, "create-order", ["o-3", BOB.public_key, 5_000, "EUR", b"\x02" * 32])
    assert g.refused(BOB, "redeem-coupon", ["next-time#1", "o-3"]) == "not_coupon_customer"
    assert ["coupon_applied", "o-2", ALICE.public_key, 700] in g.ok(ALICE, "redeem-coupon", ["next-time#1", "o-2"])


def test_customer_who_refunds_the_bonus_order_gives_the_bonus_back():
    g = shop()
    decide(g)
    confirm(g, "o-1")
    events = g.ok(ALICE, "request-refund", ["o-1", b"\x04" * 32])
    assert g.balance(ALICE) == 0 and get_order_bonus(g.state, "o-1") == 0
    assert sum(e[2] for e in events if e[0] == "clawed_back") == EARNED + 250
