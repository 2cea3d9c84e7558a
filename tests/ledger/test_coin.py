"""ledger.lots, ledger.limits, ledger.customers and the coin view: lots, expiry at the boundary millisecond,
oldest-first spending, transfers keeping expiry, clawback, daily outflow, tiers, privileges and the supply counters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import reasons
from ledger.chain import process_tx
from ledger.context import DAY_MS
from ledger.customers import get_earned, get_tier, get_tier_multiplier_pct, has_privilege, privilege_key
from ledger.limits import get_outflow, verify_outflow, verify_second_factor
from ledger.lots import (
    MAX_LOTS, clawback, compute_add_lot, compute_take_lots, credit, get_coin_totals, get_expiring, get_lots,
    get_spendable, process_move, spend,
)
from ledger.errors import InvalidTransaction
from ledger.events import ClawedBack, Credited, Expired, Spent
from ledger.process import get_kind
from ledger.reasons import TxFailure
from ledger.state import account_record_key, get_balance, get_counter, get_supply, set_record
from ledger.tx import make_tx
from node.reads import compute_account_document
from tests.strategies import (
    ALICE, BOB, CAROL, CHAIN_ID, ISSUER, NOW_MS, SECOND, STAFF, coin_ctx, coin_state, fund, register,
)

LIFE = 10_000  # a short coin lifetime keeps the arithmetic readable


def world(**policy):
    return coin_state({"coin_lifetime_ms": LIFE, **policy})


def supply_is_consistent(state) -> bool:
    """Lots sum to each balance, and supply = minted - expired - burned = the sum of balances."""
    accounts = [k.public_key for k in (ALICE, BOB, CAROL, STAFF)]
    balances = sum(get_balance(state, a) for a in accounts)
    lots_match = all(sum(x for _, x in get_lots(state, a)) == get_balance(state, a) for a in accounts)
    counted = get_counter(state, "minted") - get_counter(state, "expired") - get_counter(state, "burned")
    return lots_match and get_supply(state) == counted == balances


# --- credit ------------------------------------------------------------------------------------------------


def test_credit_creates_a_lot_expiring_one_lifetime_after_the_block_time():
    state = world()
    events = fund(state, ALICE, 70)
    assert events == [Credited(ALICE.public_key, 70, "mint", NOW_MS + LIFE)]
    assert get_lots(state, ALICE.public_key) == [(NOW_MS + LIFE, 70)]
    assert get_balance(state, ALICE.public_key) == 70 == get_supply(state) == get_counter(state, "minted")


def test_earning_sources_count_toward_lifetime_earnings_and_mint_and_compensation_do_not():
    state = world()
    for source in ("earn", "reward", "compensation", "mint", "refund", "coupon"):
        fund(state, ALICE, 10, source=source)
    assert get_earned(state, ALICE.public_key) == 20
    assert get_counter(state, "credited:earn") == 10 and get_counter(state, "minted") == 60


def test_credit_of_zero_changes_nothing_and_an_unknown_source_is_a_bug():
    state = world()
    assert fund(state, ALICE, 0) == [] and state.get_changes() == {}
    with pytest.raises(ValueError, match="credit source"):
        credit(coin_ctx(state, ALICE), ALICE.public_key, 5, "gift")


def test_lots_with_the_same_expiry_merge():
    state = world()
    fund(state, ALICE, 5)
    fund(state, ALICE, 6)
    assert get_lots(state, ALICE.public_key) == [(NOW_MS + LIFE, 11)]


# --- spending: oldest lots first, expiry at the boundary --------------------------------------------------


def test_spend_takes_the_oldest_lots_first():
    state = world()
    fund(state, ALICE, 30, ts=NOW_MS)
    fund(state, ALICE, 50, ts=NOW_MS + 100)
    fund(state, ALICE, 20, ts=NOW_MS + 200)
    events = spend(coin_ctx(state, ALICE, ts=NOW_MS + 300), ALICE.public_key, 40, "test")
    assert events == [Spent(ALICE.public_key, 40, "test")]
    assert get_lots(state, ALICE.public_key) == [(NOW_MS + 100 + LIFE, 40), (NOW_MS + 200 + LIFE, 20)]
    assert get_balance(state, ALICE.public_key) == 60 and get_counter(state, "burned") == 40


def test_a_lot_counts_until_one_ms_before_its_expiry_and_not_at_it():
    state = world()
    fund(state, ALICE, 25)
    expiry = NOW_MS + LIFE
    assert get_spendable(state, ALICE.public_key, expiry - 1) == 25
    assert get_spendable(state, ALICE.public_key, expiry) == 0
    assert get_balance(state, ALICE.public_key) == 25  # not swept yet: nothing touched the account


def test_spending_the_whole_lot_one_ms_before_expiry_succeeds():
    state = world()
    fund(state, ALICE, 25)
    spend(coin_ctx(state, ALICE, ts=NOW_MS + LIFE - 1), ALICE.public_key, 25, "test")
    assert get_lots(state, ALICE.public_key) == [] and get_balance(state, ALICE.public_key) == 0


def test_touching_an_account_at_the_expiry_ms_sweeps_the_lot_with_an_expired_event():
    state = world()
    fund(state, ALICE, 25)
    fund(state, ALICE, 10, ts=NOW_MS + 1)
    events = fund(state, ALICE, 1, ts=NOW_MS + LIFE)  # any credit touches the account
    assert events[0] == Expired(ALICE.public_key, 25)
    assert get_lots(state, ALICE.public_key) == [(NOW_MS + 1 + LIFE, 10), (NOW_MS + 2 * LIFE, 1)]
    assert get_counter(state, "expired") == 25
    assert supply_is_consistent(state)


def test_spend_of_expired_coins_is_insufficient_balance_and_names_the_live_balance():
    state = world()
    fund(state, ALICE, 25)
    fund(state, ALICE, 5, ts=NOW_MS + 1)
    with pytest.raises(TxFailure) as exc:
        spend(coin_ctx(state, ALICE, ts=NOW_MS + LIFE), ALICE.public_key, 6, "order:o1")
    assert exc.value.reason is reasons.INSUFFICIENT_BALANCE
    assert "spendable balance is 5; order:o1 needs 6" in exc.value.message


def test_a_failed_tx_rolls_its_sweep_back_but_the_balance_shown_still_excludes_dead_lots():
    state = world()
    fund(state, ALICE, 25)
    tx = make_tx(CHAIN_ID, "transfer", ALICE, 1, [BOB.public_key, 30, bytes(32)])
    result = process_tx(state, tx, get_kind("transfer"), get_kind("transfer").compute_payload([BOB.public_key, 30, bytes(32)]),
                        2, NOW_MS + LIFE)
    assert (result.status, result.reason) == (2, "insufficient_balance")
    assert get_lots(state, ALICE.public_key) == [(NOW_MS + LIFE, 25)]  # sweep undone with the rest
    assert get_spendable(state, ALICE.public_key, NOW_MS + LIFE) == 0


def test_get_expiring_lists_only_live_lots_inside_the_window():
    state = world()
    fund(state, ALICE, 1, ts=NOW_MS)
    fund(state, ALICE, 2, ts=NOW_MS + 500)
    assert get_expiring(state, ALICE.public_key, NOW_MS + 100, LIFE - 100) == [(NOW_MS + LIFE, 1)]
    assert get_expiring(state, ALICE.public_key, NOW_MS + LIFE, LIFE) == [(NOW_MS + 500 + LIFE, 2)]


# --- the supply cap holds for every coin creation --------------------------------------------------------


def test_with_a_cap_of_1000_a_mint_of_1_more_is_refused_and_a_100000_euro_confirm_pays_no_coins():
    from tests.ledger.flows_world import ALICE as CUSTOMER, STAFF as CLERK, World

    w = World({"mint_cap": 1_000})
    w.fund(BOB, 1_000)
    w.state.set_state(b"r\x03" + ISSUER.public_key, b"\x01")  # ISSUER holds the issuer role
    assert w.refused("mint", ISSUER, [BOB.public_key, 1]) == "mint_cap_exceeded"
    w.paid_order(amount=10_000_000)  # EUR 100,000.00 would earn 100,000 coins
    assert w.refused("confirm-order", CLERK, ["o-1"]) == "mint_cap_exceeded"
    assert w.balance(CUSTOMER) == 0 and get_supply(w.state) == 1_000


def test_rewards_and_compensation_stay_inside_the_supply_cap_too():
    from tests.ledger.flows_world import ALICE as CUSTOMER, STAFF as CLERK, World, h

    w = World({"mint_cap": 1_000, "feedback_reward": 50})
    w.fund(BOB, 990)
    w.confirmed_order(amount=1_000)  # 10 coins: the supply is at the cap
    assert w.refused("submit-feedback", CUSTOMER, ["order", "o-1", 5, h("ok")]) == "mint_cap_exceeded"
    w.ok("open-ticket", CLERK, ["t-1", "complaint", 2, "o-1", h("late")])
    assert w.refused("compensate", CLERK, ["t-1", 1]) == "mint_cap_exceeded"
    assert get_supply(w.state) == 1_000 == get_counter(w.state, "minted")


# --- moving lots (transfers) -----------------------------------------------------------------------------


def test_a_transfer_moves_lots_with_their_original_expiry_oldest_first():
    state = world()
    fund(state, ALICE, 30, ts=NOW_MS)
    fund(state, ALICE, 50, ts=NOW_MS + 100)
    fund(state, BOB, 5, ts=NOW_MS + 200)
    process_move(coin_ctx(state, ALICE, ts=NOW_MS + 9_000), ALICE.public_key, BOB.public_key, 40)
    assert get_lots(state, BOB.public_key) == [(NOW_MS + LIFE, 30), (NOW_MS + 100 + LIFE, 10),
                                               (NOW_MS + 200 + LIFE, 5)]
    assert get_lots(state, ALICE.public_key) == [(NOW_MS + 100 + LIFE, 40)]
    # coins received late still die at their first owner's expiry
    assert get_spendable(state, BOB.public_key, NOW_MS + LIFE) == 15
    assert get_counter(state, "minted") == 85 and get_counter(state, "burned") == 0 and supply_is_consistent(state)


def test_a_move_sweeps_both_sides_first():
    state = world()
    fund(state, ALICE, 10, ts=NOW_MS)
    fund(state, ALICE, 10, ts=NOW_MS + 1)
    fund(state, BOB, 7, ts=NOW_MS)
    events = process_move(coin_ctx(state, ALICE, ts=NOW_MS + LIFE), ALICE.public_key, BOB.public_key, 4)
    assert events == [Expired(ALICE.public_key, 10), Expired(BOB.public_key, 7)]
    assert get_balance(state, BOB.public_key) == 4 and supply_is_consistent(state)


# --- clawback --------------------------------------------------------------------------------------------


def test_clawback_takes_at_most_the_live_balance_and_never_goes_negative():
    state = world()
    fund(state, ALICE, 10, ts=NOW_MS)
    fund(state, ALICE, 15, ts=NOW_MS + 1)
    taken, events = clawback(coin_ctx(state, STAFF, ts=NOW_MS + LIFE), ALICE.public_key, 100, "refund:o1")
    assert taken == 15
    assert events == [Expired(ALICE.public_key, 10), ClawedBack(ALICE.public_key, 15, "refund:o1")]
    assert get_balance(state, ALICE.public_key) == 0 and supply_is_consistent(state)


def test_clawback_from_an_empty_account_takes_nothing():
    state = world()
    assert clawback(coin_ctx(state, STAFF), BOB.public_key, 5, "refund:o1") == (0, [])
    assert state.get_changes() == {}


def test_partial_clawback_takes_the_latest_lot_first_so_what_is_kept_is_never_younger():
    # (taking the oldest would let a refund swap coins about to expire for the refunded order's fresh ones)
    state = world()
    fund(state, ALICE, 10, ts=NOW_MS)
    fund(state, ALICE, 15, ts=NOW_MS + 1)
    assert clawback(coin_ctx(state, STAFF), ALICE.public_key, 12, "x")[0] == 12
    assert get_lots(state, ALICE.public_key) == [(NOW_MS + LIFE, 10), (NOW_MS + 1 + LIFE, 3)]


# --- daily outflow ---------------------------------------------------------------------------------------


def test_outflow_limit_is_per_utc_day_and_resets_the_next_day():
    state = world(daily_outflow_kyc0=100)
    register(state, ALICE, kyc_level=0)
    day_start = (NOW_MS // DAY_MS + 1) * DAY_MS
    verify_outflow(coin_ctx(state, ALICE, ts=day_start - 10), ALICE.public_key, 60)  # the day before
    verify_outflow(coin_ctx(state, ALICE, ts=day_start), ALICE.public_key, 100)  # a new day: the full limit
    with pytest.raises(TxFailure) as exc:
        verify_outflow(coin_ctx(state, ALICE, ts=day_start + DAY_MS - 1), ALICE.public_key, 1)
    assert exc.value.reason is reasons.DAILY_LIMIT_EXCEEDED
    assert "already 100 out today + 1 = 101; the KYC 0 daily limit is 100" in exc.value.message
    verify_outflow(coin_ctx(state, ALICE, ts=day_start + DAY_MS), ALICE.public_key, 100)
    assert get_outflow(state, ALICE.public_key, day_start + DAY_MS) == 100


def test_outflow_limit_follows_the_kyc_level():
    state = world(daily_outflow_kyc1=500, daily_outflow_kyc2=900)
    register(state, ALICE, kyc_level=1)
    register(state, BOB, kyc_level=2)
    with pytest.raises(TxFailure):
        verify_outflow(coin_ctx(state, ALICE), ALICE.public_key, 501)
    verify_outflow(coin_ctx(state, BOB), BOB.public_key, 900)


def test_role_holders_that_are_not_customers_have_no_outflow_limit():
    state = world(daily_outflow_kyc0=1, second_factor_threshold=10**13)
    verify_outflow(coin_ctx(state, STAFF), STAFF.public_key, 10**12)
    assert get_outflow(state, STAFF.public_key, NOW_MS) == 10**12  # counted for the second factor


# --- second factor, tiers, privileges --------------------------------------------------------------------


def test_second_factor_needs_the_registered_key_among_the_cosigners():
    state = world()
    with pytest.raises(TxFailure, match="none is registered"):
        verify_second_factor(coin_ctx(state, ALICE, SECOND), ALICE.public_key, "x")
    set_record(state, account_record_key(b"x", ALICE.public_key), SECOND.public_key)
    with pytest.raises(TxFailure) as exc:
        verify_second_factor(coin_ctx(state, ALICE, CAROL), ALICE.public_key, "x")
    assert exc.value.reason is reasons.SECOND_FACTOR_REQUIRED
    verify_second_factor(coin_ctx(state, ALICE, SECOND), ALICE.public_key, "x")


@pytest.mark.parametrize(("earned", "tier", "pct"), [
    (0, "base", 100), (98, "base", 100), (99, "silver", 125), (498, "silver", 125), (499, "gold", 150),
    (1_999, "platinum", 200),
])
def test_tier_follows_the_window_earnings_at_the_policy_thresholds(earned, tier, pct):
    state = world(tier_silver_threshold=100, tier_gold_threshold=500, tier_platinum_threshold=2_000)
    fund(state, ALICE, earned + 1, source="earn")
    fund(state, ALICE, 10**6, source="mint")  # minted coins are no earnings
    spend(coin_ctx(state, ALICE), ALICE.public_key, earned + 1, "x")  # spending never lowers a tier
    assert get_tier(state, ALICE.public_key, NOW_MS) == tier
    assert get_tier_multiplier_pct(coin_ctx(state, ALICE), ALICE.public_key) == pct


def test_privilege_holds_until_one_ms_before_its_expiry():
    state = world()
    set_record(state, privilege_key(ALICE.public_key, "vip"), NOW_MS + 50)
    assert has_privilege(state, ALICE.public_key, "vip", NOW_MS + 49)
    assert not has_privilege(state, ALICE.public_key, "vip", NOW_MS + 50)
    assert not has_privilege(state, ALICE.public_key, "priority", NOW_MS)


# --- lot arithmetic (properties) -------------------------------------------------------------------------

lots_st = st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 10**6)), max_size=30).map(
    lambda pairs: sorted(dict(pairs).items()))


@given(lots_st, st.integers(0, 10**6), st.integers(1, 10**6))
def test_adding_a_lot_keeps_the_total_and_never_extends_any_coins_life(lots, expires, amount):
    out = compute_add_lot(lots, expires, amount)
    assert sum(a for _, a in out) == sum(a for _, a in lots) + amount
    assert out == sorted(out) and len({e for e, _ in out}) == len(out) <= MAX_LOTS
    assert max(e for e, _ in out) <= max([e for e, _ in lots] + [expires])


def test_past_max_lots_the_latest_two_merge_under_the_earlier_expiry():
    lots = [(i, 1) for i in range(MAX_LOTS)]
    assert compute_add_lot(lots, 10**9, 5)[-1] == (MAX_LOTS - 1, 6)


@given(lots_st, st.data())
def test_taking_from_lots_takes_exactly_the_amount_from_the_earliest(lots, data):
    total = sum(a for _, a in lots)
    amount = data.draw(st.integers(0, total))
    taken, remaining = compute_take_lots(lots, amount)
    assert sum(a for _, a in taken) == amount and sum(a for _, a in remaining) == total - amount
    if taken and remaining:
        assert max(e for e, _ in taken) <= min(e for e, _ in remaining)


# --- read views ------------------------------------------------------------------------------------------


def test_the_account_document_shows_only_live_coins_and_what_expires_soon():
    state = world(coin_lifetime_ms=40 * DAY_MS)
    register(state, ALICE)
    fund(state, ALICE, 30, ts=NOW_MS)
    fund(state, ALICE, 12, ts=NOW_MS + 35 * DAY_MS, source="earn")  # expires beyond the 30-day window
    set_record(state, privilege_key(ALICE.public_key, "priority"), NOW_MS + 41 * DAY_MS)
    view = compute_account_document(state, ALICE.public_key, NOW_MS + 39 * DAY_MS)
    assert view["balance"] == 42 and view["expiring"] == [[NOW_MS + 40 * DAY_MS, 30]]
    assert view["privileges"] == {"priority": NOW_MS + 41 * DAY_MS} and view["lifetime_earned"] == 12
    assert view["customer"]["kyc_level"] == 1 and view["frozen"] is None
    later = compute_account_document(state, ALICE.public_key, NOW_MS + 40 * DAY_MS)  # the first lot died, unswept
    assert later["balance"] == 12 and get_balance(state, ALICE.public_key) == 42


def test_coin_totals_split_minted_coins_by_source():
    state = world()
    fund(state, ALICE, 10)
    fund(state, ALICE, 5, source="earn")
    spend(coin_ctx(state, ALICE), ALICE.public_key, 3, "x")
    totals = get_coin_totals(state)
    assert (totals["supply"], totals["minted"], totals["burned"]) == (12, 15, 3)
    assert (totals["credited:mint"], totals["credited:earn"], totals["credited:refund"]) == (10, 5, 0)


# --- payload shapes of every coin-core kind ----------------------------------------------------------------

COIN_CORE_KINDS = ("mint", "transfer", "propose-set-policy", "propose-grant-role", "propose-revoke-role",
                   "propose-add-validator", "propose-remove-validator", "propose-training-course",
                   "propose-governance-quorum", "approve-proposal", "register-customer",
                   "set-second-factor", "erase-customer-data", "freeze-account", "unfreeze-account",
                   "buy-privilege", "issue-coupon", "redeem-coupon")
payload_fields = st.one_of(st.integers(-2, 2**64), st.text(max_size=6), st.binary(max_size=33),
                           st.binary(min_size=32, max_size=32), st.lists(st.integers(), max_size=2))


@pytest.mark.parametrize("kind", COIN_CORE_KINDS)
@given(payload=st.lists(payload_fields, max_size=7))
def test_any_payload_either_parses_or_is_refused_as_bad_payload_never_crashes(kind, payload):
    try:
        get_kind(kind).compute_payload(payload)
    except InvalidTransaction as exc:
        assert exc.code == "bad_payload"
