"""Genesis, build/execute/validate of blocks, admission, and the state overlay."""

from __future__ import annotations

import dataclasses

import pytest

from ledger import codec, merkle, reasons
from ledger.block import Block, Header
from ledger.chain import (
    BlockExecution, build_block, check_admissible, execute_block, genesis_block, genesis_state, validate_block,
)
from ledger.errors import GenesisError, InvalidBlock, InvalidTransaction
from ledger.genesis import Genesis
from ledger.hashing import sha256
from ledger.results import compute_leaves
from ledger.smt import MemoryNodes, compute_root
from ledger.state import (
    PREFIXES, Account, MemoryState, Overlay, get_account, get_policy, get_supply, has_role, policy_key,
    set_account,
)
from ledger.tx import SignedTx, TxBody, make_tx, sign_tx
from tests.strategies import ALICE, BOB, CAROL, CHAIN_ID, GENESIS_TIME_MS, ISSUER, VALIDATORS, make_genesis

MAX_FUTURE_MS = 5_000


class Chain:
    """A genesis state plus the blocks committed on it, held in memory."""

    def __init__(self, genesis: Genesis | None = None) -> None:
        self.genesis = genesis or make_genesis()
        block, execution = genesis_block(self.genesis)
        self.state = MemoryState(execution.state_writes)
        self.nodes = MemoryNodes(execution.smt_nodes)
        self.head: Header = block.header

    def build(self, txs, ts: int | None = None, **kw) -> tuple[BlockExecution, list]:
        ts = self.head.timestamp_ms + 1000 if ts is None else ts
        return build_block(self.state, self.nodes, self.head, txs, ts, VALIDATORS[1].public_key, **kw)

    def validate(self, block: Block, now_ms: int | None = None) -> BlockExecution:
        now = block.header.timestamp_ms if now_ms is None else now_ms
        return validate_block(self.state, self.nodes, self.head, block, now, MAX_FUTURE_MS,
                              self.genesis.validator_set_hash)

    def commit(self, execution: BlockExecution) -> None:
        self.state.apply(execution.state_writes)
        self.nodes.put_many(execution.smt_nodes)
        self.head = execution.header


def mint(nonce: int, to=ALICE, amount: int = 100) -> SignedTx:
    return make_tx(CHAIN_ID, "mint", ISSUER, nonce, [to.public_key, amount])


def transfer(nonce: int, sender=ALICE, to=BOB, amount: int = 10, memo: bytes = bytes(32)) -> SignedTx:
    return make_tx(CHAIN_ID, "transfer", sender, nonce, [to.public_key, amount, memo])


def bad_signature(tx: SignedTx) -> SignedTx:
    """The same body with the sender's signature over a different message."""
    sig = ALICE.sign(b"something else") if tx.body.sender == ALICE.public_key else ISSUER.sign(b"else")
    sigs = ((tx.body.sender, sig),)
    raw = codec.encode([tx.body.to_list(), [list(s) for s in sigs]])
    return SignedTx(tx.body, sigs, raw, tx.tx_hash)


def check_of(exc_info) -> str:
    return exc_info.value.check


# --- genesis -----------------------------------------------------------------------------------------------


def test_genesis_block_is_deterministic_and_follows_the_header_contract():
    b1, e1 = genesis_block(make_genesis())
    b2, e2 = genesis_block(make_genesis())
    h = b1.header
    assert b1.hash == b2.hash and e1.state_writes == e2.state_writes
    assert (h.height, h.prev_hash, h.proposer, h.tx_count) == (0, b"\x00" * 32, b"\x00" * 32, 0)
    assert h.timestamp_ms == GENESIS_TIME_MS and h.chain_id == CHAIN_ID
    assert h.results_root == sha256(b"") == merkle.root([])
    assert h.state_root == compute_root(e1.state_writes)
    assert h.validator_set_hash == h.next_validator_set_hash == make_genesis().validator_set_hash
    assert b1.txs == () and e1.results == []


def test_genesis_block_hash_changes_with_the_roles():
    assert genesis_block(make_genesis())[0].hash != genesis_block(make_genesis(issuers=(BOB,)))[0].hash


