"""process_redeem_coupon: a customer applies a coupon to their unpaid order, within its limits, once per order."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.limits import Freeze, set_freeze
from ledger.errors import InvalidTransaction
from ledger.events import CouponApplied, CouponRedeemed
from ledger.orders import get_order
from ledger.process import compute_payload, get_kind
from ledger.process.coupons import (
    IssueCoupon, RedeemCoupon, get_coupon, get_coupon_uses, process_issue_coupon,
    process_redeem_coupon,
)
from tests.strategies import (
    ALICE, BOB, CAROL, COMPLIANCE, ISSUER, NOW_MS, STAFF, coin_ctx, coin_state, refusal, register,
)

EXPIRES = NOW_MS + 10_000


def run(state, kind: str, sender, payload: list, ts: int = NOW_MS):
    """Run another kind's step through the registry (orders belong to ledger.process.orders)."""
    spec = get_kind(kind)
    return spec.process(coin_ctx(state, sender, ts=ts), spec.compute_payload(payload))


@pytest.fixture
def shop():
    """Customers ALICE and BOB with unpaid orders a1, a2 (ALICE) and b1 (BOB) of 2000, and coupon C (300 off)."""
    state = coin_state()
    for customer in (ALICE, BOB):
        register(state, customer)
    for order_id, customer in (("a1", ALICE), ("a2", ALICE), ("b1", BOB)):
        run(state, "create-order", STAFF, [order_id, customer.public_key, 2_000, "EUR", b"\x07" * 32])
    process_issue_coupon(coin_ctx(state, ISSUER), IssueCoupon("C", "spring", 300, EXPIRES, 1, 2))
    return state


def test_redeeming_discounts_the_order_and_counts_the_use(shop):
    events = process_redeem_coupon(coin_ctx(shop, ALICE), RedeemCoupon("C", "a1"))
    assert events == [CouponApplied("a1", ALICE.public_key, 300),
                      CouponRedeemed("C", ALICE.public_key, "a1", 300)]
    assert get_order(shop, "a1").amount_due == 1_700
    assert get_coupon(shop, "C").redeemed == 1 and get_coupon_uses(shop, ALICE.public_key, "C") == 1


def test_redeeming_one_ms_before_expiry_is_applied(shop):
    process_redeem_coupon(coin_ctx(shop, ALICE, ts=EXPIRES - 1), RedeemCoupon("C", "a1"))
    assert get_order(shop, "a1").discount == 300


def test_redeeming_at_the_expiry_ms_is_coupon_expired(shop):
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE, ts=EXPIRES), RedeemCoupon("C", "a1")) \
        is reasons.COUPON_EXPIRED


def test_a_non_customer_is_unknown_customer(shop):
    assert refusal(process_redeem_coupon, coin_ctx(shop, CAROL), RedeemCoupon("C", "a1")) is reasons.UNKNOWN_CUSTOMER


def test_a_frozen_customer_is_account_frozen(shop):
    set_freeze(shop, ALICE.public_key, Freeze("x", COMPLIANCE.public_key, 1))
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("C", "a1")) is reasons.ACCOUNT_FROZEN


def test_a_coupon_never_issued_is_unknown_coupon(shop):
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("D", "a1")) is reasons.UNKNOWN_COUPON


def test_a_second_use_by_the_same_customer_is_coupon_limit_reached(shop):
    process_redeem_coupon(coin_ctx(shop, ALICE), RedeemCoupon("C", "a1"))
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("C", "a2")) \
        is reasons.COUPON_LIMIT_REACHED
    assert get_order(shop, "a2").discount == 0


def test_a_coupon_used_up_is_coupon_exhausted(shop):
    process_issue_coupon(coin_ctx(shop, ISSUER), IssueCoupon("ONE", "spring", 300, EXPIRES, 5, 1))
    process_redeem_coupon(coin_ctx(shop, BOB), RedeemCoupon("ONE", "b1"))
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("ONE", "a1")) \
        is reasons.COUPON_EXHAUSTED


def test_the_same_coupon_twice_on_one_order_never_pays_twice(shop):
    process_issue_coupon(coin_ctx(shop, ISSUER), IssueCoupon("MANY", "spring", 300, EXPIRES, 5, 5))
    process_redeem_coupon(coin_ctx(shop, ALICE), RedeemCoupon("MANY", "a1"))
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("MANY", "a1")) \
        is reasons.COUPON_ALREADY_APPLIED
    assert get_order(shop, "a1").discount == 300 and get_coupon(shop, "MANY").redeemed == 1


def test_another_customers_order_is_not_order_customer(shop):
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("C", "b1")) \
        is reasons.NOT_ORDER_CUSTOMER


def test_an_unknown_order_is_order_not_found(shop):
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("C", "zz")) is reasons.ORDER_NOT_FOUND


def test_a_paid_order_is_already_paid(shop):
    run(shop, "pay-order", ALICE, ["a1", 0])
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("C", "a1")) is reasons.ALREADY_PAID


@pytest.mark.parametrize("payload", [["C"], ["C", "a1", 1], [b"C", "a1"], ["C", 5]])
def test_malformed_redeem_coupon_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("redeem-coupon", payload)
    assert exc.value.code == "bad_payload"
