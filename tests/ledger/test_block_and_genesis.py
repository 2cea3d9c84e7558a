"""Headers, block encoding, commit certificates, quorum arithmetic and genesis validation."""

import json

import pytest

from ledger import codec
from ledger.block import (Block, Header, decode_certificate, encode_certificate, make_seal, max_faulty,
                          quorum, validator_set_hash, verify_certificate)
from ledger.hashing import H
from ledger.errors import GenesisError, SchemaError, SignatureError
from ledger.genesis import genesis_from_json, load_genesis, save_genesis
from ledger.keys import KeyPair


@pytest.mark.parametrize("n, q, f", [(1, 1, 0), (3, 2, 0), (4, 3, 1), (5, 4, 1), (6, 4, 1), (7, 5, 2),
                                     (10, 7, 3), (16, 11, 5)])
def test_quorum_is_ceil_two_thirds_not_2f_plus_1(n, q, f):
    assert quorum(n) == q and max_faulty(n) == f
    assert quorum(n) * 3 >= 2 * n  # ceil(2n/3)
    assert (quorum(n) - 1) * 3 < 2 * n


def header(height=1, chain="c"):
    return Header(chain, height, b"\x00" * 32, 1000, b"\x01" * 32, 0, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32)


def test_block_roundtrip_keeps_hash():
    block = Block(header(), ())
    again = Block.decode(block.encode())
    assert again == block and again.hash == block.hash == block.header.hash()


def test_block_with_wrong_tx_count_is_refused():
    bad = Block(header(), (b"tx",))
    with pytest.raises(SchemaError, match="header says 0 txs"):
        Block.decode(bad.encode())


def test_header_field_types_are_checked():
    fields = header().to_list()
    fields[2] = b"short"
    with pytest.raises(SchemaError, match="prev_hash"):
        Header.from_list(fields)
    fields = header().to_list()
    fields[9] = b"short"
    with pytest.raises(SchemaError, match="next_validator_set_hash"):
        Header.from_list(fields)


def test_header_has_ten_fields_and_a_nine_field_header_is_refused():
    h = header()
    assert len(h.to_list()) == 10
    assert h.to_list()[8:] == [b"\x04" * 32, b"\x04" * 32]  # no change announced: next == current
    with pytest.raises(SchemaError, match="10 fields, got 9"):
        Header.from_list(h.to_list()[:9])


def test_next_validator_set_hash_is_part_of_the_block_hash():
    h = header()
    announcing = Header(*h.to_list()[:9], next_validator_set_hash=b"\x05" * 32)
    assert announcing.changes_validator_set and not h.changes_validator_set
    assert announcing.hash() != h.hash()
    assert Header.decode(announcing.encode()) == announcing


def test_validator_set_hash_is_the_tagged_hash_of_the_keys_in_order():
    a, b = b"\x01" * 32, b"\x02" * 32
    assert validator_set_hash([a, b]) == H("carecoin/v1/validators", codec.encode([a, b]))
    assert validator_set_hash([a, b]) != validator_set_hash([b, a])


def test_certificate_verifies_with_quorum_only():
    keys = [KeyPair.generate() for _ in range(4)]
    vals = [k.public_key for k in keys]
    block = Block(header(), ())
    seals = [make_seal(k, "c", 1, block.hash) for k in keys[:3]]
    verify_certificate("c", 1, block.hash, decode_certificate(encode_certificate(seals)), vals)
    with pytest.raises(SignatureError, match="needs 3"):
        verify_certificate("c", 1, block.hash, seals[:2], vals)
    with pytest.raises(SignatureError, match="twice"):
        verify_certificate("c", 1, block.hash, seals[:2] + seals[:1], vals)
    with pytest.raises(SignatureError, match="not a validator"):
        verify_certificate("c", 1, block.hash, seals[:2] + [make_seal(KeyPair.generate(), "c", 1, block.hash)], vals)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_certificate("other-chain", 1, block.hash, seals, vals)


def _doc():
    return {"chain_id": "c", "genesis_time_ms": 5,
            "validators": [{"name": "a", "public_key": KeyPair.generate().public_key.hex()}],
            "roles": {"issuer": [KeyPair.generate().public_key.hex()]}, "policy": {"mint_cap": 10}}


def test_genesis_roundtrip(tmp_path):
    g = genesis_from_json(_doc())
    save_genesis(tmp_path / "g.json", g)
    assert load_genesis(tmp_path / "g.json") == g


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.pop("chain_id"), "chain_id"),
    (lambda d: d.__setitem__("validators", []), "non-empty"),
    (lambda d: d["validators"][0].__setitem__("public_key", "zz"), "not hex"),
    (lambda d: d["validators"].append(dict(d["validators"][0])), "appears twice"),
    (lambda d: d["roles"].__setitem__("king", []), "unknown role"),
    (lambda d: d["policy"].__setitem__("rate", 1.5), "integer or string"),
    (lambda d: d.__setitem__("genesis_time_ms", "now"), "genesis_time_ms"),
])
def test_bad_genesis_is_refused_with_reason(mutate, match):
    doc = _doc()
    mutate(doc)
    with pytest.raises(GenesisError, match=match):
        genesis_from_json(doc)


def test_unreadable_genesis_file_is_named(tmp_path):
    p = tmp_path / "g.json"
    p.write_text("{")
    with pytest.raises(GenesisError, match="not JSON"):
        load_genesis(p)
    with pytest.raises(GenesisError, match="does not exist"):
        load_genesis(tmp_path / "missing.json")
    assert json.loads(json.dumps(_doc()))
