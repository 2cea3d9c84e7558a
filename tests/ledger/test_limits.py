"""ledger.limits through the real kinds: frozen means frozen (send, receive, refund), the KYC-0 limit of an
unregistered account, the second factor on the day's cumulative outflow of every outflow kind, and the
compensation record per customer per period."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.context import DAY_MS
from ledger.limits import Freeze, add_compensation, get_compensated, get_limit_level, get_outflow, set_freeze
from ledger.lots import credit
from ledger.process.transfer import Transfer, process_transfer
from ledger.reasons import TxFailure
from ledger.state import get_supply
from ledger.commitments import NO_TEXT
from tests.ledger.flows_world import ALICE, BOB, SECOND, STAFF, STRANGER, World, h
from tests.strategies import ISSUER


def frozen(world: World, who) -> None:
    set_freeze(world.state, who.public_key, Freeze("aml-review", STAFF.public_key, 1))


# --- frozen means frozen ---------------------------------------------------------------------------------


def test_frozen_account_receives_no_coins_from_any_source():
    w = World()
    frozen(w, BOB)
    for source in ("mint", "earn", "reward", "compensation", "refund", "coupon"):
        with pytest.raises(TxFailure) as exc:
            credit(w.ctx(), BOB.public_key, 10, source)
        assert exc.value.reason is reasons.ACCOUNT_FROZEN and "aml-review" in exc.value.message
    assert w.balance(BOB) == 0 and get_supply(w.state) == 0


def test_issuer_minting_to_a_frozen_account_is_refused_with_account_frozen():
    w = World()
    w.state.set_state(b"r\x03" + ISSUER.public_key, b"\x01")  # ISSUER holds the issuer role
    frozen(w, BOB)
    assert w.refused("mint", ISSUER, [BOB.public_key, 100]) == "account_frozen"
    set_freeze(w.state, BOB.public_key, None)
    w.ok("mint", ISSUER, [BOB.public_key, 100])
    assert w.balance(BOB) == 100


def test_customer_sending_to_a_frozen_account_is_refused_and_keeps_the_coins():
    w = World()
    w.fund(ALICE, 500)
    frozen(w, BOB)
    assert w.refused("transfer", ALICE, [BOB.public_key, 100, NO_TEXT]) == "account_frozen"
    assert w.balance(ALICE) == 500 and w.balance(BOB) == 0


def test_frozen_customer_asking_for_a_refund_is_refused_until_unfrozen():
    w = World()
    w.fund(ALICE, 1_000)
    w.paid_order(coins=1_000)
    frozen(w, ALICE)
    assert w.refused("request-refund", ALICE, ["o-1", bytes(32)]) == "account_frozen"
    assert not w.order("o-1").refunded_at
    set_freeze(w.state, ALICE.public_key, None)
    w.ok("request-refund", ALICE, ["o-1", bytes(32)])
    assert w.balance(ALICE) == 1_000


def test_staff_confirming_the_order_of_a_frozen_customer_earns_nothing_while_frozen():
    w = World()
    w.paid_order()
    frozen(w, ALICE)
    assert w.refused("confirm-order", STAFF, ["o-1"]) == "account_frozen"
    assert w.balance(ALICE) == 0 and not w.order("o-1").confirmed_at


# --- KYC-0 for everyone unregistered ---------------------------------------------------------------------


def test_unregistered_account_is_held_to_the_kyc0_daily_limit():
    w = World({"daily_outflow_kyc0": 1_000})
    w.fund(STRANGER, 5_000)
    w.ok("transfer", STRANGER, [BOB.public_key, 600, NO_TEXT])
    assert w.refused("transfer", STRANGER, [BOB.public_key, 401, NO_TEXT]) == "daily_limit_exceeded"
    w.ok("transfer", STRANGER, [BOB.public_key, 400, NO_TEXT])
    w.tick(DAY_MS)  # a new UTC day: the full limit again
    w.ok("transfer", STRANGER, [BOB.public_key, 1_000, NO_TEXT])
    assert w.balance(BOB) == 2_000


def test_the_limit_level_is_the_customers_own_none_for_a_role_holder_and_zero_for_anyone_else():
    w = World()
    assert get_limit_level(w.state, ALICE.public_key) == 1  # registered at KYC 1
    assert get_limit_level(w.state, STAFF.public_key) is None  # staff: no KYC limit, as before
    assert get_limit_level(w.state, STRANGER.public_key) == 0


def test_staff_have_no_kyc_limit_but_cross_the_second_factor_threshold_like_anyone():
    w = World({"daily_outflow_kyc0": 10, "second_factor_threshold": 1_000})
    w.fund(STAFF, 5_000)
    w.ok("transfer", STAFF, [BOB.public_key, 1_000, NO_TEXT])
    assert w.refused("transfer", STAFF, [BOB.public_key, 1, NO_TEXT]) == "second_factor_required"


# --- the second factor on the day's cumulative outflow ---------------------------------------------------


def test_customer_splitting_a_transfer_into_six_of_9999_still_needs_the_second_factor():
    w = World({"daily_outflow_kyc1": 100_000})
    w.fund(ALICE, 60_000)
    w.ok("transfer", ALICE, [BOB.public_key, 9_999, h("1/6")])
    mark = w.state.checkpoint()
    with pytest.raises(TxFailure) as exc:
        process_transfer(w.ctx(ALICE), Transfer(BOB.public_key, 9_999, h("2/6")))
    w.state.rollback(mark)  # (the executor rolls a failed tx back; the step alone does not)
    assert exc.value.reason is reasons.SECOND_FACTOR_REQUIRED
    assert "after 9999 today (19998, above 10000)" in exc.value.message and "none is registered" in exc.value.message
    w.ok("set-second-factor", ALICE, [SECOND.public_key])
    assert w.refused("transfer", ALICE, [BOB.public_key, 9_999, h("2/6")]) == "second_factor_required"
    for part in range(2, 7):  # co-signed by the second key, the rest of the day's outflow goes through
        w.ok("transfer", ALICE, [BOB.public_key, 9_999, h(f"{part}/6")], SECOND)
    assert w.balance(BOB) == 6 * 9_999 and get_outflow(w.state, ALICE.public_key, w.now) == 6 * 9_999


def test_the_day_ends_at_utc_midnight_of_the_block_time_and_so_does_the_cumulative_outflow():
    w = World({"daily_outflow_kyc1": 100_000})
    w.fund(ALICE, 30_000)
    w.now = (w.now // DAY_MS + 1) * DAY_MS - 1  # the last ms of the day
    w.ok("transfer", ALICE, [BOB.public_key, 9_999, NO_TEXT])
    w.tick(1)
    w.ok("transfer", ALICE, [BOB.public_key, 9_999, NO_TEXT])  # a new day: 9,999 so far
    assert w.refused("transfer", ALICE, [BOB.public_key, 2, NO_TEXT]) == "second_factor_required"


def test_customer_paying_an_order_with_30000_coins_needs_the_second_factor():
    w = World({"daily_outflow_kyc1": 100_000})
    w.fund(ALICE, 30_000)
    w.new_order(amount=60_000)
    assert w.refused("pay-order", ALICE, ["o-1", 30_000]) == "second_factor_required"
    w.ok("set-second-factor", ALICE, [SECOND.public_key])
    w.ok("pay-order", ALICE, ["o-1", 30_000], SECOND)
    assert w.balance(ALICE) == 0 and w.order("o-1").coins_paid == 30_000


def test_customer_buying_a_privilege_after_a_large_transfer_crosses_the_threshold_and_needs_the_second_factor():
    w = World()
    w.fund(ALICE, 20_000)
    w.ok("transfer", ALICE, [BOB.public_key, 9_000, NO_TEXT])
    assert w.refused("buy-privilege", ALICE, ["vip"]) == "second_factor_required"  # 9,000 + 5,000
    w.ok("set-second-factor", ALICE, [SECOND.public_key])
    w.ok("buy-privilege", ALICE, ["vip"], SECOND)
    assert w.balance(ALICE) == 6_000


def test_an_outflow_up_to_exactly_the_threshold_needs_no_second_factor():
    w = World()
    w.fund(ALICE, 10_000)
    w.ok("transfer", ALICE, [BOB.public_key, 4_000, NO_TEXT])
    w.ok("transfer", ALICE, [BOB.public_key, 6_000, NO_TEXT])  # exactly 10,000 today
    assert w.balance(BOB) == 10_000


# --- compensation per customer per period ----------------------------------------------------------------


def test_compensation_per_customer_is_counted_per_period_and_refused_past_the_cap():
    w = World({"compensation_cap_per_customer": 300, "compensation_period_ms": DAY_MS})
    add_compensation(w.ctx(), ALICE.public_key, 200)
    with pytest.raises(TxFailure) as exc:
        add_compensation(w.ctx(), ALICE.public_key, 101)
    assert exc.value.reason is reasons.CUSTOMER_COMPENSATION_CAP_EXCEEDED
    assert "has 200 compensated this period; 101 more would make 301, the cap per customer is 300" in \
        exc.value.message
    add_compensation(w.ctx(), BOB.public_key, 300)  # another customer has a cap of their own
    w.tick(DAY_MS)
    assert get_compensated(w.state, ALICE.public_key, w.now, DAY_MS) == 0  # a new period
    add_compensation(w.ctx(), ALICE.public_key, 300)