def test_genesis_state_holds_roles_and_policy_with_defaults_written_out():
    state = MemoryState(genesis_state(make_genesis(policy={"earn_rate_bp": 5})))
    assert has_role(state, "issuer", ISSUER.public_key)
    assert not has_role(state, "issuer", ALICE.public_key)
    assert get_policy(state, "earn_rate_bp", 0) == 5
    assert state.get_state(policy_key("mint_cap")) is not None  # default stored on chain, not implied
    assert get_supply(state) == 0
    assert all(k[:1] in PREFIXES for k in state.data)


def test_genesis_with_an_unknown_policy_name_is_refused():
    with pytest.raises(GenesisError, match="unknown policy parameter 'earn_rate'"):
        genesis_state(make_genesis(policy={"earn_rate": 5}))


def test_the_default_policy_preset_names_only_known_parameters():
    import tomllib
    from pathlib import Path

    from ledger.context import DEFAULT_POLICY
    preset = tomllib.loads((Path(__file__).resolve().parents[2] / "configs" / "policy-default.toml").read_text())
    assert set(preset["policy"]) <= set(DEFAULT_POLICY)
    genesis_state(make_genesis(policy=preset["policy"]))


@pytest.mark.parametrize("policy", [{"mint_cap": "lots"}, {"mint_cap": -1}, {"mint_cap": 2**64}])
def test_genesis_with_an_unusable_mint_cap_is_refused(policy):
    with pytest.raises(GenesisError, match="mint_cap"):
        genesis_state(make_genesis(policy=policy))


# --- build then validate -----------------------------------------------------------------------------------


def test_built_block_validates_and_commits_to_its_own_results():
    chain = Chain()
    execution, rejected = chain.build([mint(1), transfer(1)])
    assert rejected == []
    mine = chain.validate(execution.block)
    assert mine.header == execution.header and mine.state_writes == execution.state_writes
    assert [r.status for r in mine.results] == [0, 0]
    assert execution.header.results_root == merkle.root(compute_leaves(execution.results, execution.block.txs))
    assert execution.header.next_validator_set_hash == execution.header.validator_set_hash
    chain.commit(mine)
    assert get_account(chain.state, ALICE.public_key) == Account(90, 1)
    assert chain.head.state_root == compute_root(chain.state.data)


def test_block_decoded_from_its_bytes_validates():
    chain = Chain()
    execution, _ = chain.build([mint(1)])
    assert chain.validate(Block.decode(execution.block.encode())).header == execution.header


def test_empty_block_keeps_the_state_root_and_has_the_empty_results_root():
    chain = Chain()
    execution, _ = chain.build([])
    assert execution.header.state_root == chain.head.state_root
    assert execution.header.results_root == sha256(b"")
    assert execution.state_writes == {}
    chain.validate(execution.block)


def test_failed_txs_are_committed_and_advance_the_nonce():
    chain = Chain()
    execution, rejected = chain.build([mint(1), transfer(1, amount=1_000), transfer(2, to=ALICE)])
    assert rejected == []
    assert [(r.status, r.reason) for r in execution.results] == [
        (0, ""), (2, "insufficient_balance"), (5, "self_transfer")]
    chain.commit(chain.validate(execution.block))
    assert get_account(chain.state, ALICE.public_key) == Account(100, 2)
    nxt, _ = chain.build([transfer(2)])  # nonce 2 is used now: refused
    assert nxt.header.tx_count == 0


def test_second_block_builds_on_the_first():
    chain = Chain()
    first, _ = chain.build([mint(1, amount=50)])
    chain.commit(chain.validate(first.block))
    second, _ = chain.build([transfer(1, amount=20), mint(2, to=BOB, amount=5)])
    chain.commit(chain.validate(second.block))
    assert chain.head.height == 2 and chain.head.prev_hash == first.block.hash
    assert get_account(chain.state, BOB.public_key) == Account(25, 0)
    assert get_supply(chain.state) == 55
    assert chain.head.state_root == compute_root(chain.state.data)


def test_execute_block_refuses_a_tx_that_cannot_enter():
    chain = Chain()
    with pytest.raises(InvalidTransaction) as exc:
        execute_block(chain.state, chain.nodes, chain.head, [mint(2)], GENESIS_TIME_MS + 1,
                      VALIDATORS[0].public_key, CHAIN_ID, chain.genesis.validator_set_hash)
    assert exc.value.code == "nonce_gap"


# --- the proposer skips what cannot enter ------------------------------------------------------------------


