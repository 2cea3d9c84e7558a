"""Order kinds (create/pay/confirm/request-refund) and ``apply_coupon``: success and every refusal by reason."""

from __future__ import annotations

import pytest

from ledger import limits, lots
from ledger.debt import get_debt
from ledger.lots import get_lots
from ledger.errors import InvalidTransaction
from ledger.events import CouponApplied
from ledger.orders import apply_coupon
from ledger.process import compute_payload
from ledger.process.common import DAY_MS
from ledger.process.orders import (
    compute_earned,
)
from ledger.reasons import TxFailure
from ledger.state import PREFIX_SECOND_KEY, account_record_key, get_counter, get_supply, set_record, set_role
from tests.ledger.flows_world import STAFF3, ALICE, BOB, SECOND, STAFF, STAFF2, STRANGER, World, h
from tests.strategies import key


def create(order_id="o-1", customer=ALICE, amount=10_000, currency="EUR") -> list:
    return [order_id, customer.public_key, amount, currency, h("items")]


class TestCreateOrder:
    def test_staff_creates_an_unpaid_order_recorded_with_their_branch(self):
        w = World()
        events = w.ok("create-order", STAFF2, create())
        order = w.order("o-1")
        assert (order.customer, order.staff, order.branch) == (ALICE.public_key, STAFF2.public_key, "south")
        assert (order.fiat_amount, order.currency, order.created_at, order.status) == (10_000, "EUR", w.now, "created")
        assert events == (["order_created", "o-1", ALICE.public_key, 10_000, "EUR", "south"],)

    def test_a_customer_cannot_create_an_order(self):
        assert World().refused("create-order", ALICE, create()) == "unauthorized"

    def test_a_reused_order_id_is_order_exists(self):
        w = World()
        w.new_order()
        assert w.refused("create-order", STAFF, create(customer=BOB)) == "order_exists"
        assert w.order("o-1").customer == ALICE.public_key

    @pytest.mark.parametrize("order_id", ["", "x" * 65, " padded", "tab\there"])
    def test_an_unusable_order_id_is_invalid_id(self, order_id):
        assert World().refused("create-order", STAFF, create(order_id=order_id)) == "invalid_id"

    def test_an_id_of_exactly_64_bytes_is_accepted(self):
        w = World()
        w.ok("create-order", STAFF, create(order_id="x" * 64))
        assert w.order("x" * 64).fiat_amount == 10_000

    @pytest.mark.parametrize("amount", [0, -5])
    def test_a_non_positive_amount_is_invalid_amount(self, amount):
        assert World().refused("create-order", STAFF, create(amount=amount)) == "invalid_amount"

    @pytest.mark.parametrize("currency", ["eur", "EURO", "E1R", "", "ÉUR"])
    def test_a_currency_that_is_not_iso_4217_shaped_is_invalid_currency(self, currency):
        assert World().refused("create-order", STAFF, create(currency=currency)) == "invalid_currency"

    def test_an_unregistered_customer_is_unknown_customer(self):
        assert World().refused("create-order", STAFF, create(customer=STRANGER)) == "unknown_customer"

    @pytest.mark.parametrize("payload", [
        ["o-1", ALICE.public_key, 1, "EUR"],
        ["o-1", ALICE.public_key[:31], 1, "EUR", h("i")],
        ["o-1", ALICE.public_key, "1", "EUR", h("i")],
        [b"o-1", ALICE.public_key, 1, "EUR", h("i")],
        ["o-1", ALICE.public_key, 1, "EUR", b"short"],
    ])
    def test_a_malformed_payload_is_bad_payload_not_a_failure(self, payload):
        with pytest.raises(InvalidTransaction) as exc:
            compute_payload("create-order", payload)
        assert exc.value.code == "bad_payload"


