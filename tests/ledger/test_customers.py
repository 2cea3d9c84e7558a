"""ledger.customers: tiers over a rolling window of earnings (they go down), clawbacks from the newest buckets,
debt, and the VIP earn bonus that confirm-order pays."""

from __future__ import annotations

from ledger.context import DAY_MS
from ledger.state import PREFIX_DEBT
from ledger.customers import (
    TIER_BUCKETS, get_earned, get_tier, get_tier_multiplier_pct, get_window_earned, privilege_key,
    record_clawback, record_earning,
)
from ledger.lots import clawback
from ledger.state import account_record_key, set_record
from ledger import codec
from tests.ledger.flows_world import ALICE, STAFF, World
from tests.strategies import NOW_MS, coin_ctx, coin_state, fund

WINDOW = 120 * DAY_MS  # 12 buckets of 10 days
BUCKET = WINDOW // TIER_BUCKETS
TIERS = {"tier_window_ms": WINDOW, "tier_silver_threshold": 100, "tier_gold_threshold": 500,
         "tier_platinum_threshold": 2_000}


def world(**policy):
    return coin_state({**TIERS, "coin_lifetime_ms": 10 * WINDOW, **policy})


def test_customer_whose_earnings_age_out_of_the_window_goes_down_a_tier():
    state = world()
    fund(state, ALICE, 600, source="earn")
    assert get_tier(state, ALICE.public_key, NOW_MS) == "gold"
    start = NOW_MS // BUCKET * BUCKET
    last_counted = start + TIER_BUCKETS * BUCKET - 1  # the last ms of the 12th bucket counting from the first
    assert get_tier(state, ALICE.public_key, last_counted) == "gold"
    assert get_tier(state, ALICE.public_key, last_counted + 1) == "base"  # never counted longer than the window
    assert get_earned(state, ALICE.public_key) == 600  # the lifetime figure stays


def test_an_earning_counts_for_at_least_eleven_twelfths_of_the_window():
    state = world()
    fund(state, ALICE, 150, source="reward")
    assert get_window_earned(state, ALICE.public_key, NOW_MS + (TIER_BUCKETS - 1) * BUCKET) == 150


def test_buckets_older_than_the_window_are_dropped_at_the_next_write():
    state = world()
    fund(state, ALICE, 100, source="earn")
    later = NOW_MS + WINDOW + BUCKET
    fund(state, ALICE, 7, ts=later, source="earn")
    raw = codec.decode(state.get_state(account_record_key(b"e", ALICE.public_key)))
    assert raw == [107, BUCKET, [[later // BUCKET, 7]]]
    assert get_window_earned(state, ALICE.public_key, later) == 7


def test_clawback_takes_earnings_back_from_the_newest_buckets_first():
    state = world()
    fund(state, ALICE, 300, source="earn")
    fund(state, ALICE, 250, ts=NOW_MS + 5 * BUCKET, source="earn")
    assert get_tier(state, ALICE.public_key, NOW_MS + 5 * BUCKET) == "gold"
    clawback(coin_ctx(state, STAFF, ts=NOW_MS + 5 * BUCKET), ALICE.public_key, 260, "refund:o1")
    assert get_window_earned(state, ALICE.public_key, NOW_MS + 5 * BUCKET) == 290
    assert get_tier(state, ALICE.public_key, NOW_MS + 5 * BUCKET) == "silver"
    # the newest bucket lost its 250 and 10 of the older one went: 290 are left in the first bucket, which is
    # the one to age out first
    assert get_window_earned(state, ALICE.public_key, NOW_MS // BUCKET * BUCKET + TIER_BUCKETS * BUCKET) == 0
    assert get_earned(state, ALICE.public_key) == 290


def test_debt_lowers_the_tier_and_a_debt_repaid_through_record_clawback_keeps_it_right():
    state = world()
    fund(state, ALICE, 600, source="earn")
    set_record(state, PREFIX_DEBT + ALICE.public_key, 200)
    assert get_tier(state, ALICE.public_key, NOW_MS) == "silver"  # 600 - 200
    # a later earning of 150 repays the debt: the repayment is recorded as a clawback, the tier follows
    record_earning(state, ALICE.public_key, 150, NOW_MS)
    record_clawback(state, ALICE.public_key, 150, NOW_MS)
    set_record(state, PREFIX_DEBT + ALICE.public_key, 50)
    assert get_window_earned(state, ALICE.public_key, NOW_MS) - 50 == 550 and \
        get_tier(state, ALICE.public_key, NOW_MS) == "gold"


def test_a_change_of_the_window_rebuckets_the_earnings_by_their_start_time():
    state = world()
    fund(state, ALICE, 120, source="earn")
    state.set_state(b"p" + b"tier_window_ms", codec.encode(WINDOW * 2))
    assert get_window_earned(state, ALICE.public_key, NOW_MS + WINDOW + BUCKET) == 120  # the window doubled
    fund(state, ALICE, 1, ts=NOW_MS + 1, source="earn")
    assert get_window_earned(state, ALICE.public_key, NOW_MS + 1) == 121


def test_vip_customer_earns_the_policy_bonus_on_a_confirmed_order():
    w = World({"privilege_vip_earn_bonus_pct": 10, "earn_rate_bp": 100})
    set_record(w.state, privilege_key(ALICE.public_key, "vip"), w.now + DAY_MS)
    assert get_tier_multiplier_pct(w.ctx(), ALICE.public_key) == 110
    w.confirmed_order(amount=10_000)  # 100 coins at the base tier, +10 points for VIP
    assert w.balance(ALICE) == 110 and w.order("o-1").earned == 110


def test_the_vip_bonus_ends_with_the_privilege():
    w = World({"privilege_vip_earn_bonus_pct": 10})
    set_record(w.state, privilege_key(ALICE.public_key, "vip"), w.now)  # expires at this very ms
    w.confirmed_order(amount=10_000)
    assert w.balance(ALICE) == 100


def test_priority_alone_gives_no_earn_bonus():
    w = World()
    set_record(w.state, privilege_key(ALICE.public_key, "priority"), w.now + DAY_MS)
    assert get_tier_multiplier_pct(w.ctx(), ALICE.public_key) == 100


def test_customer_refunding_an_order_loses_the_tier_it_earned():
    w = World({"tier_silver_threshold": 100})
    w.confirmed_order(amount=20_000)  # 200 coins earned: silver
    assert get_tier(w.state, ALICE.public_key, w.now) == "silver"
    w.ok("request-refund", ALICE, ["o-1", bytes(32)])
    assert get_tier(w.state, ALICE.public_key, w.now) == "base"
