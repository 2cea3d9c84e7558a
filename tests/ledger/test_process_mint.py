"""process_mint: valid/invalid pairs; every refusal asserts its exact reason."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import reasons
from ledger.chain import genesis_state, process_tx
from ledger.errors import InvalidTransaction
from ledger.events import Credited
from ledger.process import compute_payload, get_kind
from ledger.process.common import DEFAULT_POLICY, TxContext
from ledger.process.mint import Mint, process_mint
from ledger.reasons import TxFailure
from ledger.lots import get_lots
from ledger.state import MemoryState, Overlay, get_account, get_balance, get_counter, get_supply, set_supply
from ledger.tx import make_tx
from tests.strategies import ALICE, BOB, CHAIN_ID, ISSUER, account_ids, bad_payload_fields, make_genesis

CAP = 1_000


def fresh_state(cap: int = CAP) -> Overlay:
    return Overlay(MemoryState(genesis_state(make_genesis(policy={"mint_cap": cap}))))


def ctx(state: Overlay, sender=ISSUER) -> TxContext:
    return TxContext(state, sender.public_key, (sender.public_key,), b"\x00" * 32, 1, 1)


def test_issuer_mint_credits_recipient_grows_supply_and_emits_event():
    state = fresh_state()
    events = process_mint(ctx(state), Mint(ALICE.public_key, 250))
    expires = 1 + DEFAULT_POLICY["coin_lifetime_ms"]
    assert events == [Credited(ALICE.public_key, 250, "mint", expires)]
    assert get_balance(state, ALICE.public_key) == 250
    assert get_lots(state, ALICE.public_key) == [(expires, 250)]
    assert get_supply(state) == 250 == get_counter(state, "minted")


def test_non_issuer_mint_is_unauthorized():
    state = fresh_state()
    with pytest.raises(TxFailure) as exc:
        process_mint(ctx(state, sender=BOB), Mint(ALICE.public_key, 1))
    assert exc.value.reason is reasons.UNAUTHORIZED
    assert get_supply(state) == 0


@pytest.mark.parametrize("amount", [0, -1])
def test_mint_of_non_positive_amount_is_invalid_amount(amount):
    with pytest.raises(TxFailure) as exc:
        process_mint(ctx(fresh_state()), Mint(ALICE.public_key, amount))
    assert exc.value.reason is reasons.INVALID_AMOUNT


def test_mint_up_to_exactly_the_cap_is_applied():
    state = fresh_state()
    set_supply(state, CAP - 10)
    process_mint(ctx(state), Mint(ALICE.public_key, 10))
    assert get_supply(state) == CAP


def test_mint_one_unit_above_the_cap_is_mint_cap_exceeded_and_names_the_numbers():
    state = fresh_state()
    set_supply(state, CAP - 10)
    with pytest.raises(TxFailure) as exc:
        process_mint(ctx(state), Mint(ALICE.public_key, 11))
    assert exc.value.reason is reasons.MINT_CAP_EXCEEDED
    assert f"the mint cap is {CAP}" in exc.value.message


def test_mint_cap_defaults_to_code_policy_when_genesis_sets_none():
    state = Overlay(MemoryState(genesis_state(make_genesis())))
    process_mint(ctx(state), Mint(ALICE.public_key, DEFAULT_POLICY["mint_cap"]))
    with pytest.raises(TxFailure) as exc:
        process_mint(ctx(state), Mint(ALICE.public_key, 1))
    assert exc.value.reason is reasons.MINT_CAP_EXCEEDED


def test_failed_mint_is_rolled_back_but_advances_the_issuer_nonce():
    state = fresh_state()
    tx = make_tx(CHAIN_ID, "mint", ISSUER, 1, [ALICE.public_key, CAP + 1])
    result = process_tx(state, tx, get_kind("mint"), compute_payload("mint", list(tx.body.payload)), 1, 1)
    assert (result.status, result.reason, result.events) == (3, "mint_cap_exceeded", ())
    assert get_account(state, ISSUER.public_key).nonce == 1
    assert get_balance(state, ALICE.public_key) == 0 and get_supply(state) == 0


def test_well_formed_payload_parses_to_mint():
    assert compute_payload("mint", [ALICE.public_key, 5]) == Mint(ALICE.public_key, 5)


@pytest.mark.parametrize("payload", [
    [],
    [ALICE.public_key],
    [ALICE.public_key, 5, "extra"],
    [ALICE.public_key[:31], 5],
    ["alice", 5],
    [ALICE.public_key, "5"],
    [ALICE.public_key, b"\x05"],
])
def test_malformed_mint_payload_is_an_invalid_transaction_not_a_failure(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("mint", payload)
    assert exc.value.code == "bad_payload"


@given(st.lists(st.one_of(bad_payload_fields, account_ids), max_size=4))
def test_any_payload_either_parses_or_is_refused_as_bad_payload(payload):
    try:
        tx = compute_payload("mint", payload)
    except InvalidTransaction as exc:
        assert exc.code == "bad_payload"
    else:
        assert len(tx.to) == 32 and type(tx.amount) is int


def test_issuer_minting_to_itself_is_self_dealing():
    state = fresh_state()
    with pytest.raises(TxFailure) as exc:
        process_mint(ctx(state), Mint(ISSUER.public_key, 10))
    assert exc.value.reason is reasons.SELF_DEALING and "another issuer" in exc.value.message
    assert get_supply(state) == 0 and get_balance(state, ISSUER.public_key) == 0
