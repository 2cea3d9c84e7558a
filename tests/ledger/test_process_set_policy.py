"""process_set_policy: a branch admin changes a parameter; every change is a version anyone can read back."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.errors import InvalidTransaction
from ledger.events import PolicySet
from ledger.process import compute_payload
from ledger.process.common import DEFAULT_POLICY
from ledger.process.governance import (
    SetPolicy, compute_policy_at, get_policy_change, get_policy_version, process_set_policy,
)
from ledger.state import get_policy
from tests.strategies import ADMIN, STAFF, coin_ctx, coin_state, refusal


def test_set_policy_changes_the_value_and_records_version_one():
    state = coin_state()
    events = process_set_policy(coin_ctx(state, ADMIN, height=7), SetPolicy("earn_rate_bp", 250))
    assert events == [PolicySet("earn_rate_bp", 250, 1)]
    assert get_policy(state, "earn_rate_bp", 0) == 250
    change = get_policy_change(state, 1)
    assert (change.name, change.value, change.previous, change.height, change.sender) == (
        "earn_rate_bp", 250, DEFAULT_POLICY["earn_rate_bp"], 7, ADMIN.public_key)


def test_every_past_version_can_be_rebuilt_from_state():
    state = coin_state({"refund_window_ms": 1_000})
    process_set_policy(coin_ctx(state, ADMIN), SetPolicy("refund_window_ms", 2_000))
    process_set_policy(coin_ctx(state, ADMIN), SetPolicy("feedback_reward", 7))
    process_set_policy(coin_ctx(state, ADMIN), SetPolicy("refund_window_ms", 3_000))
    assert get_policy_version(state) == 3
    at = [compute_policy_at(state, v) for v in range(4)]
    assert [p["refund_window_ms"] for p in at] == [1_000, 2_000, 2_000, 3_000]
    assert [p["feedback_reward"] for p in at] == [DEFAULT_POLICY["feedback_reward"]] * 2 + [7, 7]
    assert set(at[0]) == set(DEFAULT_POLICY)
    with pytest.raises(ValueError, match="expected 0..3"):
        compute_policy_at(state, 4)


def test_set_policy_by_non_admin_is_unauthorized():
    assert refusal(process_set_policy, coin_ctx(coin_state(), STAFF), SetPolicy("mint_cap", 5)) \
        is reasons.UNAUTHORIZED


def test_set_policy_of_an_unknown_parameter_is_unknown_policy():
    assert refusal(process_set_policy, coin_ctx(coin_state(), ADMIN), SetPolicy("mint_capp", 5)) \
        is reasons.UNKNOWN_POLICY


@pytest.mark.parametrize("value", ["10", -1, 2**64])
def test_set_policy_with_a_wrong_type_or_range_is_policy_value_invalid(value):
    state = coin_state()
    assert refusal(process_set_policy, coin_ctx(state, ADMIN), SetPolicy("mint_cap", value)) \
        is reasons.POLICY_VALUE_INVALID
    assert get_policy_version(state) == 0


@pytest.mark.parametrize("name", ["coin_lifetime_ms", "privilege_lifetime_ms", "coin_value_minor"])
def test_a_zero_lifetime_or_coin_value_is_policy_value_invalid(name):
    state = coin_state()
    assert refusal(process_set_policy, coin_ctx(state, ADMIN), SetPolicy(name, 0)) is reasons.POLICY_VALUE_INVALID
    process_set_policy(coin_ctx(state, ADMIN), SetPolicy(name, 1))
    assert get_policy(state, name, 0) == 1


def test_set_policy_accepts_the_largest_int():
    state = coin_state()
    process_set_policy(coin_ctx(state, ADMIN), SetPolicy("mint_cap", 2**64 - 1))
    assert get_policy(state, "mint_cap", 0) == 2**64 - 1


@pytest.mark.parametrize("payload", [["mint_cap"], ["mint_cap", 1, 2], [5, 1], ["mint_cap", b"1"], ["x", 1.5],
                                     ["x", [1]]])
def test_malformed_set_policy_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("set-policy", payload)
    assert exc.value.code == "bad_payload"


def test_well_formed_payload_parses():
    assert compute_payload("set-policy", ["feedback_reward", 3]) == SetPolicy("feedback_reward", 3)
