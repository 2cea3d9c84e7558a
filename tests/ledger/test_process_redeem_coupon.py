"""process_redeem_coupon: a customer applies a coupon to their unpaid order of its currency: once per customer,
once per order, only their own personal coupons."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.limits import Freeze, set_freeze
from ledger.errors import InvalidTransaction
from ledger.fx import FxRate, set_rate
from ledger.events import CouponApplied, CouponRedeemed
from ledger.orders import get_order
from ledger.process import compute_payload, get_kind
from ledger.process.coupons import (
    ANYONE, IssueCoupon, RedeemCoupon, get_coupon, get_coupon_uses, process_issue_coupon, process_redeem_coupon,
)
from tests.ledger.test_process_issue_coupon import add_campaign
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
    """Customers ALICE and BOB with unpaid EUR orders a1, a2 (ALICE) and b1 (BOB) of 2000, a USD order u1 (ALICE),
    and coupon C (300 off, twice in all) of campaign spring."""
    state = coin_state({"currencies": "USD"})
    set_rate(state, "USD", FxRate(920_000, NOW_MS, ISSUER.public_key))
    for customer in (ALICE, BOB):
        register(state, customer)
    for order_id, customer in (("a1", ALICE), ("a2", ALICE), ("b1", BOB)):
        run(state, "create-order", STAFF, [order_id, customer.public_key, 2_000, "EUR", b"\x07" * 32])
    run(state, "create-order", STAFF, ["u1", ALICE.public_key, 2_000, "USD", b"\x07" * 32])
    add_campaign(state)
    issue(state, "C", total=2)
    return state


def issue(state, coupon_id: str, total: int = 1, customer: bytes = ANYONE) -> None:
    process_issue_coupon(coin_ctx(state, ISSUER), IssueCoupon(coupon_id, "spring", 300, "EUR", EXPIRES, customer,
                                                              total))


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


def test_customer_who_redeems_a_coupon_twice_is_refused_coupon_limit_reached(shop):
    process_redeem_coupon(coin_ctx(shop, ALICE), RedeemCoupon("C", "a1"))
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("C", "a2")) \
        is reasons.COUPON_LIMIT_REACHED
    assert get_order(shop, "a2").discount == 0


def test_a_coupon_used_up_is_coupon_exhausted(shop):
    issue(shop, "ONE")
    process_redeem_coupon(coin_ctx(shop, BOB), RedeemCoupon("ONE", "b1"))
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("ONE", "a1")) \
        is reasons.COUPON_EXHAUSTED


def test_two_coupons_on_one_order_never_pay_twice(shop):
    issue(shop, "MANY", total=5)
    process_redeem_coupon(coin_ctx(shop, ALICE), RedeemCoupon("MANY", "a1"))
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("C", "a1")) \
        is reasons.COUPON_ALREADY_APPLIED
    assert get_order(shop, "a1").discount == 300 and get_coupon(shop, "C").redeemed == 0


def test_customer_who_redeems_anothers_personal_coupon_is_refused_not_coupon_customer(shop):
    issue(shop, "FOR-BOB", customer=BOB.public_key)
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("FOR-BOB", "a1")) \
        is reasons.NOT_COUPON_CUSTOMER
    process_redeem_coupon(coin_ctx(shop, BOB), RedeemCoupon("FOR-BOB", "b1"))
    assert get_order(shop, "b1").discount == 300


def test_customer_who_redeems_a_euro_coupon_on_a_dollar_order_is_refused_coupon_wrong_currency(shop):
    assert refusal(process_redeem_coupon, coin_ctx(shop, ALICE), RedeemCoupon("C", "u1")) \
        is reasons.COUPON_WRONG_CURRENCY
    assert get_order(shop, "u1").discount == 0 and get_coupon(shop, "C").redeemed == 0


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


def test_customer_probing_a_personal_coupon_does_not_learn_whose_it_is(shop):
    """The refusal's detail reaches the sender in tx status: it must not name the coupon's customer."""
    import pytest

    from ledger.reasons import TxFailure

    issue(shop, "FOR-BOB", customer=BOB.public_key)
    with pytest.raises(TxFailure) as exc:
        process_redeem_coupon(coin_ctx(shop, ALICE), RedeemCoupon("FOR-BOB", "a1"))
    assert exc.value.reason is reasons.NOT_COUPON_CUSTOMER
    assert BOB.public_key.hex()[:8] not in str(exc.value)
