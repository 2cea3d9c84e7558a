"""process_register_customer: staff register a customer with a KYC level and a commitment, never personal data."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.customers import get_customer, set_branch_of
from ledger.errors import InvalidTransaction
from ledger.events import CustomerRegistered
from ledger.process import compute_payload
from ledger.process.customers import RegisterCustomer, process_register_customer
from tests.strategies import ADMIN, ALICE, NOW_MS, STAFF, coin_ctx, coin_state, refusal

COMMITMENT = bytes(range(32))


def test_staff_register_a_customer_in_their_branch():
    state = coin_state()
    set_branch_of(state, STAFF.public_key, "north")
    events = process_register_customer(coin_ctx(state, STAFF), RegisterCustomer(ALICE.public_key, 2, COMMITMENT))
    assert events == [CustomerRegistered(ALICE.public_key, 2, COMMITMENT, "north")]
    customer = get_customer(state, ALICE.public_key)
    assert (customer.kyc_level, customer.commitment, customer.registered_by, customer.branch,
            customer.registered_at_ms, customer.erased) == (2, COMMITMENT, STAFF.public_key, "north", NOW_MS, False)


def test_register_by_non_staff_is_unauthorized():
    assert refusal(process_register_customer, coin_ctx(coin_state(), ADMIN),
                   RegisterCustomer(ALICE.public_key, 0, COMMITMENT)) is reasons.UNAUTHORIZED


@pytest.mark.parametrize("kyc", [-1, 3])
def test_register_with_a_kyc_level_outside_0_to_2_is_invalid_kyc_level(kyc):
    assert refusal(process_register_customer, coin_ctx(coin_state(), STAFF),
                   RegisterCustomer(ALICE.public_key, kyc, COMMITMENT)) is reasons.INVALID_KYC_LEVEL


def test_registering_a_customer_twice_is_customer_exists_and_keeps_the_first_commitment():
    state = coin_state()
    process_register_customer(coin_ctx(state, STAFF), RegisterCustomer(ALICE.public_key, 0, COMMITMENT))
    assert refusal(process_register_customer, coin_ctx(state, STAFF),
                   RegisterCustomer(ALICE.public_key, 1, b"\x01" * 32)) is reasons.CUSTOMER_EXISTS
    assert get_customer(state, ALICE.public_key).commitment == COMMITMENT


@pytest.mark.parametrize("payload", [
    [ALICE.public_key, 0], [ALICE.public_key, 0, COMMITMENT[:31]], [ALICE.public_key, "0", COMMITMENT],
    [ALICE.public_key, 0, "alice@example.com"], [b"x", 0, COMMITMENT],
])
def test_malformed_register_customer_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("register-customer", payload)
    assert exc.value.code == "bad_payload"


def test_staff_registering_themself_as_a_customer_is_self_dealing():
    state = coin_state()
    set_branch_of(state, STAFF.public_key, "north")
    assert refusal(process_register_customer, coin_ctx(state, STAFF),
                   RegisterCustomer(STAFF.public_key, 2, COMMITMENT)) is reasons.SELF_DEALING
    assert get_customer(state, STAFF.public_key) is None
