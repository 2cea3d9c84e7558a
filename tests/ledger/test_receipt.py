"""Receipts: built for every index of blocks of several sizes, verified offline from JSON and compact files,
and refused with the specific check name for every tampered field."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ledger import codec
from ledger.block import Header, make_seal
from ledger.errors import ReceiptError
from ledger.hashing import TAG_ENVELOPE, TAG_EVENTS, H
from ledger.keys import KeyPair
from ledger.merkle import inclusion_proof
from ledger.results import TxResult, compute_leaves
from ledger.receipt import KEYS, build_receipt, verify
from ledger.receipt_compact import decode_compact, encode_compact, load_receipt, save_receipt
from tests.receipt_fixtures import CHAIN_ID, customer_key, make_block, make_chain, make_genesis, validator_keys

SIZES = (1, 2, 3, 5, 8, 13)


@pytest.fixture(scope="module")
def chain():
    return make_chain(SIZES)


@pytest.fixture(scope="module")
def genesis():
    return make_genesis()


@pytest.fixture(scope="module")
def base(chain):
    """A receipt for tx 4 of the 8-tx block (an applied tx with events), sealed by 3 of 4 validators."""
    sb = chain[4]
    return build_receipt(sb.block, sb.results, 4, sb.seals[:3])


def check_of(receipt, genesis) -> str:
    with pytest.raises(ReceiptError) as info:
        verify(receipt, genesis)
    return info.value.check


def hex_flip(text: str, byte: int) -> str:
    raw = bytearray(bytes.fromhex(text))
    raw[byte] ^= 0x01
    return raw.hex()


def reencode_header(receipt: dict, **changes) -> str:
    fields = Header.decode(bytes.fromhex(receipt["header"])).to_list()
    names = ["chain_id", "height", "prev_hash", "timestamp_ms", "proposer", "tx_count", "results_root",
             "state_root", "validator_set_hash", "next_validator_set_hash"]
    for name, value in changes.items():
        fields[names.index(name)] = value
    return codec.encode(fields).hex()


def reencode_leaf(receipt: dict, status=None, events_hash=None, envelope_hash=None) -> str:
    tx_hash, st, reason, eh, env = codec.decode(bytes.fromhex(receipt["leaf"]))
    return codec.encode([tx_hash, st if status is None else status, reason,
                         eh if events_hash is None else events_hash,
                         env if envelope_hash is None else envelope_hash]).hex()


# ------------------------------------------------------------------------------------------------ valid


def test_every_receipt_of_every_tree_size_verifies_from_json_and_compact_files(chain, genesis, tmp_path):
    checked = 0
    for sb in chain:
        for index in range(sb.block.header.tx_count):
            receipt = build_receipt(sb.block, sb.results, index, sb.seals[:3])
            json_file, compact_file = tmp_path / "r.json", tmp_path / "r.bin"
            save_receipt(json_file, receipt)
            save_receipt(compact_file, receipt, compact=True)
            for path in (json_file, compact_file):
                v = verify(load_receipt(path), genesis)
                assert (v.height, v.leaf_index, v.tx_hash) == (sb.block.height, index, sb.results[index].tx_hash)
                assert v.block_hash == sb.block.hash
            checked += 1
    assert checked == sum(SIZES)


def test_verified_receipt_reports_the_committed_outcome_and_signers(chain, genesis):
    sb = chain[5]  # 13 txs; index 2 failed with a reason, index 3 applied with events
    failed = verify(build_receipt(sb.block, sb.results, 2, sb.seals), genesis)
    assert (failed.status, failed.reason, failed.events) == (7, "insufficient_balance", ())
    applied = verify(build_receipt(sb.block, sb.results, 3, sb.seals[1:]), genesis)
    sender = customer_key(3).public_key
    assert applied.status == 0 and applied.applied
    assert (applied.kind, applied.sender, applied.nonce) == ("transfer", sender, sb.block.height)
    assert applied.events == (["earned", sender, 103], ["tier", sender, "silver"])
    assert applied.timestamp_ms == sb.block.header.timestamp_ms
    assert applied.signers == tuple(s.validator for s in sb.seals[1:])
    assert json.loads(json.dumps(applied.to_json()))["sender"] == sender.hex()


def test_receipt_json_has_exactly_designs_keys_with_canonical_bytes_as_lowercase_hex(chain):
    sb = chain[3]  # 5 txs
    index = 3
    receipt = build_receipt(sb.block, sb.results, index, sb.seals)
    assert [k for k in receipt if k != "decoded"] == list(KEYS)
    assert list(KEYS) == ["version", "chain_id", "tx", "tx_hash", "result", "events", "leaf", "leaf_index",
                          "audit_path", "header", "block_hash", "commit", "validator_set_changes"]
    result = sb.results[index]
    leaves = compute_leaves(sb.results, sb.block.txs)
    assert receipt["version"] == 2 and receipt["chain_id"] == CHAIN_ID
    assert receipt["tx"] == sb.block.txs[index].hex()
    assert receipt["tx_hash"] == result.tx_hash.hex()
    assert receipt["result"] == {"status": result.status, "reason": result.reason}
    assert receipt["events"] == codec.encode([list(e) for e in result.events]).hex()
    assert H(TAG_EVENTS, bytes.fromhex(receipt["events"])) == result.events_hash
    assert receipt["leaf"] == codec.encode([result.tx_hash, result.status, result.reason, result.events_hash,
                                            H(TAG_ENVELOPE, sb.block.txs[index])]).hex()
    assert receipt["leaf_index"] == index
    assert receipt["audit_path"] == [h.hex() for h in inclusion_proof(leaves, index)]
    assert receipt["header"] == codec.encode(sb.block.header.to_list()).hex()
    assert receipt["block_hash"] == sb.block.hash.hex()
    assert receipt["commit"] == [{"validator": s.validator.hex(), "signature": s.signature.hex()}
                                 for s in sb.seals]
    assert receipt["validator_set_changes"] == []  # the set never changed
    assert len(codec.decode(bytes.fromhex(receipt["header"]))) == 10
    hexes = [receipt[k] for k in ("tx", "tx_hash", "events", "leaf", "header", "block_hash")]
    hexes += receipt["audit_path"] + [v for s in receipt["commit"] for v in s.values()]
    assert all(h == h.lower() and len(h) % 2 == 0 for h in hexes)


def test_decoded_copies_in_the_file_are_never_trusted(base, genesis):
    lying = copy.deepcopy(base)
    lying["decoded"]["kind"] = "refund"
    lying["decoded"]["events"] = [["earned", "00" * 32, 10**9]]
    v = verify(lying, genesis)
    assert v.kind == "transfer" and v.events[0][2] != 10**9


@pytest.mark.parametrize("n,signers,ok", [(1, 1, True), (4, 3, True), (4, 4, True), (5, 3, False),
                                          (5, 4, True), (7, 4, False), (7, 5, True)])
def test_quorum_is_ceil_two_thirds_of_the_genesis_validators(n, signers, ok):
    keys = validator_keys(n)
    sb = make_block(3, 5, keys=keys, signers=signers)
    receipt = build_receipt(sb.block, sb.results, 1, sb.seals)
    genesis = make_genesis(keys)
    if ok:
        assert len(verify(receipt, genesis).signers) == signers
    else:
        assert check_of(receipt, genesis) == "commit_quorum"


def test_build_refuses_an_index_outside_the_block_or_results_that_do_not_match_the_header(chain):
    sb = chain[2]
    with pytest.raises(ReceiptError) as info:
        build_receipt(sb.block, sb.results, 3, sb.seals)
    assert info.value.check == "build"
    with pytest.raises(ReceiptError) as info:
        build_receipt(sb.block, chain[3].results[:3], 0, sb.seals)
    assert info.value.check == "build"
    altered = list(sb.results)
    altered[1] = TxResult(altered[1].tx_hash, 4, "frozen", ())
    with pytest.raises(ReceiptError) as info:
        build_receipt(sb.block, altered, 0, sb.seals)
    assert info.value.check == "build" and "results_root" in info.value.message


# -------------------------------------------------------------------------------------------- tampering


def _outsider_seal(r):
    header = Header.decode(bytes.fromhex(r["header"]))
    seal = make_seal(KeyPair.from_seed(b"\x77" * 32), header.chain_id, header.height, bytes.fromhex(r["block_hash"]))
    return {"validator": seal.validator.hex(), "signature": seal.signature.hex()}


def _other_first_signer(r):
    """The same body, validly signed, but by a key that is not the sender."""
    tx = codec.decode(bytes.fromhex(r["tx"]))
    body = tx[0]
    intruder = KeyPair.from_seed(b"\x55" * 32)
    from ledger.hashing import TAG_TX
    sig = intruder.sign(H(TAG_TX, codec.encode(body)))
    return codec.encode([body, [[intruder.public_key, sig]]]).hex()


def _body_changed(r):
    """The envelope with one payload field changed and the original signatures kept."""
    body, sigs = codec.decode(bytes.fromhex(r["tx"]))
    body[4][2] = "mema"
    return codec.encode([body, sigs]).hex()


def _extra_valid_signer(r):
    """The same body and signatures plus one more valid signature: another envelope of the same tx hash."""
    body, sigs = codec.decode(bytes.fromhex(r["tx"]))
    from ledger.hashing import TAG_TX
    extra = KeyPair.from_seed(b"\x56" * 32)
    return codec.encode([body, sigs + [[extra.public_key, extra.sign(H(TAG_TX, codec.encode(body)))]]]).hex()


def _set(key, value):
    def mutate(r):
        r[key] = value(r) if callable(value) else value
    return mutate


TAMPERS = {
    # tx and its hash
    "tx body changed, signature kept": (_set("tx", _body_changed), "tx_hash"),
    "tx signature byte flipped": (_set("tx", lambda r: hex_flip(r["tx"], len(r["tx"]) // 2 - 1)), "tx_signature"),
    "tx first signer is not the sender": (_set("tx", _other_first_signer), "tx_signature"),
    "tx_hash field changed": (_set("tx_hash", lambda r: hex_flip(r["tx_hash"], 0)), "tx_hash"),
    "tx with an extra valid signer appended": (_set("tx", _extra_valid_signer), "envelope_hash"),
    "leaf envelope_hash changed": (_set("leaf", lambda r: reencode_leaf(r, envelope_hash=b"\x02" * 32)),
                                   "envelope_hash"),
    # result, leaf, events
    "leaf status changed": (_set("leaf", lambda r: reencode_leaf(r, status=9)), "result"),
    "leaf events_hash changed": (_set("leaf", lambda r: reencode_leaf(r, events_hash=b"\x01" * 32)), "events"),
    "result status changed": (lambda r: r["result"].update(status=3), "result"),
    "result reason changed": (lambda r: r["result"].update(reason="refund_window_closed"), "result"),
    "leaf and result changed together": (
        lambda r: (r.update(leaf=reencode_leaf(r, status=9)), r["result"].update(status=9)), "audit_path"),
    "events changed": (_set("events", codec.encode([["earned", b"\x00" * 32, 10**6]]).hex()), "events"),
    "events byte flipped": (_set("events", lambda r: hex_flip(r["events"], 3)), "events"),
    # position in the tree
    "leaf_index past the block": (_set("leaf_index", 8), "leaf_index"),
    "leaf_index far past the block": (_set("leaf_index", 2**40), "leaf_index"),
    "leaf_index moved inside the block": (_set("leaf_index", 5), "audit_path"),
    "audit_path hash flipped": (lambda r: r["audit_path"].__setitem__(1, hex_flip(r["audit_path"][1], 31)),
                                "audit_path"),
    "audit_path one extra": (lambda r: r["audit_path"].append("ab" * 32), "audit_path"),
    "audit_path one missing": (lambda r: r["audit_path"].pop(), "audit_path"),
    "audit_path reordered": (lambda r: r["audit_path"].reverse(), "audit_path"),
    # header and block hash
    "header chain_id": (_set("header", lambda r: reencode_header(r, chain_id="other-chain")), "block_hash"),
    "header height": (_set("header", lambda r: reencode_header(r, height=99)), "block_hash"),
    "header prev_hash": (_set("header", lambda r: reencode_header(r, prev_hash=b"\x02" * 32)), "block_hash"),
    "header timestamp_ms": (_set("header", lambda r: reencode_header(r, timestamp_ms=1)), "block_hash"),
    "header proposer": (_set("header", lambda r: reencode_header(r, proposer=b"\x03" * 32)), "block_hash"),
    "header tx_count": (_set("header", lambda r: reencode_header(r, tx_count=9)), "block_hash"),
    "header results_root": (_set("header", lambda r: reencode_header(r, results_root=b"\x04" * 32)), "block_hash"),
    "header state_root": (_set("header", lambda r: reencode_header(r, state_root=b"\x05" * 32)), "block_hash"),
    "header validator_set_hash": (
        _set("header", lambda r: reencode_header(r, validator_set_hash=b"\x06" * 32)), "block_hash"),
    "header next_validator_set_hash": (
        _set("header", lambda r: reencode_header(r, next_validator_set_hash=b"\x07" * 32)), "block_hash"),
    "block_hash flipped": (_set("block_hash", lambda r: hex_flip(r["block_hash"], 31)), "block_hash"),
    # commit seals
    "seal signature flipped": (lambda r: r["commit"][1].update(signature=hex_flip(r["commit"][1]["signature"], 5)),
                               "commit_signature"),
    "seal signature of another validator": (
        lambda r: r["commit"][0].update(signature=r["commit"][1]["signature"]), "commit_signature"),
    "too few seals": (lambda r: r["commit"].pop(), "commit_quorum"),
    "no seals": (_set("commit", []), "commit_quorum"),
    "duplicated validator": (lambda r: r["commit"].__setitem__(2, dict(r["commit"][0])), "commit_duplicate_validator"),
    "duplicated validator added": (lambda r: r["commit"].append(dict(r["commit"][0])), "commit_duplicate_validator"),
    "unknown validator": (lambda r: r["commit"].append(_outsider_seal(r)), "commit_unknown_validator"),
    # chain id and version
    "receipt chain_id changed": (_set("chain_id", "carecoin-other"), "chain_id"),
    "wrong version": (_set("version", 3), "version"),
    "version 1": (_set("version", 1), "version"),
    "version as a string": (_set("version", "2"), "format"),
    # validator-set changes (the walk itself is tested in test_validator_sets.py)
    "a made-up change appended": (lambda r: r["validator_set_changes"].append(
        {"header": r["header"], "commit": r["commit"], "validators": [r["commit"][0]["validator"]]}),
        "validator_set_change_height"),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_a_tampered_receipt_is_refused_by_the_specific_check(name, base, genesis):
    mutate, expected = TAMPERS[name]
    receipt = copy.deepcopy(base)
    mutate(receipt)
    assert check_of(receipt, genesis) == expected


def test_a_receipt_checked_against_another_networks_genesis_fails_the_chain_id_check(base):
    assert check_of(base, make_genesis(chain_id="carecoin-elsewhere")) == "chain_id"


def test_a_block_sealed_for_another_chain_fails_the_chain_id_check_even_with_a_relabelled_receipt():
    sb = make_block(2, 3, chain_id="carecoin-staging")
    receipt = build_receipt(sb.block, sb.results, 0, sb.seals)
    receipt["chain_id"] = CHAIN_ID  # the label matches, but the tx and header are staging's
    assert check_of(receipt, make_genesis()) == "chain_id"


def test_a_receipt_checked_against_another_validator_set_fails_the_validator_set_hash_check(base):
    # Same chain id, one validator replaced: the header names a set that is not the genesis set (checked
    # before the seals; a seal by a non-member is "commit_unknown_validator", see TAMPERS).
    others = make_genesis(validator_keys(5)[1:])
    assert check_of(base, others) == "validator_set_hash"


@pytest.mark.parametrize("key", KEYS)
def test_a_receipt_missing_any_key_is_a_format_error(key, base, genesis):
    receipt = copy.deepcopy(base)
    del receipt[key]
    assert check_of(receipt, genesis) == "format"


BAD_VALUES = [
    ("tx", "zz"), ("tx", "ABCD"), ("tx", "abc"), ("tx", " " + "00"), ("tx", "9100"), ("tx", 12),
    ("tx_hash", "00" * 31), ("tx_hash", "0x" + "00" * 31), ("tx_hash", None),
    ("events", "g0"), ("leaf", "00"), ("leaf", ["00"]), ("header", "c0"), ("header", "00" * 40),
    ("block_hash", "00" * 33), ("leaf_index", "3"), ("leaf_index", True), ("leaf_index", -1),
    ("leaf_index", 4.0), ("audit_path", "00" * 32), ("audit_path", [1]), ("audit_path", ["00" * 33]),
    ("audit_path", ["00" * 32] * 65), ("commit", {}), ("commit", [["00" * 32, "00" * 64]]),
    ("commit", [{"validator": "00" * 32}]), ("commit", [{"validator": "00" * 32, "signature": "00" * 63}]),
    ("result", [0, ""]), ("result", {"status": "0", "reason": ""}), ("result", {"status": 0}),
    ("result", {"status": -1, "reason": ""}), ("result", {"status": 0, "reason": 5}),
    ("chain_id", ""), ("chain_id", 7), ("version", None), ("version", 1.0), ("version", "1"),
    ("validator_set_changes", {}), ("validator_set_changes", [{}]), ("validator_set_changes", ["00"]),
    ("validator_set_changes", [{"header": "00", "commit": [], "validators": []}]),
    ("validator_set_changes", [{"header": "c0", "commit": [], "validators": []}]),
]


@pytest.mark.parametrize("key,value", BAD_VALUES, ids=[f"{k}={v!r}"[:40] for k, v in BAD_VALUES])
def test_a_malformed_field_is_a_format_error_never_an_exception(key, value, base, genesis):
    receipt = copy.deepcopy(base)
    receipt[key] = value
    assert check_of(receipt, genesis) == "format"


@pytest.mark.parametrize("value", [None, [], "receipt", 5])
def test_a_receipt_that_is_not_an_object_is_a_format_error(value, genesis):
    assert check_of(value, genesis) == "format"


def test_every_single_byte_flip_of_a_compact_receipt_is_refused(chain, genesis):
    sb = chain[1]  # 2 txs: a small receipt, so flipping every byte stays fast
    raw = encode_compact(build_receipt(sb.block, sb.results, 1, sb.seals[:3]))
    for i in range(len(raw)):
        for bit in (0x01, 0x80):
            bad = bytearray(raw)
            bad[i] ^= bit
            with pytest.raises(ReceiptError):
                verify(decode_compact(bytes(bad)), genesis)


def test_every_truncation_of_a_compact_receipt_is_a_format_error(base):
    raw = encode_compact(base)
    for n in range(len(raw)):
        with pytest.raises(ReceiptError) as info:
            decode_compact(raw[:n])
        assert info.value.check == "format"


# ------------------------------------------------------------------------------------------------- files


@pytest.mark.parametrize("content", [b"", b"   \n", b"{\"version\": 2,", b"[1, 2, 3]", b"\xff\xfe{",
                                     b"not a receipt", b"{\"version\": 2}" + b" " * 3, b"\x92\x02"])
def test_a_bad_receipt_file_is_a_format_error(content, tmp_path, genesis):
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(ReceiptError) as info:
        verify(load_receipt(path), genesis)
    assert info.value.check == "format"


def test_truncated_receipt_files_of_both_forms_are_format_errors(base, tmp_path):
    for compact in (False, True):
        path = tmp_path / f"r{compact}"
        save_receipt(path, base, compact=compact)
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
        with pytest.raises(ReceiptError) as info:
            load_receipt(path)
        assert info.value.check == "format"


def test_a_missing_receipt_file_is_a_format_error_naming_the_file(tmp_path):
    with pytest.raises(ReceiptError) as info:
        load_receipt(tmp_path / "nope.json")
    assert info.value.check == "format" and "nope.json" in info.value.message


def test_a_compact_receipt_for_a_block_of_1000_txs_fits_in_1200_bytes(genesis):
    sb = make_block(7, 1000, signers=3)
    receipt = build_receipt(sb.block, sb.results, 777, sb.seals)
    assert verify(receipt, genesis).tx_count == 1000
    assert len(encode_compact(receipt)) <= 1200  # layout 3: ~1,125 B (layout 2 wrote ~1,410 B)


def test_a_json_receipt_file_with_a_byte_order_mark_still_loads(base, genesis, tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(base).encode())
    assert verify(load_receipt(path), genesis).leaf_index == 4


def test_an_integer_too_large_for_msgpack_is_a_format_error_in_the_compact_form(base):
    receipt = copy.deepcopy(base)
    receipt["leaf_index"] = 2**70
    with pytest.raises(ReceiptError) as info:
        encode_compact(receipt)
    assert info.value.check == "format"


# ---------------------------------------------------------------------------------------------- version 1


def _as_version_1(receipt: dict) -> dict:
    """What a version-1 node handed out: no validator_set_changes, version 1."""
    old = {k: v for k, v in receipt.items() if k != "validator_set_changes"}
    old["version"] = 1
    return old


def test_a_version_1_receipt_is_refused_with_a_clear_message(base, genesis):
    with pytest.raises(ReceiptError) as info:
        verify(_as_version_1(base), genesis)
    assert info.value.check == "version"
    assert "version 1 receipts are no longer accepted; expected version 2" in info.value.message


def test_a_version_1_compact_receipt_file_is_refused_with_the_same_message(tmp_path):
    # the 12-field compact form of version 1: layout 2's fields (a stored layout-2 file) without the changes
    layout_2 = codec.decode((Path(__file__).parent / "data" / "receipt_layout2.bin").read_bytes())
    path = tmp_path / "v1.bin"
    path.write_bytes(codec.encode([1, *layout_2[1:12]]))
    with pytest.raises(ReceiptError) as info:
        load_receipt(path)
    assert info.value.check == "version" and "no longer accepted" in info.value.message


def test_verify_reports_each_check_in_order(base, genesis):
    seen = []
    verify(base, genesis, on_check=lambda name, detail: seen.append(name))
    assert seen == ["format", "tx_hash", "tx_signature", "envelope_hash", "result", "events", "block_hash",
                    "audit_path", "validator_set_changes", "validator_set_hash", "commit", "chain_id"]
