"""Fuzzing the ledger's decoders and verifiers: any input raises only ``LedgerError`` (never anything else).

The canonical codec (decode, and encode of any Python value), the tx decoder, admission of signed txs of every
kind with arbitrary payloads, the receipt verifier (JSON and compact) and the account state-proof verifier get
random and mutated input; the seeds are valid encodings
and documents, so mutations reach deep into each format.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ledger import codec
from ledger.chain import check_admission
from ledger.errors import LedgerError, ReceiptError
from ledger.process import KINDS
from ledger.receipt import build_receipt, verify
from ledger.receipt_compact import decode_compact, encode_compact
from ledger.state import MemoryState
from ledger.state_proof import verify_state_proof
from ledger.tx import decode_tx, make_tx
from node import reads
from tests.fuzz.mutations import FUZZ, JSON_VALUES, hostile_bytes, mutated_doc
from tests.node.local_chain import CHAIN, LocalChain, play_story
from tests.receipt_fixtures import (make_block, make_change, make_chain, make_genesis, new_validator_keys,
                                    validator_keys)
from tests.strategies import ALICE, BOB, ISSUER

CODEC_SEEDS = [codec.encode(v) for v in (0, -1, 2**64 - 1, -(2**63), b"", b"\x00" * 40, "é" * 20, [], [[[]]],
                                          [1, b"ab", "cd", [2**32, [b"x" * 300]]], ["x" * 70000][:1])]
TX_SEEDS = [make_tx("carecoin-test", "transfer", ALICE, 3, [BOB.public_key, 5, bytes(32)]).raw,
            make_tx("carecoin-test", "mint", ISSUER, 1, [ALICE.public_key, 2**63]).raw,
            make_tx("carecoin-test", "transfer", ALICE, 4, [BOB.public_key, 1, bytes(32)], BOB).raw]
ANY_VALUE = st.recursive(st.one_of(st.integers(-(2**70), 2**70), st.binary(max_size=40), st.text(max_size=20),
                                   st.none(), st.booleans(), st.floats(),
                                   st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=4)),
                         lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                                                 st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                         max_leaves=16)


@FUZZ
@given(hostile_bytes(CODEC_SEEDS))
def test_the_canonical_decoder_raises_only_decode_errors(data):
    try:
        value = codec.decode(data)
    except LedgerError:
        return
    assert codec.encode(value) == data  # what decodes is canonical: it re-encodes to the same bytes


@FUZZ
@given(ANY_VALUE)
def test_the_canonical_encoder_refuses_what_it_cannot_encode_with_an_encode_error(value):
    try:
        raw = codec.encode(value)
    except LedgerError:
        return
    codec.decode(raw)


def test_a_string_with_a_lone_surrogate_has_no_canonical_encoding_and_says_so():
    with pytest.raises(LedgerError, match="UTF-8"):
        codec.encode(["name", "\ud800"])


@FUZZ
@given(hostile_bytes(TX_SEEDS))
def test_the_tx_decoder_raises_only_ledger_errors(data):
    try:
        tx = decode_tx(data)
    except LedgerError:
        return
    assert tx.raw == data


LAYOUT_2_FILES = sorted((Path(__file__).resolve().parents[1] / "ledger" / "data").glob("receipt_layout2*.bin"))


@pytest.fixture(scope="module")
def receipts():
    chain = make_chain((1, 3, 6))
    out = [build_receipt(sb.block, sb.results, i, sb.seals) for sb in chain for i in range(len(sb.results))]
    change = make_change(1, validator_keys(), new_validator_keys(4), signers=3)
    after = make_block(4, 2, keys=new_validator_keys(4), signers=3)
    out.append(build_receipt(after.block, after.results, 1, after.seals, [change]))
    # layout-3 seeds (what encode_compact writes, one with a validator-set change) and stored layout-2 files
    seeds = [encode_compact(d) for d in out[:4] + out[-1:]] + [f.read_bytes() for f in LAYOUT_2_FILES]
    return out, make_genesis(), seeds


@FUZZ
@given(data=st.data())
def test_the_receipt_verifier_raises_only_ledger_errors_on_mutated_json(receipts, data):
    docs, genesis, _ = receipts
    doc = data.draw(mutated_doc(data.draw(st.sampled_from(docs))))
    try:
        verify(doc, genesis)
    except LedgerError:
        return
    json.dumps(doc)  # a document that verifies is plain JSON


@FUZZ
@given(data=st.data())
def test_the_compact_receipt_decoder_raises_only_ledger_errors(receipts, data):
    _, genesis, compact = receipts
    raw = data.draw(hostile_bytes(compact, max_size=64))
    try:
        receipt = decode_compact(raw)
    except ReceiptError as exc:
        assert exc.check in ("format", "version")  # malformed bytes of any shape: a named refusal, nothing else
        return
    if raw[:1] == b"\x9a" and raw[1:2] == b"\x03":  # layout 3: one encoding per receipt
        assert encode_compact(receipt) == raw
    try:
        verify(receipt, genesis)
    except LedgerError:
        return


def _replace_at(value, path: list[int], new):
    """``value`` with the element at ``path`` (indexes into nested arrays) replaced by ``new``."""
    if not path:
        return new
    out = list(value)
    out[path[0]] = _replace_at(out[path[0]], path[1:], new)
    return out


@FUZZ
@given(data=st.data())
def test_a_compact_receipt_with_any_element_replaced_by_any_value_is_decoded_or_refused_by_name(receipts, data):
    """Well-formed msgpack of the wrong shape (any field, at any depth, of any type or size) is a "format" or
    "version" error naming it; what decodes re-encodes to the same bytes (layout 3)."""
    _, genesis, compact = receipts
    seed = data.draw(st.sampled_from(compact))
    obj = codec.decode(seed)
    path, node = [], obj
    while isinstance(node, list) and node and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(node) - 1))
        path.append(i)
        node = node[i]
    mutated = _replace_at(obj, path, data.draw(CANONICAL_VALUES))
    raw = codec.encode(mutated)
    try:
        receipt = decode_compact(raw)
    except ReceiptError as exc:
        assert exc.check in ("format", "version"), exc.message
        return
    if mutated[0] == 3:
        assert encode_compact(receipt) == raw
    try:
        verify(receipt, genesis)
    except LedgerError:
        return


@pytest.fixture(scope="module")
def state_proofs(tmp_path_factory):
    c = LocalChain(tmp_path_factory.mktemp("proofs") / "db")
    story = play_story(c)
    docs = [reads.build_account_proof(c.store, CHAIN, k.public_key) for k in (story["alice"], story["clerk"])]
    c.store.close()
    return docs, c.genesis


@FUZZ
@given(data=st.data())
def test_the_state_proof_verifier_raises_only_ledger_errors_on_mutated_documents(state_proofs, data):
    docs, genesis = state_proofs
    doc = data.draw(st.one_of(mutated_doc(data.draw(st.sampled_from(docs))), JSON_VALUES))
    try:
        verify_state_proof(doc, genesis)
    except LedgerError:
        return


CANONICAL_VALUES = st.recursive(
    st.one_of(st.integers(-(2**63), 2**64 - 1), st.binary(max_size=40), st.sampled_from([b"\x01" * 32, b""]),
              st.text(max_size=70), st.sampled_from(["EUR", "complaint", "staff", "north", "ticket"])),
    lambda inner: st.lists(inner, max_size=5), max_leaves=12)


@settings(FUZZ, max_examples=FUZZ.max_examples // 2)  # each example signs a tx
@given(kind=st.sampled_from(sorted(KINDS) + ["no-such-kind"]), payload=st.lists(CANONICAL_VALUES, max_size=7),
       nonce=st.integers(0, 2**64 - 1))
def test_admission_of_a_signed_tx_of_any_kind_with_any_payload_raises_only_ledger_errors(kind, payload, nonce):
    try:
        tx = make_tx("carecoin-test", kind, ALICE, nonce, payload)
        check_admission(MemoryState({}), decode_tx(tx.raw), "carecoin-test", exact_nonce=False)
    except LedgerError:
        return
