"""process_issue_coupon: an issuer or branch admin issues a coupon of an active coupon campaign (value, currency,
expiry, one customer or anyone up to a count), reserving its value from the campaign's budget."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.campaigns import apply_end_campaign, apply_new_campaign, get_campaign
from ledger.customers import set_branch_of
from ledger.errors import InvalidTransaction
from ledger.events import CouponIssued
from ledger.process import compute_payload
from ledger.process.coupons import ANYONE, Coupon, IssueCoupon, get_coupon, process_issue_coupon
from ledger.process.governance import ProposeCampaign, ProposeEndCampaign
from tests.strategies import ADMIN, ALICE, ISSUER, NOW_MS, STAFF, coin_ctx, coin_state, refusal, register

LIFETIME = 10_000


def add_campaign(state, campaign_id="spring", effect="coupon", amount=500, budget=50_000, branch="", **more):
    """Put a campaign in state as its governance decision would (the decision path has its own tests)."""
    fields = dict(per_customer=1, branch=branch, currency="", min_amount=0, min_tier="", starts_at_ms=0,
                  ends_at_ms=0, coupon_currency="EUR" if effect == "coupon" else "",
                  coupon_lifetime_ms=LIFETIME if effect == "coupon" else 0)
    fields.update(more)
    apply_new_campaign(coin_ctx(state, ADMIN), ProposeCampaign("p", campaign_id, "feedback", effect, amount, budget,
                                                               **fields))


@pytest.fixture
def state():
    state = coin_state()
    add_campaign(state)
    return state


def coupon(coupon_id="WELCOME10", campaign="spring", value=500, currency="EUR", expires=NOW_MS + 1, customer=ANYONE,
           total=100):
    return IssueCoupon(coupon_id, campaign, value, currency, expires, customer, total)


def test_an_issuer_issues_a_coupon_for_anyone_and_it_is_reserved_from_the_budget(state):
    events = process_issue_coupon(coin_ctx(state, ISSUER), coupon())
    assert events == [CouponIssued("WELCOME10", "spring", 500, "EUR", NOW_MS + 1, ANYONE, 100)]
    assert get_coupon(state, "WELCOME10") == Coupon("spring", 500, "EUR", NOW_MS + 1, ANYONE, 100, 0,
                                                    ISSUER.public_key, "", NOW_MS)
    assert get_campaign(state, "spring").remaining == 50_000 - 500 * 100


def test_a_coupon_for_one_customer_names_a_registered_customer_and_counts_one(state):
    register(state, ALICE)
    process_issue_coupon(coin_ctx(state, ISSUER), coupon(customer=ALICE.public_key, total=1))
    assert get_coupon(state, "WELCOME10").customer == ALICE.public_key
    assert refusal(process_issue_coupon, coin_ctx(state, ISSUER),
                   coupon("TWO", customer=ALICE.public_key, total=2)) is reasons.INVALID_COUPON
    assert refusal(process_issue_coupon, coin_ctx(state, ISSUER),
                   coupon("NOBODY", customer=STAFF.public_key, total=1)) is reasons.UNKNOWN_CUSTOMER


def test_a_branch_admin_issues_a_coupon_for_their_branch(state):
    set_branch_of(state, ADMIN.public_key, "north")
    add_campaign(state, "north-only", branch="north")
    add_campaign(state, "south-only", branch="south")
    process_issue_coupon(coin_ctx(state, ADMIN), coupon())
    process_issue_coupon(coin_ctx(state, ADMIN), coupon("N", campaign="north-only"))
    assert get_coupon(state, "WELCOME10").branch == "north"
    assert refusal(process_issue_coupon, coin_ctx(state, ADMIN), coupon("S", campaign="south-only")) \
        is reasons.WRONG_BRANCH


def test_staff_issuing_a_coupon_is_unauthorized(state):
    assert refusal(process_issue_coupon, coin_ctx(state, STAFF), coupon()) is reasons.UNAUTHORIZED


@pytest.mark.parametrize("coupon_id", ["", " X", "x" * 65, "a\nb", "spring#1"])
def test_an_unusable_or_campaign_reserved_coupon_id_is_invalid_id(state, coupon_id):
    assert refusal(process_issue_coupon, coin_ctx(state, ISSUER), coupon(coupon_id=coupon_id)) is reasons.INVALID_ID


def test_an_issuer_cannot_invent_a_campaign(state):
    assert refusal(process_issue_coupon, coin_ctx(state, ISSUER), coupon(campaign="made-up")) \
        is reasons.UNKNOWN_CAMPAIGN


def test_a_coupon_of_an_ended_or_not_started_campaign_is_campaign_not_active(state):
    add_campaign(state, "later", starts_at_ms=NOW_MS + 5)
    assert refusal(process_issue_coupon, coin_ctx(state, ISSUER), coupon(campaign="later")) \
        is reasons.CAMPAIGN_NOT_ACTIVE
    apply_end_campaign(coin_ctx(state, ADMIN), ProposeEndCampaign("p", "spring"))
    assert refusal(process_issue_coupon, coin_ctx(state, ISSUER), coupon()) is reasons.CAMPAIGN_NOT_ACTIVE


def test_a_coupon_of_a_bonus_campaign_is_campaign_wrong_effect(state):
    add_campaign(state, "bonus", effect="bonus", amount=10)
    assert refusal(process_issue_coupon, coin_ctx(state, ISSUER), coupon(campaign="bonus")) \
        is reasons.CAMPAIGN_WRONG_EFFECT


@pytest.mark.parametrize("bad", [{"value": 0}, {"value": -5}, {"value": 501}, {"total": 0}, {"expires": NOW_MS},
                                 {"expires": NOW_MS + LIFETIME + 1}])
def test_a_worthless_too_generous_or_badly_dated_coupon_is_invalid_coupon(state, bad):
    assert refusal(process_issue_coupon, coin_ctx(state, ISSUER), coupon(**bad)) is reasons.INVALID_COUPON


def test_a_coupon_in_another_currency_than_the_campaigns_is_coupon_wrong_currency(state):
    assert refusal(process_issue_coupon, coin_ctx(state, ISSUER), coupon(currency="USD")) \
        is reasons.COUPON_WRONG_CURRENCY


def test_issuer_who_issues_more_than_the_budget_is_refused_campaign_budget_exhausted(state):
    process_issue_coupon(coin_ctx(state, ISSUER), coupon(total=99))  # 49,500 of 50,000
    assert refusal(process_issue_coupon, coin_ctx(state, ISSUER), coupon("MORE", total=2)) \
        is reasons.CAMPAIGN_BUDGET_EXHAUSTED
    process_issue_coupon(coin_ctx(state, ISSUER), coupon("LAST", total=1))
    assert get_campaign(state, "spring").remaining == 0


def test_reusing_a_coupon_id_is_coupon_exists_and_keeps_the_first(state):
    process_issue_coupon(coin_ctx(state, ISSUER), coupon())
    assert refusal(process_issue_coupon, coin_ctx(state, ISSUER), coupon(value=400)) is reasons.COUPON_EXISTS
    assert get_coupon(state, "WELCOME10").value == 500


@pytest.mark.parametrize("payload", [
    ["C", "camp", 1, "EUR", 2, b"\x00" * 32], ["C", "camp", 1, "EUR", 2, b"\x00" * 32, 1, 0],
    [1, "camp", 1, "EUR", 2, b"\x00" * 32, 1], ["C", "camp", "1", "EUR", 2, b"\x00" * 32, 1],
    ["C", "camp", 1, "EUR", 2, b"\x00" * 31, 1], ["C", b"camp", 1, "EUR", 2, b"\x00" * 32, 1],
])
def test_malformed_issue_coupon_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("issue-coupon", payload)
    assert exc.value.code == "bad_payload"
