"""The walk of validator-set changes, in receipts and state proofs: hand-made chains whose set changes (a header
announcing the new set, sealed by the old one), the right walk accepted and every wrong one refused by name."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from ledger import codec
from ledger.block import CommitSeal, make_seal, validator_set_hash
from ledger.errors import ReceiptError
from ledger.receipt import build_receipt, verify
from ledger.receipt_compact import decode_compact, encode_compact
from ledger.smt import EMPTY_ROOT, MemoryNodes, SparseMerkleTree
from ledger.state_proof import StateProofError, compute_account_keys, verify_state_proof
from ledger.validator_sets import (
    ValidatorSetChange, get_validator_set_changes, verify_sealed_header, verify_validator_set_changes,
)
from tests.receipt_fixtures import (
    CHAIN_ID, make_block, make_change, make_genesis, new_validator_keys, validator_keys,
)

OLD = validator_keys(4)
MID = new_validator_keys(5)  # the set after the first change: 5 validators, quorum 4
NEW = new_validator_keys(4, first=8)  # the set after the second change


def pks(keys) -> list[bytes]:
    return [k.public_key for k in keys]


@pytest.fixture(scope="module")
def genesis():
    return make_genesis(OLD)


@pytest.fixture(scope="module")
def walk():
    """OLD seals 1..3 and announces MID at 3; MID seals 4..6 and announces NEW at 6; NEW seals 7 on."""
    return [make_change(3, OLD, MID, signers=3), make_change(6, MID, NEW, signers=4)]


def receipt_at(height: int, keys, changes, *, signers=None, next_keys=None) -> dict:
    """A receipt at ``height`` sealed by ``keys`` carrying ``changes`` as given (right or wrong: the builder
    refuses a list out of order or not below the height, an attacker's file need not)."""
    sb = make_block(height, 3, keys=keys, signers=signers, next_keys=next_keys)
    receipt = build_receipt(sb.block, sb.results, 1, sb.seals)
    receipt["validator_set_changes"] = [c.to_json() for c in changes]
    return receipt


def check_of(receipt, genesis) -> str:
    with pytest.raises(ReceiptError) as info:
        verify(receipt, genesis)
    return info.value.check


def with_entry(change: ValidatorSetChange, **fields) -> ValidatorSetChange:
    """``change`` with header fields replaced (seals kept: they no longer match unless re-made)."""
    header = dataclasses.replace(change.header, **fields)
    return ValidatorSetChange(header, header.encode(), change.commit, change.validators)


def resealed(change: ValidatorSetChange, keys, header=None) -> ValidatorSetChange:
    """``change`` (or ``header``) sealed by ``keys``."""
    h = header or change.header
    seals = tuple(make_seal(k, h.chain_id, h.height, h.hash()) for k in keys)
    return ValidatorSetChange(h, h.encode(), seals, change.validators)


# ------------------------------------------------------------------------------------------------ accepted


def test_a_receipt_after_two_changes_verifies_by_walking_them_from_the_genesis_set(walk, genesis):
    sb = make_block(9, 3, keys=NEW, signers=3)
    receipt = build_receipt(sb.block, sb.results, 1, sb.seals, walk)
    v = verify(receipt, genesis)
    assert v.set_changes == 2 and v.signers == tuple(pks(NEW[:3]))
    assert len(receipt["validator_set_changes"]) == 2
    assert receipt["validator_set_changes"][0]["validators"] == [k.hex() for k in pks(MID)]


def test_the_walk_survives_the_compact_form(walk, genesis):
    receipt = receipt_at(9, NEW, walk)
    raw = encode_compact(receipt)
    assert codec.decode(raw)[9][1][2] == b"".join(pks(NEW))  # layout 3: the second change's new keys, concatenated
    assert verify(decode_compact(raw), genesis).set_changes == 2


def test_each_height_is_sealed_by_the_set_in_force_there(walk, genesis):
    # the announcing header is the last the old set seals; the new set seals from the next height
    assert verify(receipt_at(3, OLD, [], next_keys=MID), genesis).signers == tuple(pks(OLD))
    assert verify(receipt_at(4, MID, walk[:1]), genesis).set_changes == 1
    assert verify(receipt_at(6, MID, walk[:1], next_keys=NEW), genesis).set_changes == 1
    assert verify(receipt_at(7, NEW, walk), genesis).set_changes == 2


def test_the_walk_returns_the_set_in_force(walk):
    assert verify_validator_set_changes(CHAIN_ID, pks(OLD), walk, 9) == tuple(pks(NEW))
    assert verify_validator_set_changes(CHAIN_ID, pks(OLD), [], 9) == tuple(pks(OLD))


def test_a_node_lists_no_changes_while_the_set_has_never_changed():
    from ledger.chain import genesis_state
    from ledger.state import MemoryState
    from tests.strategies import make_genesis

    assert get_validator_set_changes(MemoryState(genesis_state(make_genesis())), 10**6) == ()


# ------------------------------------------------------------------------------------------------ refused


def test_attacker_reordering_the_changes_is_refused(walk, genesis):
    assert check_of(receipt_at(9, NEW, walk[::-1]), genesis) == "validator_set_change_order"
    assert check_of(receipt_at(9, NEW, [walk[0], walk[0], walk[1]]), genesis) == "validator_set_change_order"


def test_a_change_from_another_chain_is_refused(genesis):
    foreign = make_change(3, OLD, MID, chain_id="carecoin-elsewhere")
    assert check_of(receipt_at(5, MID, [foreign]), genesis) == "validator_set_change_chain_id"


def test_a_change_at_or_above_the_receipts_height_is_refused(walk, genesis):
    receipt = receipt_at(5, MID, walk[:1])
    receipt["validator_set_changes"].append(walk[1].to_json())  # height 6 >= 5
    assert check_of(receipt, genesis) == "validator_set_change_height"
    same = receipt_at(3, OLD, [], next_keys=MID)
    same["validator_set_changes"] = [walk[0].to_json()]  # height 3 is the receipt's own height
    assert check_of(same, genesis) == "validator_set_change_height"


def test_a_change_not_sealed_by_the_set_in_force_is_refused_by_the_set_hash(genesis):
    # a change made by a set the verifier never saw come into force (skips the first change)
    skipping = make_change(6, MID, NEW, signers=4)
    assert check_of(receipt_at(9, NEW, [skipping]), genesis) == "validator_set_change_set_hash"


def test_a_change_whose_validators_are_not_the_announced_set_is_refused(walk, genesis):
    swapped = ValidatorSetChange(walk[0].header, walk[0].header_raw, walk[0].commit, tuple(pks(NEW)))
    assert check_of(receipt_at(9, NEW, [swapped]), genesis) == "validator_set_change_next_hash"
    reordered = ValidatorSetChange(walk[0].header, walk[0].header_raw, walk[0].commit, tuple(pks(MID))[::-1])
    assert check_of(receipt_at(5, MID, [reordered]), genesis) == "validator_set_change_next_hash"


def test_an_entry_that_changes_nothing_is_refused(genesis):
    no_change = make_change(3, OLD, OLD)
    assert no_change.header.next_validator_set_hash == no_change.header.validator_set_hash
    assert check_of(receipt_at(5, OLD, [no_change]), genesis) == "validator_set_change_no_change"


def test_an_entry_with_a_repeated_or_empty_new_set_is_refused(walk, genesis):
    doubled = make_change(3, OLD, [MID[0], MID[0], MID[1]])
    assert check_of(receipt_at(5, MID, [doubled]), genesis) == "validator_set_change_validators"


def test_a_change_sealed_by_less_than_a_quorum_of_the_old_set_is_refused(genesis):
    weak = make_change(3, OLD, MID, signers=2)
    assert check_of(receipt_at(5, MID, [weak]), genesis) == "validator_set_change_quorum"


def test_attacker_counting_one_old_validator_twice_is_refused(walk, genesis):
    twice = ValidatorSetChange(walk[0].header, walk[0].header_raw,
                               walk[0].commit[:2] + walk[0].commit[:1], walk[0].validators)
    assert check_of(receipt_at(5, MID, [twice]), genesis) == "validator_set_change_duplicate_validator"


def test_a_change_sealed_by_the_incoming_set_itself_is_refused(walk, genesis):
    # the new validators cannot vote themselves in: only members of the set in force count
    self_elected = resealed(walk[0], MID[:4])
    assert check_of(receipt_at(5, MID, [self_elected]), genesis) == "validator_set_change_unknown_validator"


def test_a_change_with_a_forged_seal_is_refused(walk, genesis):
    seal = walk[0].commit[1]
    forged = ValidatorSetChange(walk[0].header, walk[0].header_raw,
                                (walk[0].commit[0], CommitSeal(seal.validator, bytes(64)), walk[0].commit[2]),
                                walk[0].validators)
    assert check_of(receipt_at(5, MID, [forged]), genesis) == "validator_set_change_signature"


def test_an_entry_header_edited_after_sealing_is_refused(walk, genesis):
    edited = with_entry(walk[0], timestamp_ms=walk[0].header.timestamp_ms + 1)
    assert check_of(receipt_at(5, MID, [edited]), genesis) == "validator_set_change_signature"


def test_old_set_sealing_a_header_after_the_change_is_refused(walk, genesis):
    # The removed validators keep signing blocks that name their own set: with the change shown, refused.
    forked = receipt_at(5, OLD, walk[:1])
    assert check_of(forked, genesis) == "validator_set_hash"


def test_a_receipt_after_a_change_that_omits_it_is_refused(walk, genesis):
    assert check_of(receipt_at(5, MID, []), genesis) == "validator_set_hash"


def test_a_header_naming_the_new_set_but_sealed_by_old_validators_is_refused(walk, genesis):
    receipt = receipt_at(5, MID, walk[:1])
    old_seals = receipt_at(5, OLD, [])["commit"]  # seals of another header: the signer is not in the new set
    receipt["commit"] = receipt["commit"][:3] + old_seals[:1]
    assert check_of(receipt, genesis) == "commit_unknown_validator"


def test_a_receipt_sealed_by_less_than_a_quorum_of_the_new_set_is_refused(walk, genesis):
    assert check_of(receipt_at(5, MID, walk[:1], signers=3), genesis) == "commit_quorum"  # 5 need 4


def test_build_refuses_changes_at_or_above_the_block_height_or_out_of_order(walk):
    sb = make_block(5, 2, keys=MID)
    for changes in ([walk[1]], walk[::-1]):
        with pytest.raises(ReceiptError) as info:
            build_receipt(sb.block, sb.results, 0, sb.seals, changes)
        assert info.value.check == "build"


def test_a_malformed_entry_is_a_format_error(walk, genesis):
    receipt = receipt_at(5, MID, walk[:1])
    for bad in ({"header": walk[0].header_raw.hex()}, {**walk[0].to_json(), "validators": ["00"]},
                {**walk[0].to_json(), "commit": {}}, {**walk[0].to_json(), "extra": 1}):
        edited = copy.deepcopy(receipt)
        edited["validator_set_changes"] = [bad]
        assert check_of(edited, genesis) == "format"


# --------------------------------------------------------------------------------------------- state proofs


def state_proof_at(height: int, keys, changes, account: bytes) -> dict:
    """A state proof of ``account`` (absent: every key proven absent) under a header sealed by ``keys``."""
    tree = SparseMerkleTree(MemoryNodes())
    root, _ = tree.update(EMPTY_ROOT, {})
    sb = make_block(height, 1, keys=keys)
    header = dataclasses.replace(sb.block.header, state_root=root)
    seals = [make_seal(k, CHAIN_ID, height, header.hash()) for k in keys]
    return {"version": 2, "chain_id": CHAIN_ID, "account": account.hex(), "height": height,
            "header": header.encode().hex(), "block_hash": header.hash().hex(),
            "commit": [{"validator": s.validator.hex(), "signature": s.signature.hex()} for s in seals],
            "validator_set_changes": [c.to_json() for c in changes],
            "values": [{"key": k.hex(), "value": None, "proof": tree.prove(root, k).encode().hex()}
                       for k in compute_account_keys(account)]}


def test_a_state_proof_after_a_change_verifies_through_the_same_walk(walk, genesis):
    proven = verify_state_proof(state_proof_at(8, NEW, walk, b"\x42" * 32), genesis)
    assert proven.balance == 0 and proven.signers == tuple(pks(NEW))


@pytest.mark.parametrize("changes,keys,check", [
    (lambda w: w[::-1], NEW, "validator_set_change_order"),
    (lambda w: [], NEW, "validator_set_hash"),
    (lambda w: [make_change(3, OLD, MID, signers=2), w[1]], NEW, "validator_set_change_quorum"),
    (lambda w: [make_change(3, OLD, OLD)], OLD, "validator_set_change_no_change"),
    (lambda w: w[:1], OLD, "validator_set_hash"),
])
def test_a_state_proof_with_a_wrong_walk_is_refused_by_the_same_check(walk, genesis, changes, keys, check):
    doc = state_proof_at(8, keys, changes(walk), b"\x42" * 32)
    with pytest.raises(StateProofError) as info:
        verify_state_proof(doc, genesis)
    assert info.value.check == check


def test_a_version_1_state_proof_is_refused_with_a_clear_message(walk, genesis):
    doc = state_proof_at(2, OLD, [], b"\x42" * 32)
    doc["version"] = 1
    with pytest.raises(StateProofError, match="version 1 state proofs are no longer accepted"):
        verify_state_proof(doc, genesis)


def test_receipts_and_state_proofs_share_one_check_of_the_sealed_header(walk):
    sb = make_block(8, 1, keys=NEW)
    signers = verify_sealed_header(CHAIN_ID, pks(OLD), walk, sb.block.header, sb.block.hash, sb.seals[:3])
    assert signers == tuple(pks(NEW[:3]))
    assert validator_set_hash(pks(NEW)) == sb.block.header.validator_set_hash
