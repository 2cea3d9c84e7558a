"""Block-time sweeps (``ledger.sweeps``): the ``block-sweep`` system tx at leaf 0 exactly when an entry is due,
expiry with nobody transacting, bounded work with carry-over, failures contained per entry, what validators
refuse, and what admission refuses."""

from __future__ import annotations

import dataclasses

import pytest

from ledger import codec, due, reasons, sweeps
from ledger.block import Block, make_seal
from ledger.chain import build_block, check_admissible, validate_block
from ledger.errors import DecodeError, InvalidBlock, InvalidTransaction, SchemaError
from ledger.events import decode_event
from ledger.lots import get_coin_totals, get_lots
from ledger.receipt import build_receipt, verify as verify_receipt
from ledger.state import PREFIX_DUE, get_account, get_nonce, get_supply
from ledger.tx import SWEEP_KIND, SYSTEM_SENDER, SignedTx, TxBody, decode_tx, make_tx, sign_tx
from tests.ledger.test_chain import MAX_FUTURE_MS, Chain, mint, transfer
from tests.strategies import ALICE, BOB, CHAIN_ID, ISSUER, VALIDATORS, make_genesis

LIFETIME_MS = 5_000


@pytest.fixture
def c() -> Chain:
    return Chain(make_genesis(policy={"coin_lifetime_ms": LIFETIME_MS}))


def seal(chain: Chain, txs=(), ts: int | None = None):
    """Build, validate (as another validator) and commit a block; return its execution."""
    execution, rejected = chain.build(list(txs), ts)
    assert rejected == []
    checked = chain.validate(execution.block)
    assert checked.header == execution.header
    chain.commit(checked)
    return execution


def kinds(execution) -> list[str]:
    return [decode_tx(raw).body.kind for raw in execution.block.txs]


def events_of(execution, index: int = 0) -> list[list]:
    return [list(e) for e in execution.results[index].events]


def relabel(block: Block, txs) -> Block:
    """The block with other txs and a header that counts them (what a byzantine proposer can sign)."""
    raws = tuple(t.raw if isinstance(t, SignedTx) else t for t in txs)
    return Block(dataclasses.replace(block.header, tx_count=len(raws)), raws)


def refused_check(chain: Chain, block: Block) -> str:
    with pytest.raises(InvalidBlock) as info:
        chain.validate(block)
    return info.value.check


class HiddenDue:
    """A state reader that hides the due queues: what a proposer omitting the sweep executes against."""

    def __init__(self, base) -> None:
        self.base = base

    def get_state(self, key: bytes):
        return None if key.startswith(PREFIX_DUE) else self.base.get_state(key)

    def scan(self, start: bytes, stop: bytes, limit: int):
        return [(k, v) for k, v in self.base.scan(start, stop, limit + 10_000) if not k.startswith(PREFIX_DUE)][:limit]


# --- expiry with nobody transacting ------------------------------------------------------------------------------


def test_customer_coins_expire_at_block_time_without_any_tx_touching_the_account(c):
    minted = seal(c, [mint(1, ALICE, 100)])
    expires = minted.header.timestamp_ms + LIFETIME_MS
    assert due.get_next_due(c.state, due.QUEUE_EXPIRY) == expires == sweeps.get_next_due(c.state)
    before = seal(c, ts=expires - 1)  # not yet: a lot expiring at t is alive before t
    assert before.block.txs == () and get_account(c.state, ALICE.public_key).balance == 100

    at = seal(c, ts=expires)  # an empty mempool: the block is only the sweep
    assert kinds(at) == [SWEEP_KIND]
    assert (at.results[0].status, at.results[0].reason) == (0, "")
    assert events_of(at) == [["expired", ALICE.public_key, 100]]
    assert get_account(c.state, ALICE.public_key).balance == 0 and get_lots(c.state, ALICE.public_key) == []
    totals = get_coin_totals(c.state)
    assert (totals["supply"], totals["minted"], totals["expired"], totals["burned"]) == (0, 100, 100, 0)
    assert sweeps.get_next_due(c.state) is None
    assert seal(c).block.txs == ()  # nothing due any more: no sweep, no spinning
    assert get_nonce(c.state, SYSTEM_SENDER) == 0  # no nonce is kept for the zero sender


def test_the_sweep_is_leaf_zero_and_the_block_s_txs_run_on_the_swept_state(c):
    seal(c, [mint(1, ALICE, 100)])
    at = seal(c, [mint(2, ALICE, 30), transfer(1, ALICE, BOB, 30)], ts=c.head.timestamp_ms + LIFETIME_MS)
    assert kinds(at) == [SWEEP_KIND, "mint", "transfer"]
    assert events_of(at, 0) == [["expired", ALICE.public_key, 100]]
    assert [e[0] for e in events_of(at, 1)] == ["credited"]  # the mint found nothing dead left to sweep
    assert at.results[2].status == 0
    assert get_account(c.state, BOB.public_key).balance == 30 and get_supply(c.state) == 30