def test_build_skips_and_reports_inadmissible_candidates():
    chain = Chain()
    other_chain = make_tx("other-chain", "mint", ISSUER, 1, [ALICE.public_key, 1])
    unknown = make_tx(CHAIN_ID, "teleport", ISSUER, 1, [])
    bad_shape = make_tx(CHAIN_ID, "mint", ISSUER, 1, [ALICE.public_key])
    gap = mint(3)
    forged = bad_signature(mint(1))
    good = mint(1)
    execution, rejected = chain.build([other_chain, unknown, bad_shape, gap, forged, good, good])
    assert execution.block.txs == (good.raw,)
    assert execution.header.tx_count == 1
    assert [(tx.tx_hash, e.code) for tx, e in rejected] == [
        (other_chain.tx_hash, "wrong_chain"), (unknown.tx_hash, "unknown_kind"), (bad_shape.tx_hash, "bad_payload"),
        (gap.tx_hash, "nonce_gap"), (forged.tx_hash, "bad_signature"), (good.tx_hash, "duplicate_tx")]
    assert all(isinstance(e, InvalidTransaction) for _, e in rejected)


def test_build_respects_max_txs():
    chain = Chain()
    execution, _ = chain.build([mint(1), mint(2), mint(3)], max_txs=2)
    assert execution.header.tx_count == 2


def test_build_verifies_each_signature_exactly_once(monkeypatch):
    calls = []
    original = SignedTx.verify_signatures

    def counting(self):
        calls.append(self.tx_hash)
        return original(self)

    monkeypatch.setattr(SignedTx, "verify_signatures", counting)
    chain = Chain()
    txs = [mint(1), transfer(1), mint(2)]
    execution, _ = chain.build(txs)
    assert sorted(calls) == sorted(tx.tx_hash for tx in txs)
    calls.clear()
    chain.validate(execution.block)
    assert sorted(calls) == sorted(tx.tx_hash for tx in txs)
    calls.clear()
    chain.build(txs, signatures_checked=True)
    assert calls == []


# --- the validator refuses tampered blocks -----------------------------------------------------------------


def tampered(block: Block, **fields) -> Block:
    return Block(dataclasses.replace(block.header, **fields), block.txs)


@pytest.mark.parametrize("field,value,check", [
    ("results_root", b"\x01" * 32, "results_root"),
    ("state_root", b"\x02" * 32, "state_root"),
    ("tx_count", 3, "tx_count"),
    ("chain_id", "other-chain", "chain_id"),
    ("height", 2, "height"),
    ("prev_hash", b"\x03" * 32, "prev_hash"),
    ("validator_set_hash", b"\x04" * 32, "validator_set_hash"),
    ("next_validator_set_hash", b"\x05" * 32, "next_validator_set_hash"),
    ("timestamp_ms", GENESIS_TIME_MS, "timestamp"),
    ("timestamp_ms", GENESIS_TIME_MS - 1, "timestamp"),
])
def test_tampered_header_field_is_refused_by_the_named_check(field, value, check):
    chain = Chain()
    execution, _ = chain.build([mint(1), transfer(1)])
    with pytest.raises(InvalidBlock) as exc:
        chain.validate(tampered(execution.block, **{field: value}), now_ms=GENESIS_TIME_MS + 1000)
    assert check_of(exc) == check
    assert "expected" in exc.value.message or "above the parent" in exc.value.message


def test_caller_cannot_announce_a_validator_set_change_the_state_never_decided():
    # The set hashes are derived from the parent state (issue 11): a proposer passing another set gets the
    # set in force, and a header naming a set nobody decided is refused by validators.
    chain = Chain()
    new_set = b"\x07" * 32
    execution, _ = chain.build([mint(1)], validator_set_hash=new_set, next_validator_set_hash=new_set)
    assert execution.header.validator_set_hash == execution.header.next_validator_set_hash \
        == chain.genesis.validator_set_hash
    with pytest.raises(InvalidBlock) as exc:
        validate_block(chain.state, chain.nodes, chain.head, tampered(execution.block, next_validator_set_hash=new_set),
                       execution.header.timestamp_ms, MAX_FUTURE_MS, next_validator_set_hash=new_set)
    assert check_of(exc) == "next_validator_set_hash"


def with_envelope(block: Block, index: int, raw: bytes) -> Block:
    """``block`` with the envelope at ``index`` replaced by ``raw`` and the header untouched."""
    txs = list(block.txs)
    txs[index] = raw
    return Block(block.header, tuple(txs))


