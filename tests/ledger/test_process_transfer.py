"""process_transfer: valid/invalid pairs; every refusal asserts its exact reason."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import reasons
from ledger.chain import process_tx
from ledger.commitments import NO_TEXT, compute_text_commitment
from ledger.errors import InvalidTransaction
from ledger.events import Expired, Transferred
from ledger.process import compute_payload, get_kind
from ledger.process.common import TxContext
from ledger.process.transfer import Transfer, process_transfer
from ledger.reasons import TxFailure
from ledger import codec
from ledger.lots import credit, get_lots
from ledger.process.common import DEFAULT_POLICY
from ledger.state import (
    PREFIX_SECOND_KEY, Account, MemoryState, Overlay, account_record_key, get_account, get_balance, policy_key,
    set_record,
)
from ledger.tx import make_tx
from tests.strategies import (
    ALICE, BOB, CAROL, CHAIN_ID, COMPLIANCE, ISSUER, SECOND, account_ids, bad_payload_fields, coin_ctx, fund,
    register,
)


MEMO = compute_text_commitment(b"\x05" * 32, "lunch")


def funded(balance: int = 100) -> Overlay:
    state = Overlay(MemoryState())
    credit(TxContext(state, ISSUER.public_key, (), b"\x00" * 32, 1, 0), ALICE.public_key, balance, "mint")
    return state


def set_policy(state: Overlay, **values: int) -> None:
    for name, value in values.items():
        state.set_state(policy_key(name), codec.encode(value))


def ctx(state: Overlay, sender=ALICE) -> TxContext:
    return TxContext(state, sender.public_key, (sender.public_key,), b"\x00" * 32, 1, 1)


def fail_reason(state: Overlay, tx: Transfer, sender=ALICE) -> reasons.Reason:
    with pytest.raises(TxFailure) as exc:
        process_transfer(ctx(state, sender), tx)
    return exc.value.reason


def test_transfer_moves_coins_and_emits_event():
    state = funded(100)
    events = process_transfer(ctx(state), Transfer(BOB.public_key, 40, MEMO))
    assert events == [Transferred(ALICE.public_key, BOB.public_key, 40)]  # no lot was due: no sweep
    assert get_balance(state, ALICE.public_key) == 60
    assert get_balance(state, BOB.public_key) == 40


def test_transfer_of_the_whole_balance_is_applied():
    state = funded(100)
    process_transfer(ctx(state), Transfer(BOB.public_key, 100, NO_TEXT))
    assert get_balance(state, ALICE.public_key) == 0


def test_transfer_above_the_balance_is_insufficient_balance():
    assert fail_reason(funded(100), Transfer(BOB.public_key, 101, NO_TEXT)) is reasons.INSUFFICIENT_BALANCE


def test_transfer_from_an_unknown_account_is_insufficient_balance():
    assert fail_reason(Overlay(MemoryState()), Transfer(ALICE.public_key, 1, NO_TEXT), sender=BOB) \
        is reasons.INSUFFICIENT_BALANCE


@pytest.mark.parametrize("amount", [0, -7])
def test_transfer_of_non_positive_amount_is_invalid_amount(amount):
    assert fail_reason(funded(), Transfer(BOB.public_key, amount, NO_TEXT)) is reasons.INVALID_AMOUNT


def test_transfer_to_oneself_is_self_transfer():
    assert fail_reason(funded(), Transfer(ALICE.public_key, 1, NO_TEXT)) is reasons.SELF_TRANSFER


def test_the_memo_is_a_commitment_and_a_free_text_memo_is_refused_as_bad_payload():
    assert compute_payload("transfer", [BOB.public_key, 5, MEMO]).memo_hash == MEMO
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("transfer", [BOB.public_key, 5, "thanks for lunch"])
    assert exc.value.code == "bad_payload" and "memo_hash" in exc.value.message


def test_failed_transfer_keeps_balances_and_advances_the_sender_nonce():
    state = funded(10)
    tx = make_tx(CHAIN_ID, "transfer", ALICE, 1, [BOB.public_key, 11, NO_TEXT])
    result = process_tx(state, tx, get_kind("transfer"), compute_payload("transfer", list(tx.body.payload)), 1, 1)
    assert (result.status, result.reason, result.events) == (2, "insufficient_balance", ())
    assert get_account(state, ALICE.public_key) == Account(10, 1)
    assert get_balance(state, BOB.public_key) == 0


def test_applied_transfer_result_carries_the_event():
    state = funded(10)
    tx = make_tx(CHAIN_ID, "transfer", ALICE, 1, [BOB.public_key, 3, MEMO])
    result = process_tx(state, tx, get_kind("transfer"), compute_payload("transfer", list(tx.body.payload)), 1, 1)
    assert (result.status, result.reason) == (0, "")
    assert result.events == (["transferred", ALICE.public_key, BOB.public_key, 3],)
    assert get_account(state, ALICE.public_key) == Account(7, 1)


def test_well_formed_payload_parses_to_transfer():
    assert compute_payload("transfer", [BOB.public_key, 5, MEMO]) == Transfer(BOB.public_key, 5, MEMO)


@pytest.mark.parametrize("payload", [
    [BOB.public_key, 5],
    [BOB.public_key, 5, MEMO, "extra"],
    [BOB.public_key + b"\x00", 5, MEMO],
    [BOB.public_key, "5", MEMO],
    [BOB.public_key, 5, b"m"],
    [BOB.public_key, 5, "m"],
    [BOB.public_key, 5, 7],
])
def test_malformed_transfer_payload_is_an_invalid_transaction_not_a_failure(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("transfer", payload)
    assert exc.value.code == "bad_payload"


@given(st.lists(st.one_of(bad_payload_fields, account_ids), max_size=4))
def test_any_payload_either_parses_or_is_refused_as_bad_payload(payload):
    try:
        tx = compute_payload("transfer", payload)
    except InvalidTransaction as exc:
        assert exc.code == "bad_payload"
    else:
        assert len(tx.to) == 32 and type(tx.amount) is int and len(tx.memo_hash) == 32


# --- freezes, second factor, outflow, expiry ---------------------------------------------------------------


def test_a_frozen_sender_is_account_frozen_and_so_is_a_transfer_to_a_frozen_recipient():
    from ledger.limits import Freeze
    from ledger.limits import set_freeze

    state = funded(100)
    set_freeze(state, ALICE.public_key, Freeze("aml-review", COMPLIANCE.public_key, 1))
    assert fail_reason(state, Transfer(BOB.public_key, 1, NO_TEXT)) is reasons.ACCOUNT_FROZEN
    set_freeze(state, ALICE.public_key, None)
    set_freeze(state, BOB.public_key, Freeze("aml-review", COMPLIANCE.public_key, 1))
    with pytest.raises(TxFailure) as exc:
        process_transfer(ctx(state), Transfer(BOB.public_key, 1, NO_TEXT))
    assert exc.value.reason is reasons.ACCOUNT_FROZEN and "aml-review" in exc.value.message
    assert get_balance(state, BOB.public_key) == 0
    set_freeze(state, BOB.public_key, None)
    process_transfer(ctx(state), Transfer(BOB.public_key, 1, NO_TEXT))  # unfrozen: receives again
    assert get_balance(state, BOB.public_key) == 1


def test_a_transfer_of_exactly_the_threshold_needs_no_second_factor():
    state = funded(100)
    set_policy(state, second_factor_threshold=100)
    process_transfer(ctx(state), Transfer(BOB.public_key, 100, NO_TEXT))
    assert get_balance(state, BOB.public_key) == 100


def test_a_transfer_above_the_threshold_without_a_second_key_is_second_factor_required():
    state = funded(100)
    set_policy(state, second_factor_threshold=50)
    assert fail_reason(state, Transfer(BOB.public_key, 51, NO_TEXT)) is reasons.SECOND_FACTOR_REQUIRED


def test_a_transfer_above_the_threshold_cosigned_by_another_key_is_second_factor_required():
    state = funded(100)
    set_policy(state, second_factor_threshold=50)
    set_record(state, account_record_key(PREFIX_SECOND_KEY, ALICE.public_key), SECOND.public_key)
    with pytest.raises(TxFailure) as exc:
        process_transfer(coin_ctx(state, ALICE, CAROL, ts=1), Transfer(BOB.public_key, 51, NO_TEXT))
    assert exc.value.reason is reasons.SECOND_FACTOR_REQUIRED


def test_a_transfer_above_the_threshold_cosigned_by_the_second_key_is_applied():
    state = funded(100)
    set_policy(state, second_factor_threshold=50)
    set_record(state, account_record_key(PREFIX_SECOND_KEY, ALICE.public_key), SECOND.public_key)
    process_transfer(coin_ctx(state, ALICE, SECOND, ts=1), Transfer(BOB.public_key, 51, NO_TEXT))
    assert get_balance(state, BOB.public_key) == 51


def test_a_customer_transfer_above_the_daily_limit_is_daily_limit_exceeded():
    state = funded(100)
    set_policy(state, daily_outflow_kyc0=30)
    register(state, ALICE, kyc_level=0)
    process_transfer(ctx(state), Transfer(BOB.public_key, 30, NO_TEXT))
    assert fail_reason(state, Transfer(BOB.public_key, 1, NO_TEXT)) is reasons.DAILY_LIMIT_EXCEEDED


def test_a_transfer_keeps_the_coins_expiry():
    state = funded(100)  # credited at ts 0
    process_transfer(coin_ctx(state, ALICE, ts=500), Transfer(BOB.public_key, 40, NO_TEXT))
    assert get_lots(state, BOB.public_key) == [(DEFAULT_POLICY["coin_lifetime_ms"], 40)]


def test_a_transfer_of_expired_coins_is_insufficient_balance():
    state = funded(100)
    life = DEFAULT_POLICY["coin_lifetime_ms"]
    with pytest.raises(TxFailure) as exc:
        process_transfer(coin_ctx(state, ALICE, ts=life), Transfer(BOB.public_key, 1, NO_TEXT))
    assert exc.value.reason is reasons.INSUFFICIENT_BALANCE


def test_a_transfer_after_expiry_reports_the_sweep_in_its_events():
    state = funded(100)
    fund(state, ALICE, 5, ts=10)
    life = DEFAULT_POLICY["coin_lifetime_ms"]
    events = process_transfer(coin_ctx(state, ALICE, ts=life), Transfer(BOB.public_key, 5, NO_TEXT))
    assert events == [Expired(ALICE.public_key, 100), Transferred(ALICE.public_key, BOB.public_key, 5)]