class TestPayOrder:
    def test_paying_all_in_fiat_records_the_fiat_and_the_payment_time(self):
        w = World()
        w.new_order()
        w.tick()
        events = w.ok("pay-order", ALICE, ["o-1", 0])
        order = w.order("o-1")
        assert (order.coins_paid, order.fiat_paid, order.paid_at, order.status) == (0, 10_000, w.now, "paid")
        assert events == (["order_paid", "o-1", ALICE.public_key, 0, 10_000],)

    def test_paying_partly_in_coins_spends_them_and_records_the_rest_as_fiat(self):
        w = World()
        w.fund(ALICE, 6_000)
        w.new_order()
        events = w.ok("pay-order", ALICE, ["o-1", 5_000])  # exactly the 50 % share
        assert w.balance(ALICE) == 1_000
        assert (w.order("o-1").coins_paid, w.order("o-1").fiat_paid) == (5_000, 5_000)
        assert ["spent", ALICE.public_key, 5_000, "order:o-1"] in events

    def test_coins_beyond_the_redeem_share_are_redeem_share_exceeded(self):
        w = World()
        w.fund(ALICE, 6_000)
        w.new_order()
        assert w.refused("pay-order", ALICE, ["o-1", 5_001]) == "redeem_share_exceeded"
        assert w.balance(ALICE) == 6_000 and w.order("o-1").status == "created"

    def test_the_share_is_converted_with_the_coin_value(self):
        w = World(policy={"coin_value_minor": 2})
        w.fund(ALICE, 6_000)
        w.new_order()
        assert w.refused("pay-order", ALICE, ["o-1", 2_501]) == "redeem_share_exceeded"
        w.ok("pay-order", ALICE, ["o-1", 2_500])
        assert (w.order("o-1").coins_paid, w.order("o-1").fiat_paid) == (2_500, 5_000)

    def test_the_share_is_taken_of_the_amount_after_the_coupon(self):
        w = World()
        w.fund(ALICE, 6_000)
        w.new_order()
        apply_coupon(w.ctx(ALICE), "o-1", ALICE.public_key, 4_000)
        assert w.refused("pay-order", ALICE, ["o-1", 3_001]) == "redeem_share_exceeded"
        w.ok("pay-order", ALICE, ["o-1", 3_000])
        assert w.order("o-1").fiat_paid == 3_000

    def test_an_unknown_order_is_order_not_found(self):
        assert World().refused("pay-order", ALICE, ["nope", 0]) == "order_not_found"

    def test_another_customers_order_is_not_order_customer(self):
        w = World()
        w.new_order()
        assert w.refused("pay-order", BOB, ["o-1", 0]) == "not_order_customer"

    def test_a_second_payment_is_already_paid(self):
        w = World()
        w.paid_order()
        assert w.refused("pay-order", ALICE, ["o-1", 0]) == "already_paid"

    def test_negative_coins_are_invalid_amount(self):
        w = World()
        w.new_order()
        assert w.refused("pay-order", ALICE, ["o-1", -1]) == "invalid_amount"

    def test_a_frozen_customer_cannot_pay(self):
        w = World()
        w.new_order()
        limits.set_freeze(w.state, ALICE.public_key, limits.Freeze("fraud", STAFF.public_key, 1))
        assert w.refused("pay-order", ALICE, ["o-1", 0]) == "account_frozen"

    def test_coins_above_the_daily_outflow_limit_are_daily_limit_exceeded(self):
        w = World(policy={"daily_outflow_kyc1": 100})
        w.fund(ALICE, 1_000)
        w.new_order()
        assert w.refused("pay-order", ALICE, ["o-1", 101]) == "daily_limit_exceeded"
        w.ok("pay-order", ALICE, ["o-1", 100])

    def test_coins_the_customer_does_not_hold_are_insufficient_balance(self):
        w = World()
        w.fund(ALICE, 50)
        w.new_order()
        assert w.refused("pay-order", ALICE, ["o-1", 51]) == "insufficient_balance"
        assert w.balance(ALICE) == 50 and w.order("o-1").paid_at == 0

    @pytest.mark.parametrize("payload", [["o-1"], ["o-1", "5"], [1, 5], ["o-1", 5, 6]])
    def test_a_malformed_payload_is_bad_payload(self, payload):
        with pytest.raises(InvalidTransaction) as exc:
            compute_payload("pay-order", payload)
        assert exc.value.code == "bad_payload"