def test_attacker_appending_a_valid_signer_to_a_committed_envelope_is_refused_by_results_root():
    # Same body, same tx hash, every signature valid and admissible (CAROL is ALICE's registered second key):
    # only the envelope bytes differ. The header's results_root binds those bytes, so the altered body cannot
    # pass for the sealed block.
    chain = Chain()
    setup, _ = chain.build([make_tx(CHAIN_ID, "set-second-factor", ALICE, 1, [CAROL.public_key])])
    chain.commit(setup)
    tx = transfer(2, amount=0)
    execution, _ = chain.build([mint(1), tx])
    padded = sign_tx(tx.body, ALICE, CAROL)
    assert padded.tx_hash == tx.tx_hash and padded.raw != tx.raw
    padded.verify_signatures()
    forged = with_envelope(execution.block, 1, padded.raw)
    assert forged.hash == execution.block.hash  # the header alone cannot tell them apart
    with pytest.raises(InvalidBlock) as exc:
        chain.validate(forged)
    assert check_of(exc) == "results_root"


def test_front_runner_appending_an_unregistered_signer_to_a_pending_tx_is_refused_at_admission():
    # Anyone who sees a pending tx can sign its hash with a fresh key; such an envelope never enters a block,
    # so the committed bytes stay the sender's.
    chain = Chain()
    tx = transfer(1, amount=0)
    padded = sign_tx(tx.body, ALICE, CAROL)
    padded.verify_signatures()  # every signature is valid: only admission can tell
    with pytest.raises(InvalidTransaction) as exc:
        check_admissible(chain.state, padded, CHAIN_ID)
    assert exc.value.code == "unexpected_signer"
    assert CAROL.public_key.hex()[:16] in exc.value.message and "no second-factor key" in exc.value.message
    check_admissible(chain.state, tx, CHAIN_ID)  # the sender's own copy is fine


def test_front_runner_cannot_add_a_signer_beside_the_registered_second_key():
    chain = Chain()
    setup, _ = chain.build([make_tx(CHAIN_ID, "set-second-factor", ALICE, 1, [CAROL.public_key])])
    chain.commit(setup)
    body = transfer(2, amount=0).body
    check_admissible(chain.state, sign_tx(body, ALICE, CAROL), CHAIN_ID)  # the registered second key: fine
    for padded in (sign_tx(body, ALICE, BOB), sign_tx(body, ALICE, CAROL, BOB)):
        with pytest.raises(InvalidTransaction) as exc:
            check_admissible(chain.state, padded, CHAIN_ID)
        assert exc.value.code == "unexpected_signer"
        assert CAROL.public_key.hex()[:16] in exc.value.message  # names the key it expected


def test_byzantine_proposer_cannot_commit_an_envelope_with_an_unregistered_signer():
    chain = Chain()
    padded = sign_tx(mint(1).body, ISSUER, CAROL)
    with pytest.raises(InvalidBlock) as exc:
        chain.validate(block_with(chain, [padded]))
    assert check_of(exc) == "tx_admission" and "unexpected_signer" in exc.value.message
    execution, rejected = chain.build([padded])  # an honest proposer skips it
    assert execution.block.txs == () and [e.code for _, e in rejected] == ["unexpected_signer"]


def test_a_signer_valid_when_queued_is_refused_once_a_block_replaced_the_second_key():
    # The check reads the state the tx runs on, even when the mempool verified the signatures before.
    chain = Chain()
    setup, _ = chain.build([make_tx(CHAIN_ID, "set-second-factor", ALICE, 1, [CAROL.public_key])])
    chain.commit(setup)
    cosigned = make_tx(CHAIN_ID, "transfer", ALICE, 3, [BOB.public_key, 0, bytes(32)], CAROL)
    check_admissible(chain.state, cosigned, CHAIN_ID)
    replace = make_tx(CHAIN_ID, "set-second-factor", ALICE, 2, [BOB.public_key], CAROL)
    execution, rejected = chain.build([replace, cosigned], signatures_checked=True)
    assert [r.reason for r in execution.results] == [""]
    assert [(tx.tx_hash, e.code) for tx, e in rejected] == [(cosigned.tx_hash, "unexpected_signer")]


