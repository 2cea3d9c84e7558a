"""process_buy_privilege: a customer spends the policy price on a privilege that lasts the policy lifetime."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.customers import get_privilege_expiry, has_privilege
from ledger.limits import Freeze, set_freeze
from ledger.errors import InvalidTransaction
from ledger.events import PrivilegeBought, Spent
from ledger.process import compute_payload
from ledger.process.privileges import BuyPrivilege, process_buy_privilege
from ledger.state import get_balance, get_counter
from tests.strategies import ALICE, BOB, COMPLIANCE, NOW_MS, coin_ctx, coin_state, fund, refusal, register

POLICY = {"privilege_priority_price": 100, "privilege_vip_price": 300, "privilege_lifetime_ms": 1_000}


def customer_with(coins: int, **policy):
    state = coin_state({**POLICY, **policy})
    register(state, ALICE)
    fund(state, ALICE, coins)
    return state


def test_buying_priority_spends_the_price_and_grants_it_for_the_lifetime():
    state = customer_with(150)
    events = process_buy_privilege(coin_ctx(state, ALICE), BuyPrivilege("priority"))
    assert events == [Spent(ALICE.public_key, 100, "privilege:priority"),
                      PrivilegeBought(ALICE.public_key, "priority", 100, NOW_MS + 1_000)]
    assert get_balance(state, ALICE.public_key) == 50 and get_counter(state, "burned") == 100
    assert has_privilege(state, ALICE.public_key, "priority", NOW_MS + 999)
    assert not has_privilege(state, ALICE.public_key, "vip", NOW_MS)


def test_buying_again_while_active_extends_from_the_current_expiry():
    state = customer_with(1_000)
    process_buy_privilege(coin_ctx(state, ALICE), BuyPrivilege("vip"))
    process_buy_privilege(coin_ctx(state, ALICE, ts=NOW_MS + 400), BuyPrivilege("vip"))
    assert get_privilege_expiry(state, ALICE.public_key, "vip") == NOW_MS + 2_000


def test_a_free_privilege_spends_nothing():
    state = customer_with(0, privilege_priority_price=0)
    assert process_buy_privilege(coin_ctx(state, ALICE), BuyPrivilege("priority"))[-1].price == 0


def test_an_unknown_privilege_is_unknown_privilege():
    assert refusal(process_buy_privilege, coin_ctx(customer_with(500), ALICE), BuyPrivilege("gold")) \
        is reasons.UNKNOWN_PRIVILEGE


def test_a_non_customer_is_unknown_customer():
    state = customer_with(0)
    fund(state, BOB, 500)
    assert refusal(process_buy_privilege, coin_ctx(state, BOB), BuyPrivilege("priority")) is reasons.UNKNOWN_CUSTOMER


def test_a_frozen_customer_is_account_frozen():
    state = customer_with(500)
    set_freeze(state, ALICE.public_key, Freeze("x", COMPLIANCE.public_key, 1))
    assert refusal(process_buy_privilege, coin_ctx(state, ALICE), BuyPrivilege("priority")) is reasons.ACCOUNT_FROZEN


def test_a_customer_short_of_the_price_is_insufficient_balance():
    assert refusal(process_buy_privilege, coin_ctx(customer_with(99), ALICE), BuyPrivilege("priority")) \
        is reasons.INSUFFICIENT_BALANCE


def test_a_price_above_the_daily_outflow_is_daily_limit_exceeded():
    state = customer_with(500, daily_outflow_kyc1=299)
    assert refusal(process_buy_privilege, coin_ctx(state, ALICE), BuyPrivilege("vip")) is reasons.DAILY_LIMIT_EXCEEDED


@pytest.mark.parametrize("payload", [[], ["vip", 1], [1]])
def test_malformed_buy_privilege_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("buy-privilege", payload)
    assert exc.value.code == "bad_payload"