class TestConfirmOrder:
    def test_confirming_earns_the_rate_times_the_base_multiplier(self):
        w = World()
        w.paid_order(amount=10_000)
        events = w.ok("confirm-order", STAFF, ["o-1"])
        assert w.balance(ALICE) == 100  # 10_000 * 100 bp = 100 coins at 100 %
        assert (w.order("o-1").earned, w.order("o-1").confirmed_at, w.order("o-1").status) == (100, w.now, "confirmed")
        assert events[-1] == ["order_confirmed", "o-1", ALICE.public_key, 100]
        assert any(e[0] == "credited" and e[3] == "earn" for e in events)

    def test_earning_uses_only_the_fiat_part_and_the_tier_multiplier(self):
        w = World()
        lots.credit(w.ctx(), ALICE.public_key, 10_000, "earn")  # lifetime earnings reach silver (125 %)
        w.confirmed_order(amount=10_000, coins=5_000)
        assert w.order("o-1").earned == 62  # floor(5_000 * 100 / 10_000 * 125 / 100) = floor(62.5)

    def test_earning_is_floored_once_over_the_whole_product(self):
        assert compute_earned(199, 100, 100) == 1
        assert compute_earned(99, 100, 150) == 1  # nested floors would give floor(0) * 1.5 = 0
        assert compute_earned(0, 100, 200) == 0

    def test_an_order_paid_fully_in_coins_earns_nothing_and_still_confirms(self):
        w = World(policy={"max_redeem_share_bp": 10_000})
        w.fund(ALICE, 100)
        w.confirmed_order(amount=100, coins=100)
        assert (w.order("o-1").earned, w.order("o-1").status, w.balance(ALICE)) == (0, "confirmed", 0)

    def test_a_customer_cannot_confirm(self):
        w = World()
        w.paid_order()
        assert w.refused("confirm-order", ALICE, ["o-1"]) == "unauthorized"

    def test_an_unknown_order_is_order_not_found(self):
        assert World().refused("confirm-order", STAFF, ["o-9"]) == "order_not_found"

    def test_an_unpaid_order_is_not_paid(self):
        w = World()
        w.new_order()
        assert w.refused("confirm-order", STAFF, ["o-1"]) == "not_paid"

    def test_a_second_confirmation_is_already_confirmed_and_earns_nothing_more(self):
        w = World()
        w.confirmed_order()
        assert w.refused("confirm-order", STAFF, ["o-1"]) == "already_confirmed"
        assert w.balance(ALICE) == 100

    def test_a_refunded_order_cannot_be_confirmed(self):
        w = World()
        w.paid_order()
        w.ok("request-refund", ALICE, ["o-1", h("changed my mind")])
        assert w.refused("confirm-order", STAFF, ["o-1"]) == "already_refunded"
        assert w.balance(ALICE) == 0

    def test_a_malformed_payload_is_bad_payload(self):
        with pytest.raises(InvalidTransaction):
            compute_payload("confirm-order", [])