def test_attacker_flipping_a_signature_bit_in_a_committed_envelope_is_refused():
    chain = Chain()
    execution, _ = chain.build([mint(1)])
    raw = bytearray(execution.block.txs[0])
    raw[-1] ^= 0x01  # the last byte of the sender's signature
    with pytest.raises(InvalidBlock) as exc:
        chain.validate(with_envelope(execution.block, 0, bytes(raw)))
    assert check_of(exc) == "tx_admission" and "bad_signature" in exc.value.message


def test_proposer_cannot_build_a_block_not_after_its_parent():
    chain = Chain()
    with pytest.raises(InvalidBlock) as exc:
        chain.build([mint(1)], ts=GENESIS_TIME_MS)
    assert check_of(exc) == "timestamp"


def test_timestamp_too_far_in_the_future_is_refused():
    chain = Chain()
    execution, _ = chain.build([mint(1)], ts=GENESIS_TIME_MS + 60_000)
    with pytest.raises(InvalidBlock) as exc:
        chain.validate(execution.block, now_ms=GENESIS_TIME_MS + 60_000 - MAX_FUTURE_MS - 1)
    assert check_of(exc) == "timestamp" and "ahead of our clock" in exc.value.message
    chain.validate(execution.block, now_ms=GENESIS_TIME_MS + 60_000 - MAX_FUTURE_MS)  # at the bound: fine


def test_block_built_on_another_parent_is_refused():
    chain = Chain()
    first, _ = chain.build([mint(1)])
    chain.commit(first)
    stale, _ = Chain().build([mint(1)], ts=first.header.timestamp_ms + 1)  # also height 1, genesis parent
    with pytest.raises(InvalidBlock) as exc:
        chain.validate(stale.block)
    assert check_of(exc) == "height"


def block_with(chain: Chain, txs: list[SignedTx]) -> Block:
    """A block carrying ``txs`` as-is, with a header a careless proposer would write."""
    execution, _ = chain.build([])
    header = dataclasses.replace(execution.header, tx_count=len(txs))
    return Block(header, tuple(tx.raw for tx in txs))


@pytest.mark.parametrize("txs,check,code", [
    (lambda: [mint(2)], "tx_admission", "nonce_gap"),
    (lambda: [mint(1), mint(1)], "duplicate_tx", "duplicate_tx"),
    (lambda: [bad_signature(mint(1))], "tx_admission", "bad_signature"),
    (lambda: [make_tx("other-chain", "mint", ISSUER, 1, [ALICE.public_key, 1])], "tx_admission", "wrong_chain"),
])
def test_block_with_an_inadmissible_tx_is_refused(txs, check, code):
    chain = Chain()
    with pytest.raises(InvalidBlock) as exc:
        chain.validate(block_with(chain, txs()))
    assert check_of(exc) == check and code in exc.value.message


def test_block_with_undecodable_tx_bytes_is_refused():
    chain = Chain()
    execution, _ = chain.build([])
    block = Block(dataclasses.replace(execution.header, tx_count=1), (b"\xc1",))
    with pytest.raises(InvalidBlock) as exc:
        chain.validate(block)
    assert check_of(exc) == "tx_decode"


# --- mempool admission -------------------------------------------------------------------------------------


def test_check_admissible_accepts_the_next_and_later_nonces():
    chain = Chain()
    check_admissible(chain.state, mint(1), CHAIN_ID)
    check_admissible(chain.state, mint(5), CHAIN_ID)


@pytest.mark.parametrize("make,code", [
    (lambda: make_tx("other-chain", "mint", ISSUER, 1, [ALICE.public_key, 1]), "wrong_chain"),
    (lambda: make_tx(CHAIN_ID, "teleport", ISSUER, 1, []), "unknown_kind"),
    (lambda: make_tx(CHAIN_ID, "transfer", ALICE, 1, [BOB.public_key, 1]), "bad_payload"),
    (lambda: bad_signature(mint(1)), "bad_signature"),
    (lambda: sign_tx(TxBody(CHAIN_ID, "mint", ISSUER.public_key, 1, (ALICE.public_key, 1)), ALICE),
     "bad_signature"),
])
def test_check_admissible_refuses_with_a_stable_code(make, code):
    with pytest.raises(InvalidTransaction) as exc:
        check_admissible(Chain().state, make(), CHAIN_ID)
    assert exc.value.code == code and exc.value.to_dict()["code"] == code


def test_check_admissible_refuses_a_used_nonce():
    chain = Chain()
    execution, _ = chain.build([mint(1)])
    chain.commit(execution)
    with pytest.raises(InvalidTransaction) as exc:
        check_admissible(chain.state, mint(1, amount=7), CHAIN_ID)
    assert exc.value.code == "nonce_too_low"