def test_coins_moved_before_they_expire_expire_at_the_recipient_with_their_original_time(c):
    minted = seal(c, [mint(1, ALICE, 100)])
    expires = minted.header.timestamp_ms + LIFETIME_MS
    seal(c, [transfer(1, ALICE, BOB, 60)])
    at = seal(c, ts=expires)
    # Alice's entry found 40 coins, Bob's the 60 he received: each expires where it sits, on time
    assert sorted(events_of(at)) == sorted([["expired", ALICE.public_key, 40], ["expired", BOB.public_key, 60]])
    assert get_supply(c.state) == 0


def test_an_entry_whose_coins_were_spent_in_time_sweeps_nothing(c):
    minted = seal(c, [mint(1, ALICE, 100)])
    seal(c, [transfer(1, ALICE, BOB, 100)])
    seal(c, [make_tx(CHAIN_ID, "transfer", BOB, 1, [ALICE.public_key, 1, ""])])
    at = seal(c, ts=minted.header.timestamp_ms + LIFETIME_MS)
    # The stale entries are consumed; only the lots still there expire (Alice's 1 coin, Bob's 99)
    assert sorted(events_of(at)) == sorted([["expired", ALICE.public_key, 1], ["expired", BOB.public_key, 99]])
    assert sweeps.get_next_due(c.state) is None


# --- bounded work, carried over ------------------------------------------------------------------------------------