class TestRequestRefund:
    def test_refund_returns_the_coins_paid_and_claws_back_the_earned_coins(self):
        w = World()
        w.fund(ALICE, 3_000)
        w.confirmed_order(amount=10_000, coins=3_000)  # earns floor(7_000 * 1 %) = 70
        assert w.balance(ALICE) == 70
        events = w.ok("request-refund", ALICE, ["o-1", h("broken")])
        order = w.order("o-1")
        assert w.balance(ALICE) == 3_000
        assert (order.coins_returned, order.clawed_back, order.fiat_refunded, order.refunded_at) == (3_000, 70, 7_000,
                                                                                                     w.now)
        assert order.status == "refunded"
        assert events[-1] == ["order_refunded", "o-1", ALICE.public_key, 3_000, 70, 7_000]

    def test_clawback_never_takes_the_balance_below_zero(self):
        w = World()
        w.confirmed_order(amount=10_000)  # earns 100
        w.ok("transfer", ALICE, [BOB.public_key, 80, bytes(32)])
        w.ok("request-refund", ALICE, ["o-1", h("broken")])
        assert (w.balance(ALICE), w.order("o-1").clawed_back) == (0, 20)

    def test_staff_may_request_the_refund_on_the_customers_behalf(self):
        w = World()
        w.confirmed_order()
        w.ok("request-refund", STAFF3, ["o-1", h("on the phone")])  # staff of the order's branch (issue 11)
        assert w.order("o-1").fiat_refunded == 10_000

    def test_another_customer_is_not_order_customer(self):
        w = World()
        w.paid_order()
        assert w.refused("request-refund", BOB, ["o-1", h("")]) == "not_order_customer"

    def test_an_unknown_order_is_order_not_found(self):
        assert World().refused("request-refund", ALICE, ["o-1", h("")]) == "order_not_found"

    def test_an_unpaid_order_is_not_paid(self):
        w = World()
        w.new_order()
        assert w.refused("request-refund", ALICE, ["o-1", h("")]) == "not_paid"

    def test_a_second_refund_is_already_refunded_and_pays_nothing(self):
        w = World()
        w.fund(ALICE, 1_000)
        w.paid_order(coins=1_000)
        w.ok("request-refund", ALICE, ["o-1", h("")])
        assert w.refused("request-refund", ALICE, ["o-1", h("")]) == "already_refunded"
        assert w.balance(ALICE) == 1_000

    def test_the_window_is_counted_from_payment_in_block_time(self):
        w = World(policy={"refund_window_ms": DAY_MS})
        w.paid_order("o-1")
        w.paid_order("o-2")
        w.tick(DAY_MS)  # exactly at the end of the window: still inside
        w.ok("request-refund", ALICE, ["o-1", h("")])
        w.tick(1)
        assert w.refused("request-refund", ALICE, ["o-2", h("")]) == "refund_window_closed"

    def test_a_large_refund_needs_the_customers_second_factor(self):
        w = World(policy={"refund_second_factor_threshold": 5_000})
        w.paid_order(amount=5_001)
        assert w.refused("request-refund", ALICE, ["o-1", h("")]) == "second_factor_required"
        set_record(w.state, account_record_key(PREFIX_SECOND_KEY, ALICE.public_key), SECOND.public_key)
        assert w.refused("request-refund", ALICE, ["o-1", h("")]) == "second_factor_required"
        w.ok("request-refund", ALICE, ["o-1", h("")], SECOND)
        assert w.order("o-1").status == "refunded"

    def test_a_refund_at_the_threshold_needs_no_second_factor(self):
        w = World(policy={"refund_second_factor_threshold": 5_000})
        w.paid_order(amount=5_000)
        w.ok("request-refund", ALICE, ["o-1", h("")])

    @pytest.mark.parametrize("reason", ["wrong size", "x" * 141, b"short"])
    def test_a_free_text_reason_never_reaches_the_chain_only_its_32_byte_commitment(self, reason):
        with pytest.raises(InvalidTransaction) as exc:
            compute_payload("request-refund", ["o-1", reason])
        assert exc.value.code == "bad_payload" and "reason_hash" in str(exc.value)

    def test_a_malformed_payload_is_bad_payload(self):
        with pytest.raises(InvalidTransaction):
            compute_payload("request-refund", ["o-1"])


class TestApplyCoupon:
    def test_a_coupon_records_the_discount_on_an_unpaid_order(self):
        w = World()
        w.new_order()
        events = apply_coupon(w.ctx(ALICE), "o-1", ALICE.public_key, 1_500)
        assert (w.order("o-1").discount, w.order("o-1").coupon_applied, w.order("o-1").amount_due) == (1_500, 1, 8_500)
        assert events == [CouponApplied("o-1", ALICE.public_key, 1_500)]

    def test_a_coupon_worth_more_than_the_order_zeroes_it(self):
        w = World()
        w.new_order(amount=100)
        apply_coupon(w.ctx(ALICE), "o-1", ALICE.public_key, 500)
        w.ok("pay-order", ALICE, ["o-1", 0])
        assert (w.order("o-1").discount, w.order("o-1").fiat_paid) == (100, 0)

    @pytest.mark.parametrize("setup, customer, value, reason", [
        ("none", ALICE, 10, "order_not_found"),
        ("order", BOB, 10, "not_order_customer"),
        ("paid", ALICE, 10, "already_paid"),
        ("coupon", ALICE, 10, "coupon_already_applied"),
        ("order", ALICE, 0, "invalid_amount"),
    ])
    def test_each_refusal_names_its_reason(self, setup, customer, value, reason):
        w = World()
        if setup != "none":
            w.new_order()
        if setup == "paid":
            w.ok("pay-order", ALICE, ["o-1", 0])
        if setup == "coupon":
            apply_coupon(w.ctx(ALICE), "o-1", ALICE.public_key, 10)
        with pytest.raises(TxFailure) as exc:
            apply_coupon(w.ctx(customer), "o-1", customer.public_key, value)
        assert exc.value.reason.name == reason


# --- issue 12: refunds that cannot be gamed, orders in other currencies ------------------------------------

TREASURY = key(37)


def treasury_world(policy: dict | None = None) -> World:
    """A world accepting EUR (base), JPY and USD, with a treasury account; no rate set yet."""
    w = World(policy={"currencies": "JPY, USD", **(policy or {})})
    set_role(w.state, "treasury", TREASURY.public_key, True)
    return w


