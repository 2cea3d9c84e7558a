"""Poison transactions: a tx whose execution errors (a value beyond the 64-bit encoding, a step's bug) is a
committed ``execution_error`` failure that every validator reproduces, never a block nobody can build."""

from __future__ import annotations

import dataclasses

import pytest

from ledger import codec, reasons
from ledger.block import Block
from ledger.chain import process_tx
from ledger.errors import InvalidBlock
from ledger.orders import get_order
from ledger.process import KINDS, KindSpec, get_kind
from ledger.process.common import process_credit
from ledger.state import MemoryState, Overlay, get_account, get_balance, get_nonce
from ledger.tx import make_tx
from tests.ledger.test_chain import Chain, block_with, check_of, mint
from tests.strategies import ALICE, BOB, CAST_ROLES, CHAIN_ID, STAFF, make_genesis

UINT64_MAX = 2**64 - 1
# Payload amounts are capped at 10**15, so the overflow comes from a (legal) huge earn rate instead:
# 281_479_271_743_489 fiat x 65_535 = 2**64 - 1 coins earned.
BIG_FIAT, EARN_FACTOR = 281_479_271_743_489, 65_535


def order_world() -> Chain:
    """A chain where staff of branch north may serve customers, earning EARN_FACTOR coins per fiat minor unit."""
    genesis = make_genesis(roles=CAST_ROLES, policy={"earn_rate_bp": 10_000 * EARN_FACTOR, "mint_cap": UINT64_MAX})
    genesis = dataclasses.replace(genesis, extra={"branches": {STAFF.public_key.hex(): "north"}})
    return Chain(genesis)


def order_cycle(order_id: str, amount: int, staff_nonce: int, alice_nonce: int) -> list:
    """create-order (staff), pay-order all in fiat (the customer), confirm-order (staff): earns
    ``amount * EARN_FACTOR``."""
    return [make_tx(CHAIN_ID, "create-order", STAFF, staff_nonce, [order_id, ALICE.public_key, amount, "EUR",
                                                                   b"\x22" * 32]),
            make_tx(CHAIN_ID, "pay-order", ALICE, alice_nonce, [order_id, 0]),
            make_tx(CHAIN_ID, "confirm-order", STAFF, staff_nonce + 1, [order_id])]


def test_poison_tx_overflow_commits_as_failure_and_chain_continues():
    # The attacker: staff confirming orders that earn near 2**64 coins until the customer's balance would
    # pass the 64-bit range. Before, the EncodeError escaped build_block, the tx stayed in every mempool
    # and no proposer could build again. Now every coin creation counts against the supply cap (at most
    # 2**64 - 1), so the overflowing earn is refused by that rule before any value leaves the 64-bit range.
    chain = order_world()
    register = make_tx(CHAIN_ID, "register-customer", STAFF, 1, [ALICE.public_key, 1, b"\x11" * 32])
    first, _ = chain.build([register] + order_cycle("o-big", BIG_FIAT, 2, 1))
    chain.commit(chain.validate(first.block))
    assert get_balance(chain.state, ALICE.public_key) == UINT64_MAX
    poison = order_cycle("o-over", 5, 4, 2)
    execution, rejected = chain.build(poison)
    # The block builds, with the overflowing confirm committed as a failure with its reason code
    assert rejected == [] and execution.block.txs == tuple(tx.raw for tx in poison)
    assert [(r.status, r.reason) for r in execution.results] == [
        (0, ""), (0, ""), (reasons.MINT_CAP_EXCEEDED.status, "mint_cap_exceeded")]
    assert execution.results[2].events == ()
    # Every validator re-executes to the same result: the proposer's block validates
    checked = chain.validate(execution.block)
    assert checked.header == execution.header
    chain.commit(checked)
    # Rolled back to the tx's checkpoint: no coins, the order still unconfirmed; the nonce is used
    assert get_balance(chain.state, ALICE.public_key) == UINT64_MAX
    assert get_order(chain.state, "o-over").status == "paid"
    assert get_nonce(chain.state, STAFF.public_key) == 5
    # The chain continues: the staff member's next tx applies in the next block
    after, rejected = chain.build([make_tx(CHAIN_ID, "create-order", STAFF, 6, ["o-next", ALICE.public_key, 7,
                                                                                "EUR", b"\x33" * 32])])
    assert rejected == [] and [r.status for r in after.results] == [0]
    chain.commit(chain.validate(after.block))
    assert chain.head.height == 3


def test_earned_coins_count_against_the_supply_cap():
    # The attacker: a customer (with staff) earning coins on orders once issuers minted up to the cap.
    # DESIGN: every coin creation counts against the supply cap, not only mint.
    genesis = make_genesis(roles=CAST_ROLES, policy={"earn_rate_bp": 10_000, "mint_cap": 1_000})
    chain = Chain(dataclasses.replace(genesis, extra={"branches": {STAFF.public_key.hex(): "north"}}))
    register = make_tx(CHAIN_ID, "register-customer", STAFF, 1, [ALICE.public_key, 1, b"\x11" * 32])
    txs = [register] + order_cycle("o-1", 999, 2, 1) + order_cycle("o-2", 2, 4, 2)
    execution, rejected = chain.build(txs)
    assert rejected == []
    assert [(r.status, r.reason) for r in execution.results][-1] == (
        reasons.MINT_CAP_EXCEEDED.status, "mint_cap_exceeded")
    chain.commit(chain.validate(execution.block))
    assert get_balance(chain.state, ALICE.public_key) == 999 and get_order(chain.state, "o-2").status == "paid"


