"""process_issue_coupon: an issuer or branch admin issues a campaign coupon with value, limits and expiry."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.customers import set_branch_of
from ledger.errors import InvalidTransaction
from ledger.events import CouponIssued
from ledger.process import compute_payload
from ledger.process.coupons import Coupon, IssueCoupon, get_coupon, process_issue_coupon
from tests.strategies import ADMIN, ISSUER, NOW_MS, STAFF, coin_ctx, coin_state, refusal


def coupon(coupon_id="WELCOME10", campaign="spring", value=500, expires=NOW_MS + 1, limit=1, total=100):
    return IssueCoupon(coupon_id, campaign, value, expires, limit, total)


def test_an_issuer_issues_a_coupon():
    state = coin_state()
    events = process_issue_coupon(coin_ctx(state, ISSUER), coupon())
    assert events == [CouponIssued("WELCOME10", "spring", 500, NOW_MS + 1, 1, 100)]
    assert get_coupon(state, "WELCOME10") == Coupon("spring", 500, NOW_MS + 1, 1, 100, 0, ISSUER.public_key, "",
                                                    NOW_MS)


def test_a_branch_admin_issues_a_coupon_for_their_branch():
    state = coin_state()
    set_branch_of(state, ADMIN.public_key, "north")
    process_issue_coupon(coin_ctx(state, ADMIN), coupon())
    assert get_coupon(state, "WELCOME10").branch == "north"


def test_staff_issuing_a_coupon_is_unauthorized():
    assert refusal(process_issue_coupon, coin_ctx(coin_state(), STAFF), coupon()) is reasons.UNAUTHORIZED


@pytest.mark.parametrize("coupon_id", ["", " X", "x" * 65, "a\nb"])
def test_an_unusable_coupon_id_is_invalid_id(coupon_id):
    assert refusal(process_issue_coupon, coin_ctx(coin_state(), ISSUER), coupon(coupon_id=coupon_id)) \
        is reasons.INVALID_ID


def test_an_unnamed_campaign_is_invalid_name():
    assert refusal(process_issue_coupon, coin_ctx(coin_state(), ISSUER), coupon(campaign="")) is reasons.INVALID_NAME


@pytest.mark.parametrize("bad", [{"value": 0}, {"limit": 0}, {"total": 0}, {"value": -5}, {"expires": NOW_MS}])
def test_a_worthless_unusable_or_already_expired_coupon_is_invalid_coupon(bad):
    assert refusal(process_issue_coupon, coin_ctx(coin_state(), ISSUER), coupon(**bad)) is reasons.INVALID_COUPON


def test_reusing_a_coupon_id_is_coupon_exists_and_keeps_the_first():
    state = coin_state()
    process_issue_coupon(coin_ctx(state, ISSUER), coupon())
    assert refusal(process_issue_coupon, coin_ctx(state, ISSUER), coupon(value=9_999)) is reasons.COUPON_EXISTS
    assert get_coupon(state, "WELCOME10").value == 500


@pytest.mark.parametrize("payload", [
    ["C", "camp", 1, 2, 1], ["C", "camp", 1, 2, 1, 1, 0], [1, "camp", 1, 2, 1, 1], ["C", "camp", "1", 2, 1, 1],
    ["C", b"camp", 1, 2, 1, 1],
])
def test_malformed_issue_coupon_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("issue-coupon", payload)
    assert exc.value.code == "bad_payload"