# --- the overlay -------------------------------------------------------------------------------------------


def test_overlay_rollback_restores_writes_after_the_checkpoint_only():
    base = MemoryState({b"s": codec.encode(5)})
    overlay = Overlay(base)
    set_account(overlay, ALICE.public_key, Account(1, 1))
    mark = overlay.checkpoint()
    set_account(overlay, ALICE.public_key, Account(9, 1))
    overlay.set_state(b"s", None)
    overlay.rollback(mark)
    assert get_account(overlay, ALICE.public_key) == Account(1, 1)
    assert get_supply(overlay) == 5
    assert base.data == {b"s": codec.encode(5)}  # the base is never written


def test_overlay_changes_drop_writes_that_restore_the_base_value():
    base = MemoryState({b"s": codec.encode(5)})
    overlay = Overlay(base)
    overlay.set_state(b"s", codec.encode(6))
    overlay.set_state(b"s", codec.encode(5))
    set_account(overlay, ALICE.public_key, Account(0, 0))  # all-zero account: absent
    set_account(overlay, BOB.public_key, Account(3, 0))
    assert overlay.get_changes() == {b"a" + BOB.public_key: codec.encode([3, 0])}


def test_failure_reason_table_is_stable_on_the_wire():
    # Receipts already issued carry these numbers and names: renumbering or renaming one breaks them.
    assert [(r.status, r.name) for r in reasons.ALL_REASONS][:6] == [
        (1, "unauthorized"), (2, "insufficient_balance"), (3, "mint_cap_exceeded"), (4, "invalid_amount"),
        (5, "self_transfer"), (6, "memo_too_long")]
    assert all(r.message.endswith(".") and len(r.message) > 20 for r in reasons.ALL_REASONS)
    with pytest.raises(ValueError, match="unknown admission code"):
        reasons.invalid_tx("nonce_bad", "x")


def test_blocks_execute_and_commit_on_a_leveldb_store(tmp_path):
    # The node's path: the Store is both the state reader and the SMT node reader.
    from ledger.block import make_seal
    from ledger.storage import Store

    genesis = make_genesis()
    g_block, g_exec = genesis_block(genesis)
    with Store.open(tmp_path / "db") as store:
        store.commit_block(g_block, (), [], g_exec.state_writes, g_exec.smt_nodes)
        parent = g_block.header
        for height, txs in ((1, [mint(1), transfer(1, amount=30)]), (2, [transfer(2, amount=500), mint(2, to=BOB)])):
            built, rejected = build_block(store, store, parent, txs, parent.timestamp_ms + 1,
                                          VALIDATORS[0].public_key)
            assert rejected == [] and built.header.height == height
            checked = validate_block(store, store, parent, built.block, parent.timestamp_ms + 1, 0,
                                     genesis.validator_set_hash)
            seals = [make_seal(k, CHAIN_ID, height, built.block.hash) for k in VALIDATORS[:3]]
            store.commit_block(checked.block, seals, checked.results, checked.state_writes, checked.smt_nodes)
            parent = checked.header
        assert get_account(store, ALICE.public_key) == Account(70, 2)  # the failed transfer still used nonce 2
        assert get_account(store, BOB.public_key) == Account(130, 0)
        assert get_supply(store) == 200
        assert parent.state_root == compute_root(dict(store.iter_state()))


def test_a_step_that_writes_then_fails_leaves_only_the_nonce_bump(monkeypatch):
    # Future kinds may write before a later check fails; the executor must undo those writes.
    from ledger import process
    from ledger.process.common import process_credit
    from ledger.reasons import TxFailure

    def process_greedy(ctx, tx):
        process_credit(ctx.state, ctx.sender, 1_000)
        raise TxFailure(reasons.UNAUTHORIZED, "wrote first, then refused")

    spec = process.KindSpec("greedy", lambda payload: tuple(payload), process_greedy)
    monkeypatch.setitem(process.KINDS, "greedy", spec)
    chain = Chain()
    execution, rejected = chain.build([make_tx(CHAIN_ID, "greedy", ALICE, 1, [])])
    assert rejected == [] and [(r.status, r.reason) for r in execution.results] == [(1, "unauthorized")]
    assert execution.state_writes == {b"a" + ALICE.public_key: codec.encode([0, 1])}