def test_a_large_expiry_is_swept_at_most_max_per_queue_per_block_and_the_rest_in_the_next_blocks():
    c = Chain(make_genesis(policy={"coin_lifetime_ms": LIFETIME_MS}))
    n = sweeps.MAX_PER_QUEUE + 7
    holders = [bytes([1 + i // 256, i % 256]) * 16 for i in range(n)]
    minted = seal(c, [make_tx(CHAIN_ID, "mint", ISSUER, i + 1, [h, 2]) for i, h in enumerate(holders)])
    expires = minted.header.timestamp_ms + LIFETIME_MS
    first = seal(c, ts=expires)
    assert len(first.results[0].events) == sweeps.MAX_PER_QUEUE
    assert get_supply(c.state) == 2 * 7 == sum(get_account(c.state, h).balance for h in holders)
    second = seal(c)  # carried over: the next block is due again, whatever its time
    assert kinds(second) == [SWEEP_KIND] and len(second.results[0].events) == 7
    assert get_supply(c.state) == 0 and get_coin_totals(c.state)["expired"] == 2 * n
    assert seal(c).block.txs == ()


# --- a failing sweeper is contained ----------------------------------------------------------------------------------


def test_a_sweeper_that_raises_rolls_back_only_its_entry_and_never_retries_it(c, monkeypatch):
    seal(c, [mint(1, ALICE, 100), mint(2, BOB, 50)])

    def flaky(ctx, due_ms, subject):
        if subject == ALICE.public_key:
            ctx.state.set_state(b"zz-scratch", b"x")  # written, then undone
            raise RuntimeError("a sweeper's bug")
        return sweeps.process_expiry_due(ctx, due_ms, subject)

    monkeypatch.setattr(sweeps, "SWEEPERS", ((due.QUEUE_EXPIRY, flaky),))
    at = seal(c, ts=c.head.timestamp_ms + LIFETIME_MS)
    events = [decode_event(e) for e in at.results[0].events]
    failed = [e for e in events if e.KIND == "sweep_failed"]
    assert [(e.queue, e.subject, e.reason) for e in failed] == [(due.QUEUE_EXPIRY, ALICE.public_key,
                                                                 "execution_error")]
    assert ["expired", BOB.public_key, 50] in [e.to_wire() for e in events]
    assert c.state.get_state(b"zz-scratch") is None and at.results[0].status == 0
    assert seal(c).block.txs == ()  # the failed entry was dropped: no sweep loops on it
    assert get_account(c.state, ALICE.public_key).balance == 100  # (her dead lot waits for her next tx)


# --- what validators refuse ------------------------------------------------------------------------------------------


@pytest.fixture
def due_block(c):
    """A chain where Alice's coins are due, and the honest next block (sweep + a mint)."""
    seal(c, [mint(1, ALICE, 100)])
    execution, _ = c.build([mint(2, BOB, 5)], c.head.timestamp_ms + LIFETIME_MS)
    assert kinds(execution) == [SWEEP_KIND, "mint"]
    return execution.block


def test_a_block_whose_proposer_omitted_a_due_sweep_is_refused(c, due_block):
    # A proposer that ignores the due queues builds a block that is consistent in itself (roots included)
    omitted, _ = build_block(HiddenDue(c.state), c.nodes, c.head, [mint(2, BOB, 5)], due_block.header.timestamp_ms,
                             VALIDATORS[1].public_key)
    assert kinds(omitted) == ["mint"]
    assert refused_check(c, omitted.block) == "sweep"
    assert refused_check(c, relabel(due_block, due_block.txs[1:])) == "sweep"


def test_a_sweep_when_nothing_is_due_elsewhere_than_first_or_twice_is_refused(c, due_block):
    sweep = due_block.txs[0]
    assert refused_check(c, relabel(due_block, [due_block.txs[1], sweep])) == "sweep"
    assert refused_check(c, relabel(due_block, [sweep, sweep, due_block.txs[1]])) == "sweep"
    early, _ = c.build([mint(2, BOB, 5)], due_block.header.timestamp_ms - 1)  # nothing due yet
    extra = sweeps.make_sweep_tx(CHAIN_ID, early.header.height)
    assert refused_check(c, relabel(early.block, [extra, *early.block.txs])) == "sweep"


@pytest.mark.parametrize("variant", ["signed", "wrong_nonce", "payload", "other_chain", "client_sender"])
def test_a_sweep_that_is_not_the_canonical_system_tx_is_refused(c, due_block, variant):
    height = due_block.header.height
    body = TxBody(CHAIN_ID, SWEEP_KIND, SYSTEM_SENDER, height, ())
    if variant == "signed":  # a signature makes other envelope bytes, whoever signs
        bad = sign_tx(body, ALICE).raw
    elif variant == "wrong_nonce":
        bad = codec.encode([TxBody(CHAIN_ID, SWEEP_KIND, SYSTEM_SENDER, height + 1, ()).to_list(), []])
    elif variant == "payload":
        bad = codec.encode([TxBody(CHAIN_ID, SWEEP_KIND, SYSTEM_SENDER, height, (1,)).to_list(), []])
    elif variant == "other_chain":
        bad = codec.encode([TxBody("other-chain", SWEEP_KIND, SYSTEM_SENDER, height, ()).to_list(), []])
    else:
        bad = make_tx(CHAIN_ID, SWEEP_KIND, ALICE, 1, []).raw
    assert refused_check(c, relabel(due_block, [bad, *due_block.txs[1:]])) == "sweep"


def test_an_envelope_without_signature_decodes_only_as_the_system_tx():
    body = TxBody(CHAIN_ID, SWEEP_KIND, SYSTEM_SENDER, 3, ())
    tx = decode_tx(codec.encode([body.to_list(), []]))
    tx.verify_signatures()  # nothing to verify: "every signature is valid" holds vacuously
    for other in (TxBody(CHAIN_ID, "mint", SYSTEM_SENDER, 3, ()), TxBody(CHAIN_ID, SWEEP_KIND, ALICE.public_key, 3, ())):
        with pytest.raises(SchemaError, match="signatures"):
            decode_tx(codec.encode([other.to_list(), []]))
    with pytest.raises(DecodeError):  # non-canonical bytes never decode
        decode_tx(codec.encode([body.to_list(), []])[:-1] + b"\xdc\x00\x00")


# --- what admission refuses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["system", "client"])
def test_nobody_can_submit_a_block_sweep(c, who):
    tx = sweeps.make_sweep_tx(CHAIN_ID, 1) if who == "system" else make_tx(CHAIN_ID, SWEEP_KIND, ALICE, 1, [])
    with pytest.raises(InvalidTransaction) as info:
        check_admissible(c.state, tx, CHAIN_ID)
    assert info.value.code == reasons.SYSTEM_TX == "system_tx" and "system transaction" in str(info.value)
    # a proposer handed one skips it; the block carries no client-made sweep
    execution, rejected = c.build([tx])
    assert [(t.tx_hash, e.code) for t, e in rejected] == [(tx.tx_hash, "system_tx")] and execution.block.txs == ()


# --- receipts ----------------------------------------------------------------------------------------------------------


def test_the_sweep_s_receipt_verifies_offline_and_proves_the_expiry(c):
    seal(c, [mint(1, ALICE, 100)])
    at = seal(c, ts=c.head.timestamp_ms + LIFETIME_MS)
    seals = [make_seal(k, CHAIN_ID, at.header.height, at.block.hash) for k in VALIDATORS[:3]]
    receipt = build_receipt(at.block, at.results, 0, seals)
    proven = verify_receipt(receipt, c.genesis)
    assert proven.status == 0 and [list(e) for e in proven.events] == [["expired", ALICE.public_key, 100]]


def test_validators_agree_on_a_sweep_also_when_the_chain_is_replayed_from_genesis(c):
    blocks = [seal(c, [mint(1, ALICE, 100)]).block, seal(c, ts=c.head.timestamp_ms + LIFETIME_MS).block]
    replay = Chain(c.genesis)
    for block in blocks:  # catch-up re-executes with the same rule
        replay.commit(validate_block(replay.state, replay.nodes, replay.head, block, block.header.timestamp_ms,
                                     MAX_FUTURE_MS))
    assert replay.head == c.head and replay.state.data == c.state.data
