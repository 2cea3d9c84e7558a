"""Compact receipt layouts: layout 3 carries only what cannot be derived without the genesis, decodes to the exact
version-2 JSON (byte-identical for every valid receipt), refuses to "repair" a receipt whose derived fields were
tampered with, and old layout-2 files (written by the code before layout 3) still read and verify."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ledger import codec
from ledger.block import Block, Header, make_seal, quorum, validator_set_hash
from ledger.errors import ReceiptError
from ledger.hashing import sha256
from ledger.merkle import root as merkle_root
from ledger.receipt import KEYS, V1_REFUSED, _parse, build_receipt, verify
from ledger.receipt_compact import LAYOUT_3_FIELDS, decode_compact, encode_compact, load_receipt, save_receipt
from ledger.results import TxResult, compute_leaves
from ledger.tx import make_tx
from tests.ledger.test_receipt import TAMPERS, reencode_header, reencode_leaf
from tests.receipt_fixtures import (
    GENESIS_TIME_MS, customer_key, make_block, make_change, make_genesis, new_validator_keys, validator_keys,
)

DATA = Path(__file__).resolve().parent / "data"
# Written by encode_compact as of commit 8d38e8a (layout 2, the last code before layout 3), with the JSON each
# stands for: tx 5 of a 13-tx block at height 6 sealed by 3 of 4 validators; tx 2 of a 5-tx block at height 9
# sealed by a new set after one validator-set change announced at height 4.
LAYOUT_2 = ("receipt_layout2", "receipt_layout2_one_change")


def core(receipt: dict) -> dict:
    return {k: receipt[k] for k in KEYS}


def as_json(receipt: dict) -> str:
    return json.dumps(core(receipt), indent=2)


def format_error(raw: bytes) -> str:
    with pytest.raises(ReceiptError) as info:
        decode_compact(raw)
    assert info.value.check == "format", info.value.message
    return info.value.message


@pytest.fixture(scope="module")
def sealed():
    return make_block(42, 8, signers=3)  # proposer = validator 2 (42 % 4), one of the 3 signers


@pytest.fixture(scope="module")
def base(sealed):
    return build_receipt(sealed.block, sealed.results, 4, sealed.seals)


# ----------------------------------------------------------------------------------------------- layout 3


def test_layout_3_is_the_array_of_underived_fields_led_by_3(base, sealed):
    raw = encode_compact(base)
    obj = codec.decode(raw)
    assert len(obj) == len(LAYOUT_3_FIELDS) == 10
    layout, tx, status, reason, events, leaf_index, path, header, commit, changes = obj
    assert layout == 3
    assert tx == bytes.fromhex(base["tx"]) and events == bytes.fromhex(base["events"])
    assert [status, reason] == [base["result"]["status"], base["result"]["reason"]] and leaf_index == 4
    assert path == b"".join(bytes.fromhex(h) for h in base["audit_path"])
    assert header == sealed.block.header.to_list()[:9]  # next_validator_set_hash == validator_set_hash: left out
    proposer = sealed.block.header.proposer
    assert commit == [s.signature if s.validator == proposer else s.validator + s.signature for s in sealed.seals]
    assert sorted(len(s) for s in commit) == [64, 96, 96]  # the proposer's seal is its signature alone
    assert changes == []
    # nothing the verifier derives is carried: no leaf, tx_hash, block_hash, nor the chain id outside the header
    for derived in ("leaf", "tx_hash", "block_hash"):
        assert bytes.fromhex(base[derived]) not in raw
    assert raw.count(base["chain_id"].encode()) == 2  # the header's and the tx body's, no third copy


def test_layout_3_round_trips_to_the_byte_identical_json_and_back(base, sealed):
    raw = encode_compact(base)
    decoded = decode_compact(raw)
    assert list(decoded) == list(KEYS)
    assert _parse(decoded)  # decoding checks the JSON form's rules from the typed values: the dict passes them
    assert as_json(decoded) == as_json(base)
    assert encode_compact(decoded) == raw
    assert verify(decoded, make_genesis()).block_hash == sealed.block.hash


def test_layout_3_is_smaller_than_layout_2_by_the_derived_fields_at_least(base):
    layout_2 = _layout_2_bytes(base)
    assert decode_compact(layout_2) == core(base)
    saved = len(layout_2) - len(encode_compact(base))
    derived = sum(len(codec.encode(bytes.fromhex(base[k]))) for k in ("leaf", "tx_hash", "block_hash"))
    assert saved >= derived + 32  # and 32 more: the next_validator_set_hash left out


def _layout_2_bytes(receipt: dict) -> bytes:
    """The layout-2 array, as the code before layout 3 wrote it (checked against the stored fixtures below)."""
    b = lambda k: bytes.fromhex(receipt[k])  # noqa: E731
    return codec.encode([
        2, receipt["chain_id"], b("tx"), b("tx_hash"), [receipt["result"]["status"], receipt["result"]["reason"]],
        b("events"), b("leaf"), receipt["leaf_index"], [bytes.fromhex(h) for h in receipt["audit_path"]],
        b("header"), b("block_hash"),
        [[bytes.fromhex(s["validator"]), bytes.fromhex(s["signature"])] for s in receipt["commit"]],
        [[bytes.fromhex(c["header"]), [[bytes.fromhex(s["validator"]), bytes.fromhex(s["signature"])]
                                       for s in c["commit"]], [bytes.fromhex(v) for v in c["validators"]]]
         for c in receipt["validator_set_changes"]],
    ])


# ------------------------------------------------------------------------- every valid receipt round-trips

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
FIELD = st.one_of(st.integers(0, 2**64 - 1), st.integers(-(2**63), -1), st.binary(max_size=40), TEXT)


@st.composite
def valid_receipts(draw):
    """A valid receipt of any shape: chain id, validator sets and 0-2 changes, seal subsets in any order (the
    proposer sealing or not), 1-12 txs, any status, reason and events, any index."""
    chain_id = draw(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=16))
    sets = [validator_keys(draw(st.integers(1, 5)))]
    for i in range(draw(st.integers(0, 2))):
        sets.append(new_validator_keys(draw(st.integers(1, 4)), first=8 * i))
    changes = [make_change(2 + i, old, new, chain_id=chain_id, signers=quorum(len(old)))
               for i, (old, new) in enumerate(zip(sets, sets[1:]))]
    keys = sets[-1]
    height = 2 + len(changes) + draw(st.integers(0, 20))
    count = draw(st.integers(1, 12))
    txs = [make_tx(chain_id, "transfer", customer_key(i), height, [customer_key(i + 1).public_key, i, bytes(32)])
           for i in range(count)]
    results = [TxResult(t.tx_hash, draw(st.sampled_from([0, 1, 7, 2**64 - 1])), draw(TEXT),
                        tuple([draw(TEXT), *draw(st.lists(FIELD, max_size=3))]
                              for _ in range(draw(st.integers(0, 2)))))
               for t in txs]
    vsh = validator_set_hash([k.public_key for k in keys])
    header = Header(chain_id, height, sha256(b"prev"), GENESIS_TIME_MS + height, keys[height % len(keys)].public_key,
                    count, merkle_root(compute_leaves(results, [t.raw for t in txs])), sha256(b"state"), vsh,
                    draw(st.sampled_from([vsh, sha256(b"a next set")])))
    block = Block(header, tuple(t.raw for t in txs))
    signers = draw(st.permutations(keys))[:draw(st.integers(quorum(len(keys)), len(keys)))]
    seals = [make_seal(k, chain_id, height, block.hash) for k in signers]
    receipt = build_receipt(block, results, draw(st.integers(0, count - 1)), seals, changes)
    return receipt, make_genesis(sets[0], chain_id)


@settings(max_examples=60, deadline=None)
@given(valid_receipts())
def test_every_valid_receipt_round_trips_json_compact_json_byte_identical(drawn):
    receipt, genesis = drawn
    verify(receipt, genesis)  # the drawn receipt is valid
    raw = encode_compact(receipt)
    decoded = decode_compact(raw)
    assert as_json(decoded) == as_json(receipt)
    assert encode_compact(decoded) == raw
    assert verify(decoded, genesis).tx_hash.hex() == receipt["tx_hash"]


# ---------------------------------------------------------------- derived fields are never "repaired"


def _flip(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


DERIVED_TAMPERS = {
    "tx_hash field changed": (lambda r: r.update(tx_hash=_flip(r["tx_hash"])), "tx_hash is "),
    "block_hash field changed": (lambda r: r.update(block_hash=_flip(r["block_hash"])), "block_hash is "),
    "chain_id relabelled": (lambda r: r.update(chain_id="carecoin-other"), "chain_id is 'carecoin-other'"),
    "leaf status changed": (lambda r: r.update(leaf=reencode_leaf(r, status=9)), "leaf is status 9"),
    "leaf events_hash changed": (lambda r: r.update(leaf=reencode_leaf(r, events_hash=b"\x01" * 32)),
                                 "leaf is events_hash 0101"),
    "leaf envelope_hash changed": (lambda r: r.update(leaf=reencode_leaf(r, envelope_hash=b"\x02" * 32)),
                                   "leaf is envelope_hash 0202"),
    "leaf of another tx": (lambda r: r.update(leaf=codec.encode([b"\x03" * 32, *codec.decode(
        bytes.fromhex(r["leaf"]))[1:]]).hex()), "leaf is for tx 0303"),
    "result changed (leaf kept)": (lambda r: r["result"].update(status=3), "the result is status 3"),
    "events changed (leaf kept)": (lambda r: r.update(events=codec.encode([]).hex()), "the events hash to"),
    "header edited (block_hash kept)": (lambda r: r.update(header=reencode_header(r, height=99)),
                                        "the header hashes to"),
}


@pytest.mark.parametrize("name", list(DERIVED_TAMPERS))
def test_a_receipt_with_a_tampered_derived_field_is_refused_by_name_not_repaired(name, base, tmp_path):
    mutate, says = DERIVED_TAMPERS[name]
    receipt = copy.deepcopy(base)
    mutate(receipt)
    with pytest.raises(ReceiptError) as info:
        encode_compact(receipt)
    assert info.value.check == "format" and says in info.value.message
    assert "has no compact form" in info.value.message
    path = tmp_path / "r.bin"
    with pytest.raises(ReceiptError):
        save_receipt(path, receipt, compact=True)
    assert not path.exists()  # nothing written


@pytest.mark.parametrize("name", list(TAMPERS))
def test_every_tampered_receipt_is_refused_by_the_compact_form_or_carried_exactly(name, base):
    """A tampered receipt either has no compact form (a derived field disagrees) or travels through it unchanged,
    so the verifier names the same failing check for the file as for the JSON."""
    mutate, expected = TAMPERS[name]
    receipt = copy.deepcopy(base)
    mutate(receipt)
    try:
        raw = encode_compact(receipt)
    except ReceiptError as exc:
        assert exc.check in ("format", "version")
        return
    decoded = decode_compact(raw)
    assert as_json(decoded) == as_json(receipt)
    with pytest.raises(ReceiptError) as info:
        verify(decoded, make_genesis())
    assert info.value.check == expected


# ------------------------------------------------------------------------- one encoding, clear refusals


def _relayout(base: dict, **fields) -> bytes:
    obj = codec.decode(encode_compact(base))
    for name, value in fields.items():
        obj[LAYOUT_3_FIELDS.index(name)] = value(obj) if callable(value) else value
    return codec.encode(obj)


def test_a_second_encoding_of_the_same_receipt_is_refused(base, sealed):
    full_header = _relayout(base, header=sealed.block.header.to_list())
    assert "10 fields with next_validator_set_hash equal" in format_error(full_header)
    proposer = sealed.block.header.proposer
    full_seal = _relayout(base, commit=lambda o: [s if len(s) == 96 else proposer + s for s in o[8]])
    assert "the proposer's seal written in full" in format_error(full_seal)


BAD_LAYOUT_3 = {
    "one field short": (lambda o: o[:-1], "layout 3 must be an array of 10 fields"),
    "one field more": (lambda o: o + [[]], "got 11"),
    "tx not bin": (lambda o: o[:1] + ["tx"] + o[2:], "tx must be bytes (bin), got str"),
    "tx not an envelope": (lambda o: o[:1] + [b"\x90"] + o[2:], "tx is not a canonical transaction envelope"),
    "status negative": (lambda o: o[:2] + [-1] + o[3:], "status must be a non-negative integer"),
    "reason bytes": (lambda o: o[:3] + [b"x"] + o[4:], "reason must be a string"),
    "events str": (lambda o: o[:4] + ["e"] + o[5:], "events must be bytes"),
    "leaf_index bytes": (lambda o: o[:5] + [b"\x01"] + o[6:], "leaf_index must be a non-negative integer"),
    "audit_path cut": (lambda o: o[:6] + [o[6][:-1]] + o[7:], "expected a multiple of 32"),
    "audit_path too long": (lambda o: o[:6] + [b"\x00" * 32 * 65] + o[7:], "at most 64"),
    "audit_path as an array": (lambda o: o[:6] + [[o[6][:32]]] + o[7:], "audit_path must be bytes"),
    "header 8 fields": (lambda o: o[:7] + [o[7][:8]] + o[8:], "got 8 fields"),
    "header bytes": (lambda o: o[:7] + [codec.encode(o[7])] + o[8:], "must be an array of 9 header fields"),
    "header height str": (lambda o: o[:7] + [[o[7][0], "1", *o[7][2:]]] + o[8:], "height must be a non-negative"),
    "seal 95 bytes": (lambda o: o[:8] + [[o[8][0][:-1] if len(o[8][0]) == 96 else o[8][0] + b"\x00" * 31]] + o[9:],
                      "expected 64 (the proposer's signature) or 96"),
    "seal not bin": (lambda o: o[:8] + [[1]] + o[9:], "commit[0] must be bytes"),
    "commit bytes": (lambda o: o[:8] + [b""] + o[9:], "commit must be an array"),
    "changes bytes": (lambda o: o[:9] + [b""], "validator_set_changes must be an array"),
    "change of 2 fields": (lambda o: o[:9] + [[[o[7], o[8]]]], "validator_set_changes[0] must be [header, commit"),
    "change validators cut": (lambda o: o[:9] + [[[o[7], o[8], b"\x00" * 33]]],
                              "validator_set_changes[0].validators is 33 bytes"),
}


BIG = 256 * 1024 + 1  # one byte past the JSON form's bound on events and on the result leaf
BAD_LAYOUT_3.update({
    "events past the bound": (lambda o: o[:4] + [b"\x00" * BIG] + o[5:], f"events is {BIG} bytes; the limit is"),
    "reason past the leaf's bound": (lambda o: o[:3] + ["r" * BIG] + o[4:], "the result leaf would exceed"),
    "header past the bound": (lambda o: o[:7] + [["c" * 4096, *o[7][1:]]] + o[8:], "the limit is 4096"),
    "tx past the bound": (lambda o: o[:1] + [b"\x00" * (64 * 1024 + 1)] + o[2:], "the limit is 65536"),
})


@pytest.mark.parametrize("name", list(BAD_LAYOUT_3))
def test_a_malformed_layout_3_array_is_a_format_error_naming_the_field(name, base):
    change, says = BAD_LAYOUT_3[name]
    raw = codec.encode(change(codec.decode(encode_compact(base))))
    assert says in format_error(raw)


@pytest.mark.parametrize("raw,says", [
    (codec.encode([]), "got an empty array"), (codec.encode(3), "got int"), (codec.encode(b"x"), "got bytes"),
    (codec.encode(["3"]), "an array led by str"), (b"\xc1", "not canonical msgpack"),
])
def test_input_that_is_no_layout_is_a_format_error(raw, says):
    assert says in format_error(raw)


@pytest.mark.parametrize("layout", [0, 4, 99, -3])
def test_an_unknown_layout_is_named_by_the_version_check(layout, base):
    obj = codec.decode(encode_compact(base))
    with pytest.raises(ReceiptError) as info:
        decode_compact(codec.encode([layout, *obj[1:]]))
    assert info.value.check == "version"
    assert f"compact receipt layout {layout}; this verifier reads layouts 3 and 2" in info.value.message


# ------------------------------------------------------------------------------------------------ layout 2


@pytest.mark.parametrize("name", LAYOUT_2)
def test_a_stored_layout_2_file_still_loads_to_its_json_and_verifies(name, tmp_path):
    raw = (DATA / f"{name}.bin").read_bytes()
    expected = json.loads((DATA / f"{name}.json").read_text())
    assert codec.decode(raw)[0] == 2 and len(codec.decode(raw)) == 13
    assert _layout_2_bytes(expected) == raw  # the fixture is what layout 2 was
    doc = load_receipt(DATA / f"{name}.bin")
    assert as_json(doc) == json.dumps(expected, indent=2)
    assert verify(doc, make_genesis()).tx_hash.hex() == expected["tx_hash"]
    # re-saved, it is written in layout 3, smaller, and reads back to the same JSON
    save_receipt(tmp_path / "new.bin", doc, compact=True)
    new = (tmp_path / "new.bin").read_bytes()
    assert codec.decode(new)[0] == 3 and len(new) < len(raw)
    assert as_json(load_receipt(tmp_path / "new.bin")) == json.dumps(expected, indent=2)


def test_every_single_byte_flip_of_a_stored_layout_2_file_is_refused():
    raw = (DATA / "receipt_layout2.bin").read_bytes()
    genesis = make_genesis()
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        with pytest.raises(ReceiptError):
            verify(decode_compact(bytes(bad)), genesis)


def test_a_version_1_compact_receipt_is_still_refused_by_name():
    old = codec.decode((DATA / "receipt_layout2.bin").read_bytes())
    for raw in (codec.encode([1, *old[1:12]]), codec.encode([1])):  # version 1's 12 fields, or any array led by 1
        with pytest.raises(ReceiptError) as info:
            decode_compact(raw)
        assert info.value.check == "version" and info.value.message == f"version: {V1_REFUSED}"


def test_a_layout_2_array_of_the_wrong_length_is_a_format_error():
    old = codec.decode((DATA / "receipt_layout2.bin").read_bytes())
    assert "layout 2 must be an array of 13 fields, got 12" in format_error(codec.encode(old[:12]))


# ------------------------------------------------------------------------------------------ set changes


def test_a_receipt_after_a_change_keeps_the_changes_seals_and_new_set_through_layout_3():
    new = new_validator_keys(4)
    change = make_change(4, validator_keys(), new, signers=4)
    sb = make_block(9, 5, signers=3, keys=new)
    receipt = build_receipt(sb.block, sb.results, 2, sb.seals, [change])
    raw = encode_compact(receipt)
    entry = codec.decode(raw)[9][0]
    assert len(entry[0]) == 10  # the announcing header names another next set: all 10 fields
    assert entry[2] == b"".join(k.public_key for k in new)
    assert sorted(len(s) for s in entry[1]) == [64, 96, 96, 96]  # that header's proposer sealed it too
    assert as_json(decode_compact(raw)) == as_json(receipt)
    assert verify(decode_compact(raw), make_genesis()).set_changes == 1


def test_a_change_entry_is_decoded_with_its_own_headers_proposer():
    new = new_validator_keys(4)
    change = make_change(4, validator_keys(), new, signers=4)
    sb = make_block(9, 5, signers=3, keys=new)
    receipt = build_receipt(sb.block, sb.results, 2, sb.seals, [change])
    # the entry's 64-byte seal, moved into the receipt's own commit, names the receipt header's proposer instead:
    # the signature no longer verifies for that key (one check, named), not a silent swap
    obj = codec.decode(encode_compact(receipt))
    short = next(s for s in obj[9][0][1] if len(s) == 64)
    obj[8] = [short if len(s) == 64 else s for s in obj[8]]
    with pytest.raises(ReceiptError) as info:
        verify(decode_compact(codec.encode(obj)), make_genesis())
    assert info.value.check == "commit_signature"
