"""process_erase_customer_data: staff or the customer mark personal data erased; the commitment stays."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.customers import get_customer
from ledger.errors import InvalidTransaction
from ledger.events import CustomerDataErased
from ledger.process import compute_payload
from ledger.process.customers import EraseCustomerData, process_erase_customer_data
from tests.strategies import ALICE, BOB, NOW_MS, STAFF, coin_ctx, coin_state, fund, refusal, register


def test_staff_erase_a_customers_data_and_the_event_names_the_commitment():
    state = coin_state()
    register(state, ALICE)
    fund(state, ALICE, 10)
    events = process_erase_customer_data(coin_ctx(state, STAFF, ts=NOW_MS + 5), EraseCustomerData(ALICE.public_key))
    customer = get_customer(state, ALICE.public_key)
    assert events == [CustomerDataErased(ALICE.public_key, customer.commitment)]
    assert customer.erased_at_ms == NOW_MS + 5 and customer.commitment == b"\x11" * 32  # still provable
    assert customer.kyc_level == 1  # still a customer: coins and limits keep working


def test_the_customer_may_erase_their_own_data():
    state = coin_state()
    register(state, ALICE)
    process_erase_customer_data(coin_ctx(state, ALICE), EraseCustomerData(ALICE.public_key))
    assert get_customer(state, ALICE.public_key).erased


def test_erase_by_another_customer_is_unauthorized():
    state = coin_state()
    register(state, ALICE)
    assert refusal(process_erase_customer_data, coin_ctx(state, BOB), EraseCustomerData(ALICE.public_key)) \
        is reasons.UNAUTHORIZED


def test_erase_of_an_unregistered_account_is_unknown_customer():
    assert refusal(process_erase_customer_data, coin_ctx(coin_state(), STAFF), EraseCustomerData(BOB.public_key)) \
        is reasons.UNKNOWN_CUSTOMER


def test_erasing_twice_is_customer_erased():
    state = coin_state()
    register(state, ALICE)
    process_erase_customer_data(coin_ctx(state, STAFF), EraseCustomerData(ALICE.public_key))
    assert refusal(process_erase_customer_data, coin_ctx(state, STAFF), EraseCustomerData(ALICE.public_key)) \
        is reasons.CUSTOMER_ERASED


@pytest.mark.parametrize("payload", [[], [ALICE.public_key, 1], ["alice"]])
def test_malformed_erase_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("erase-customer-data", payload)
    assert exc.value.code == "bad_payload"


def test_staff_of_another_branch_cannot_erase_a_customers_data():
    # The attacker: staff of one branch destroying (irreversibly, on every node) the personal data of a customer
    # registered in another branch.
    from dataclasses import replace

    from ledger.customers import set_customer
    state = coin_state()
    register(state, ALICE)
    set_customer(state, replace(get_customer(state, ALICE.public_key), branch="south"))
    assert refusal(process_erase_customer_data, coin_ctx(state, STAFF), EraseCustomerData(ALICE.public_key)) \
        is reasons.WRONG_BRANCH
    assert not get_customer(state, ALICE.public_key).erased
    process_erase_customer_data(coin_ctx(state, ALICE), EraseCustomerData(ALICE.public_key))  # the customer may
    assert get_customer(state, ALICE.public_key).erased
