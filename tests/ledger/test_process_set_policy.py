"""Changing policy is a governance decision; every change is a version anyone can read back."""

from __future__ import annotations

import pytest

from ledger.errors import InvalidTransaction
from ledger.process import compute_payload
from ledger.process.common import DEFAULT_POLICY
from ledger.process.governance import (
    ProposeSetPolicy, compute_policy_at, get_policy_change, get_policy_version,
)
from ledger.state import get_policy
from tests.ledger.governance_world import ADMINS, STAFF_1, Gov


def test_a_decided_set_policy_changes_the_value_and_records_version_one():
    g = Gov()
    g.height = 7
    events = g.decide("set-policy", ["earn_rate_bp", 250])
    assert events[-1] == ["policy_set", "earn_rate_bp", 250, 1]
    assert get_policy(g.state, "earn_rate_bp", 0) == 250
    change = get_policy_change(g.state, 1)
    # the sender recorded is the admin whose approval decided it
    assert (change.name, change.value, change.previous, change.height, change.sender) == (
        "earn_rate_bp", 250, DEFAULT_POLICY["earn_rate_bp"], 7, ADMINS[2].public_key)


def test_every_past_version_can_be_rebuilt_from_state():
    g = Gov({"refund_window_ms": 1_000})
    g.decide("set-policy", ["refund_window_ms", 2_000])
    g.decide("set-policy", ["feedback_reward", 7])
    g.decide("set-policy", ["refund_window_ms", 3_000])
    assert get_policy_version(g.state) == 3
    at = [compute_policy_at(g.state, v) for v in range(4)]
    assert [p["refund_window_ms"] for p in at] == [1_000, 2_000, 2_000, 3_000]
    assert [p["feedback_reward"] for p in at] == [DEFAULT_POLICY["feedback_reward"]] * 2 + [7, 7]
    assert set(at[0]) == set(DEFAULT_POLICY)
    with pytest.raises(ValueError, match="expected 0..3"):
        compute_policy_at(g.state, 4)


def test_set_policy_by_non_admin_is_unauthorized():
    assert Gov().refused(STAFF_1, "propose-set-policy", ["p", "mint_cap", 5]) == "unauthorized"


def test_set_policy_of_an_unknown_parameter_is_unknown_policy():
    assert Gov().refused(ADMINS[0], "propose-set-policy", ["p", "mint_capp", 5]) == "unknown_policy"


@pytest.mark.parametrize("value", ["10", -1, 2**64])
def test_set_policy_with_a_wrong_type_or_range_is_policy_value_invalid(value):
    g = Gov()
    assert g.refused(ADMINS[0], "propose-set-policy", ["p", "mint_cap", value]) == "policy_value_invalid"
    assert get_policy_version(g.state) == 0


@pytest.mark.parametrize("name", ["coin_lifetime_ms", "privilege_lifetime_ms", "coin_value_minor"])
def test_a_zero_lifetime_or_coin_value_is_policy_value_invalid(name):
    g = Gov()
    assert g.refused(ADMINS[0], "propose-set-policy", ["p", name, 0]) == "policy_value_invalid"
    g.decide("set-policy", [name, 1])
    assert get_policy(g.state, name, 0) == 1


def test_a_proposal_lifetime_below_a_minute_is_refused_so_governance_cannot_brick_itself():
    # The attacker: a quorum (or a careless one) setting proposal_lifetime_ms to 1, after which every proposal
    # expires before any other branch can approve it and no decision can ever undo it.
    g = Gov()
    for value in (0, 1, 59_999):
        assert g.refused(ADMINS[0], "propose-set-policy", [f"p{value}", "proposal_lifetime_ms", value]) \
            == "policy_value_invalid"
    g.decide("set-policy", ["proposal_lifetime_ms", 60_000])
    assert get_policy(g.state, "proposal_lifetime_ms", 0) == 60_000


def test_set_policy_accepts_the_largest_int():
    g = Gov()
    g.decide("set-policy", ["mint_cap", 2**64 - 1])
    assert get_policy(g.state, "mint_cap", 0) == 2**64 - 1


@pytest.mark.parametrize("payload", [["p", "mint_cap"], ["p", "mint_cap", 1, 2], ["p", 5, 1], ["p", "mint_cap", b"1"],
                                     ["p", "x", 1.5], ["p", "x", [1]]])
def test_malformed_propose_set_policy_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("propose-set-policy", payload)
    assert exc.value.code == "bad_payload"


def test_well_formed_payload_parses():
    assert compute_payload("propose-set-policy", ["p", "feedback_reward", 3]) == ProposeSetPolicy("p", "feedback_reward", 3)
