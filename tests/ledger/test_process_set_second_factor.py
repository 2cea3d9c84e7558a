"""process_set_second_factor: an account registers a second key; replacing it needs the current one."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.limits import get_second_key
from ledger.errors import InvalidTransaction
from ledger.events import SecondFactorSet
from ledger.process import compute_payload
from ledger.process.customers import SetSecondFactor, process_set_second_factor
from tests.strategies import ALICE, CAROL, SECOND, coin_ctx, coin_state, refusal


def test_a_first_second_key_needs_only_the_account():
    state = coin_state()
    events = process_set_second_factor(coin_ctx(state, ALICE), SetSecondFactor(SECOND.public_key))
    assert events == [SecondFactorSet(ALICE.public_key, SECOND.public_key)]
    assert get_second_key(state, ALICE.public_key) == SECOND.public_key


def test_the_own_key_as_second_key_is_invalid_second_key():
    assert refusal(process_set_second_factor, coin_ctx(coin_state(), ALICE), SetSecondFactor(ALICE.public_key)) \
        is reasons.INVALID_SECOND_KEY


def test_replacing_the_second_key_without_it_is_second_factor_required():
    state = coin_state()
    process_set_second_factor(coin_ctx(state, ALICE), SetSecondFactor(SECOND.public_key))
    assert refusal(process_set_second_factor, coin_ctx(state, ALICE, CAROL), SetSecondFactor(CAROL.public_key)) \
        is reasons.SECOND_FACTOR_REQUIRED
    assert get_second_key(state, ALICE.public_key) == SECOND.public_key


def test_replacing_the_second_key_cosigned_by_it_is_applied():
    state = coin_state()
    process_set_second_factor(coin_ctx(state, ALICE), SetSecondFactor(SECOND.public_key))
    process_set_second_factor(coin_ctx(state, ALICE, SECOND), SetSecondFactor(CAROL.public_key))
    assert get_second_key(state, ALICE.public_key) == CAROL.public_key


@pytest.mark.parametrize("payload", [[], [SECOND.public_key, 1], [SECOND.public_key[:16]], ["key"]])
def test_malformed_set_second_factor_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("set-second-factor", payload)
    assert exc.value.code == "bad_payload"