class TestRefundAttacks:
    def test_customer_who_spent_earned_coins_then_refunds_is_left_in_debt(self):
        w = World(policy={"second_factor_threshold": 10**9, "refund_second_factor_threshold": 10**9})
        w.confirmed_order(amount=2_000_000)  # €20,000.00 earns 20,000 coins
        assert w.balance(ALICE) == 20_000
        w.ok("transfer", ALICE, [BOB.public_key, 19_998, bytes(32)])  # moved away before the refund
        supply = get_supply(w.state)
        events = w.ok("request-refund", ALICE, ["o-1", h("changed my mind")])
        order = w.order("o-1")
        assert (w.balance(ALICE), get_debt(w.state, ALICE.public_key)) == (0, 19_998)
        assert (order.clawed_back, order.debt_incurred, order.fiat_refunded) == (2, 19_998, 2_000_000)
        assert ["clawed_back", ALICE.public_key, 2, "refund:o-1"] in events
        assert ["debt_incurred", ALICE.public_key, 19_998, "refund:o-1", 19_998] in events
        assert get_supply(w.state) == supply - 2 == get_counter(w.state, "minted") - get_counter(
            w.state, "burned") - get_counter(w.state, "expired")

    def test_a_customer_in_debt_can_neither_send_nor_pay_with_coins_nor_buy_a_privilege(self):
        w = World(policy={"second_factor_threshold": 10**9})
        w.confirmed_order(amount=100_000)  # earns 1,000
        w.ok("transfer", ALICE, [BOB.public_key, 1_000, bytes(32)])
        w.ok("request-refund", ALICE, ["o-1", h("")])  # debt 1,000
        w.ok("transfer", BOB, [ALICE.public_key, 600, bytes(32)])  # a transfer in never repays a debt
        assert (w.balance(ALICE), get_debt(w.state, ALICE.public_key)) == (600, 1_000)
        w.new_order("o-2")
        assert w.refused("transfer", ALICE, [BOB.public_key, 1, bytes(32)]) == "in_debt"
        assert w.refused("pay-order", ALICE, ["o-2", 100]) == "in_debt"
        assert w.refused("buy-privilege", ALICE, ["priority"]) == "in_debt"
        w.ok("pay-order", ALICE, ["o-2", 0])  # paying in fiat stays possible
        assert w.balance(ALICE) == 600

    def test_later_earnings_repay_the_debt_first_and_only_the_rest_becomes_coins(self):
        w = World(policy={"second_factor_threshold": 10**9})
        w.confirmed_order(amount=100_000)  # earns 1,000
        w.ok("transfer", ALICE, [BOB.public_key, 1_000, bytes(32)])
        w.ok("request-refund", ALICE, ["o-1", h("")])  # debt 1,000
        supply, minted = get_supply(w.state), get_counter(w.state, "minted")
        w.paid_order("o-2", amount=80_000)
        events = w.ok("confirm-order", STAFF, ["o-2"])  # earns 800: all of it repays the debt
        assert events == (["debt_repaid", ALICE.public_key, 800, "earn", 200],
                          ["order_confirmed", "o-2", ALICE.public_key, 800])
        assert (w.balance(ALICE), get_debt(w.state, ALICE.public_key)) == (0, 200)
        assert (get_supply(w.state), get_counter(w.state, "minted")) == (supply, minted)  # nothing minted
        w.confirmed_order("o-3", amount=50_000)  # earns 500: 200 repay, 300 become coins
        assert (w.balance(ALICE), get_debt(w.state, ALICE.public_key)) == (300, 0)
        assert get_supply(w.state) == supply + 300 and w.order("o-2").earned == 800
        w.ok("transfer", ALICE, [BOB.public_key, 300, bytes(32)])  # out of debt: spending works again

    def test_refund_of_an_order_whose_fiat_was_never_confirmed_pays_no_fiat_back(self):
        w = World()
        w.fund(ALICE, 3_000)
        w.paid_order(amount=10_000, coins=3_000)  # 7,000 fiat recorded as paid, never confirmed
        events = w.ok("request-refund", ALICE, ["o-1", h("")])
        order = w.order("o-1")
        assert (order.fiat_refunded, order.coins_returned, w.balance(ALICE)) == (0, 3_000, 3_000)
        assert ["fiat_refund_withheld", "o-1", ALICE.public_key, 7_000] in events
        assert events[-1] == ["order_refunded", "o-1", ALICE.public_key, 3_000, 0, 0]

    def test_confirmed_fiat_is_refunded_and_nothing_is_withheld(self):
        w = World()
        w.confirmed_order(amount=10_000)
        events = w.ok("request-refund", ALICE, ["o-1", h("")])
        assert w.order("o-1").fiat_refunded == 10_000
        assert not any(e[0] == "fiat_refund_withheld" for e in events)

    def test_customer_paying_with_coins_about_to_expire_gets_them_back_with_their_original_expiry(self):
        w = World(policy={"coin_lifetime_ms": 10 * DAY_MS, "refund_window_ms": 30 * DAY_MS})
        w.fund(ALICE, 3_000)  # expires 10 days from now
        expiry = w.now + 10 * DAY_MS
        w.tick(9 * DAY_MS)
        w.fund(ALICE, 1_000)  # a younger lot, not used by the payment
        w.paid_order(amount=10_000, coins=3_000)
        w.tick(DAY_MS // 2)
        events = w.ok("request-refund", ALICE, ["o-1", h("")])
        assert get_lots(w.state, ALICE.public_key) == [(expiry, 3_000), (w.now - DAY_MS // 2 + 10 * DAY_MS, 1_000)]
        assert ["credited", ALICE.public_key, 3_000, "refund", expiry] in events

    def test_coins_returned_after_their_original_expiry_expire_at_once_never_given_new_life(self):
        w = World(policy={"coin_lifetime_ms": DAY_MS, "refund_window_ms": 30 * DAY_MS})
        w.fund(ALICE, 3_000)
        expiry = w.now + DAY_MS
        w.paid_order(amount=10_000, coins=3_000)
        w.tick(2 * DAY_MS)  # the paid lot would have died a day ago
        expired_before = get_counter(w.state, "expired")
        events = w.ok("request-refund", ALICE, ["o-1", h("")])
        assert ["credited", ALICE.public_key, 3_000, "refund", expiry] in events
        assert ["expired", ALICE.public_key, 3_000] in events
        assert (w.balance(ALICE), get_lots(w.state, ALICE.public_key)) == (0, [])
        assert get_counter(w.state, "expired") == expired_before + 3_000
        assert get_supply(w.state) == get_counter(w.state, "minted") - get_counter(
            w.state, "burned") - get_counter(w.state, "expired")

    def test_a_refund_never_leaves_the_customer_with_younger_coins_than_before(self):
        w = World(policy={"coin_lifetime_ms": 10 * DAY_MS, "refund_window_ms": 30 * DAY_MS})
        w.fund(ALICE, 100)  # about to expire
        old = w.now + 10 * DAY_MS
        w.tick(9 * DAY_MS)
        w.confirmed_order(amount=10_000)  # earns 100 fresh coins
        w.ok("request-refund", ALICE, ["o-1", h("")])
        assert get_lots(w.state, ALICE.public_key) == [(old, 100)]  # the fresh ones went back, the old stay

    def test_a_frozen_customer_is_not_refunded(self):
        w = World()
        w.fund(ALICE, 1_000)
        w.confirmed_order(coins=1_000)
        limits.set_freeze(w.state, ALICE.public_key, limits.Freeze("fraud", STAFF.public_key, 1))
        assert w.refused("request-refund", ALICE, ["o-1", h("")]) == "account_frozen"
        assert w.refused("request-refund", STAFF3, ["o-1", h("")]) == "account_frozen"
        assert w.order("o-1").refunded_at == 0
        limits.set_freeze(w.state, ALICE.public_key, None)
        w.ok("request-refund", STAFF3, ["o-1", h("")])
        assert w.order("o-1").status == "refunded"


class TestOrderCurrencies:
    def test_a_yen_order_earns_what_its_euro_value_earns_not_its_face_value(self):
        w = treasury_world()
        w.ok("set-fx-rate", TREASURY, ["JPY", 610_000])  # ¥1 = €0.0061: 610,000 cents per ¥1,000,000
        w.ok("create-order", STAFF, ["o-1", ALICE.public_key, 10_000, "JPY", h("items")])  # ¥10,000 = €61.00
        w.confirmed_order("o-2", amount=10_000)  # €100.00
        order = w.order("o-1")
        assert (order.fx_rate, order.base_amount, order.fiat_amount, order.currency) == (610_000, 6_100, 10_000, "JPY")
        w.ok("pay-order", ALICE, ["o-1", 0])
        w.ok("confirm-order", STAFF, ["o-1"])
        assert (w.order("o-1").earned, w.order("o-2").earned) == (61, 100)

    def test_the_coin_share_is_taken_of_the_base_value_and_the_fiat_stays_in_the_orders_currency(self):
        w = treasury_world()
        w.ok("set-fx-rate", TREASURY, ["USD", 920_000])  # $1 = €0.92
        w.fund(ALICE, 10_000)
        w.ok("create-order", STAFF, ["o-1", ALICE.public_key, 10_000, "USD", h("items")])  # $100 = €92
        assert w.order("o-1").base_amount == 9_200
        assert w.refused("pay-order", ALICE, ["o-1", 4_601]) == "redeem_share_exceeded"  # 50 % of 9,200
        w.ok("pay-order", ALICE, ["o-1", 4_600])  # €46 in coins = $50 of the order
        assert (w.order("o-1").coins_paid, w.order("o-1").fiat_paid) == (4_600, 5_000)
        w.ok("confirm-order", STAFF, ["o-1"])
        assert w.order("o-1").earned == 46  # $50 fiat = €46.00 -> 46 coins
        w.ok("request-refund", ALICE, ["o-1", h("")])
        assert (w.order("o-1").fiat_refunded, w.balance(ALICE)) == (5_000, 10_000)  # dollars back, coins back

    def test_an_order_keeps_the_rate_of_its_creation(self):
        w = treasury_world()
        w.ok("set-fx-rate", TREASURY, ["USD", 920_000])
        w.ok("create-order", STAFF, ["o-1", ALICE.public_key, 10_000, "USD", h("items")])
        w.ok("set-fx-rate", TREASURY, ["USD", 1_100_000])
        w.ok("pay-order", ALICE, ["o-1", 0])
        w.ok("confirm-order", STAFF, ["o-1"])
        assert w.order("o-1").earned == 92

    @pytest.mark.parametrize("currency", ["ABC", "GBP"])
    def test_a_well_formed_currency_not_on_the_list_is_currency_not_accepted(self, currency):
        assert treasury_world().refused("create-order", STAFF, create(currency=currency)) == "currency_not_accepted"

    def test_the_base_currency_is_accepted_whatever_the_list_says(self):
        w = World(policy={"base_currency": "CHF", "currencies": "EUR"})
        w.ok("create-order", STAFF, create(currency="CHF"))
        assert (w.order("o-1").fx_rate, w.order("o-1").base_amount) == (1_000_000, 10_000)

    def test_a_listed_currency_without_a_rate_is_fx_rate_missing(self):
        assert treasury_world().refused("create-order", STAFF, create(currency="USD")) == "fx_rate_missing"

    def test_a_rate_older_than_the_maximum_age_is_fx_rate_stale(self):
        w = treasury_world({"fx_max_age_ms": DAY_MS})
        w.ok("set-fx-rate", TREASURY, ["USD", 920_000])
        w.tick(DAY_MS)  # exactly the maximum age: still fresh
        w.ok("create-order", STAFF, create(order_id="o-1", currency="USD"))
        w.tick(1)
        assert w.refused("create-order", STAFF, create(order_id="o-2", currency="USD")) == "fx_rate_stale"

    def test_a_base_value_beyond_any_amount_is_invalid_amount(self):
        w = treasury_world()
        w.ok("set-fx-rate", TREASURY, ["USD", 10**12])
        assert w.refused("create-order", STAFF, create(amount=10**10, currency="USD")) == "invalid_amount"


class TestStrangerReadsNoOwnerFromARefusal:
    """A refused tx's detail reaches its sender (tx status, the CLI): it must not name what the sender may not
    read. Attack: a stranger pays or refunds order ids ("O1", "O2", ...) and reads whose they are."""

    @pytest.mark.parametrize("kind", ["pay-order", "request-refund"])
    def test_stranger_probing_an_order_id_does_not_learn_its_customer(self, kind):
        from ledger.orders import verify_order_customer

        w = World()
        w.paid_order()
        with pytest.raises(TxFailure) as exc:
            verify_order_customer("o-1", w.order("o-1"), STRANGER.public_key)
        assert exc.value.reason.name == "not_order_customer"
        assert ALICE.public_key.hex()[:8] not in str(exc.value)
        assert w.refused(kind, STRANGER, ["o-1", 0] if kind == "pay-order" else ["o-1", h("")]) in (
            "not_order_customer", "unknown_customer", "unauthorized")