def install(monkeypatch, name: str, step) -> None:
    monkeypatch.setitem(KINDS, name, KindSpec(name, lambda payload: tuple(payload), step))


@pytest.mark.parametrize("error", [ZeroDivisionError("bug"), KeyError("missing"), ValueError("bad"),
                                   OverflowError("too big")])
def test_a_step_raising_an_unexpected_error_commits_execution_error_and_keeps_only_the_nonce(monkeypatch, error):
    def process_buggy(ctx, tx):
        process_credit(ctx.state, ctx.sender, 1_000)  # writes first: must be rolled back
        raise error

    install(monkeypatch, "buggy", process_buggy)
    chain = Chain()
    execution, rejected = chain.build([make_tx(CHAIN_ID, "buggy", ALICE, 1, []), mint(1)])
    assert rejected == []
    assert [(r.status, r.reason) for r in execution.results] == [(7, "execution_error"), (0, "")]
    assert get_account(Overlay(_applied(chain, execution)), ALICE.public_key).balance == 100  # the mint only
    chain.validate(execution.block)


def _applied(chain: Chain, execution) -> MemoryState:
    state = MemoryState(dict(chain.state.data))
    state.apply(execution.state_writes)
    return state


def test_events_with_no_canonical_encoding_fail_the_tx_not_the_block(monkeypatch):
    install(monkeypatch, "loud", lambda ctx, tx: [["huge", 2**64], ["float", 1.5]][: 1 + len(tx)])
    chain = Chain()
    txs = [make_tx(CHAIN_ID, "loud", ALICE, 1, []), make_tx(CHAIN_ID, "loud", ALICE, 2, [1])]
    execution, rejected = chain.build(txs)
    assert rejected == [] and [r.reason for r in execution.results] == ["execution_error"] * 2
    chain.validate(execution.block)


def test_process_tx_turns_an_encode_error_of_a_write_into_execution_error():
    state = Overlay(MemoryState())
    tx = make_tx(CHAIN_ID, "mint", ALICE, 1, [BOB.public_key, 1])

    def overflowing(ctx, payload):
        process_credit(ctx.state, BOB.public_key, UINT64_MAX)
        process_credit(ctx.state, BOB.public_key, 1)  # 2**64: beyond the canonical encoding

    result = process_tx(state, tx, KindSpec("mint", get_kind("mint").compute_payload, overflowing), (), 1, 1)
    assert (result.status, result.reason) == (7, "execution_error")
    assert get_balance(state, BOB.public_key) == 0 and get_nonce(state, ALICE.public_key) == 1
    assert state.get_changes() == {b"a" + ALICE.public_key: codec.encode([0, 1])}


def test_a_tx_raising_a_machine_fault_is_dropped_by_the_proposer_as_unexecutable(monkeypatch):
    # RecursionError / MemoryError depend on the node, not the tx: never a committed result. The proposer
    # reports the tx rejected (the node evicts and counts it) and builds the rest; the nonce is not used.
    def process_deep(ctx, tx):
        process_credit(ctx.state, ctx.sender, 5)
        raise RecursionError("maximum recursion depth exceeded")

    install(monkeypatch, "deep", process_deep)
    chain = Chain()
    deep = make_tx(CHAIN_ID, "deep", ALICE, 1, [])
    execution, rejected = chain.build([deep, mint(1)])
    assert [(tx.tx_hash, e.code) for tx, e in rejected] == [(deep.tx_hash, "unexecutable_tx")]
    assert "RecursionError" in rejected[0][1].message
    assert execution.block.txs == (mint(1).raw,)
    assert b"a" + ALICE.public_key in execution.state_writes  # minted to ALICE, but no nonce bump or credit
    assert get_account(Overlay(_applied(chain, execution)), ALICE.public_key).nonce == 0
    # A validator meeting such a tx in a proposed block does not vote for it
    with pytest.raises(RecursionError):
        chain.validate(block_with(chain, [deep]))


def test_execution_error_is_a_stable_wire_reason():
    assert reasons.BY_NAME["execution_error"].status == 7
    assert reasons.BY_STATUS[7] is reasons.EXECUTION_ERROR
    assert "unexecutable_tx" in reasons.ADMISSION_CODES


def test_a_validator_refuses_a_block_claiming_the_poison_tx_applied():
    chain = order_world()
    register = make_tx(CHAIN_ID, "register-customer", STAFF, 1, [ALICE.public_key, 1, b"\x11" * 32])
    first, _ = chain.build([register] + order_cycle("o-big", BIG_FIAT, 2, 1))
    chain.commit(first)
    execution, _ = chain.build(order_cycle("o-over", 5, 4, 2))
    lying = dataclasses.replace(execution.header, results_root=b"\x01" * 32)
    with pytest.raises(InvalidBlock) as exc:
        chain.validate(Block(lying, execution.block.txs))
    assert check_of(exc) == "results_root"
