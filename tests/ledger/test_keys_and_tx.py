"""Keys, key files, transaction envelopes and their signatures."""

import json
import os

import pytest

from ledger import codec
from ledger.errors import DecodeError, KeyFileError, SchemaError, SignatureError
from ledger.hashing import TAG_TX, H
from ledger.keys import KeyPair, load_key, parse_public_key, save_key, verify
from ledger.tx import TxBody, decode_tx, make_tx, sign_tx

CHAIN = "test-chain"


def test_key_file_roundtrip_with_mode_0600(tmp_path):
    key = KeyPair.generate()
    path = tmp_path / "a.key"
    save_key(path, key)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_key(path) == key


def test_key_file_refuses_overwrite(tmp_path):
    path = tmp_path / "a.key"
    save_key(path, KeyPair.generate())
    with pytest.raises(KeyFileError, match="already exists"):
        save_key(path, KeyPair.generate())


def test_attacker_dangling_symlink_at_the_key_path_does_not_receive_the_key(tmp_path):
    # Someone who can write the directory plants a link to a place they can read; the key must not go there.
    target = tmp_path / "stolen.key"
    path = tmp_path / "a.key"
    path.symlink_to(target)
    with pytest.raises(KeyFileError, match="is a symlink"):
        save_key(path, KeyPair.generate())
    assert not target.exists()


def test_a_symlink_to_an_existing_file_is_refused_and_the_target_left_alone(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    path = tmp_path / "a.key"
    path.symlink_to(target)
    with pytest.raises(KeyFileError, match="is a symlink"):
        save_key(path, KeyPair.generate())
    assert target.read_text() == "mine"


def test_overwrite_replaces_a_symlink_itself_never_writing_through_it(tmp_path):
    target = tmp_path / "elsewhere.key"
    path = tmp_path / "a.key"
    path.symlink_to(target)
    key = KeyPair.generate()
    save_key(path, key, overwrite=True)
    assert not target.exists() and not path.is_symlink()
    assert os.stat(path).st_mode & 0o777 == 0o600 and load_key(path) == key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.key"]  # no temporary file left


def test_overwrite_replaces_an_existing_key_with_mode_0600(tmp_path):
    path = tmp_path / "a.key"
    path.write_text("old")
    os.chmod(path, 0o644)
    key = KeyPair.generate()
    save_key(path, key, overwrite=True)
    assert os.stat(path).st_mode & 0o777 == 0o600 and load_key(path) == key


def test_a_new_key_file_is_0600_even_under_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        save_key(tmp_path / "a.key", KeyPair.generate())
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "a.key").st_mode & 0o777 == 0o600


def test_world_readable_key_file_is_refused(tmp_path):
    path = tmp_path / "a.key"
    save_key(path, KeyPair.generate())
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="expected 0600"):
        load_key(path)


@pytest.mark.parametrize("content, match", [
    ("{", "not JSON"),
    ('{"type": "rsa"}', "ed25519"),
    ('{"type": "ed25519", "secret_key": "zz", "public_key": "00"}', "hex"),
    ('{"type": "ed25519", "secret_key": "0011", "public_key": "00"}', "expected 32"),
])
def test_malformed_key_file_is_refused_with_reason(tmp_path, content, match):
    path = tmp_path / "bad.key"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=match):
        load_key(path)


def test_key_file_with_mismatched_public_key_is_refused(tmp_path):
    path = tmp_path / "k.key"
    save_key(path, KeyPair.generate())
    doc = json.loads(path.read_text())
    doc["public_key"] = KeyPair.generate().public_key.hex()
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyFileError, match="does not match"):
        load_key(path)


def test_missing_key_file_is_named():
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key("/nonexistent/k.key")


def test_parse_public_key_errors_name_what_was_seen():
    with pytest.raises(KeyFileError, match="not hex"):
        parse_public_key("xyz")
    with pytest.raises(KeyFileError, match="3 bytes"):
        parse_public_key("aabbcc")


def test_signed_tx_roundtrips_and_verifies():
    key = KeyPair.generate()
    tx = make_tx(CHAIN, "transfer", key, 1, [b"\x01" * 32, 10, bytes(32)])
    again = decode_tx(tx.raw)
    assert again.tx_hash == tx.tx_hash == H(TAG_TX, codec.encode(tx.body.to_list()))
    again.verify_signatures()


def test_tx_with_second_factor_verifies_both():
    key, second = KeyPair.generate(), KeyPair.generate()
    tx = make_tx(CHAIN, "transfer", key, 1, [b"\x01" * 32, 10, bytes(32)], second)
    decode_tx(tx.raw).verify_signatures()
    assert decode_tx(tx.raw).signers == (key.public_key, second.public_key)


def test_tx_signed_by_other_key_is_refused():
    key, other = KeyPair.generate(), KeyPair.generate()
    body = TxBody(CHAIN, "transfer", key.public_key, 1, ())
    tx = sign_tx(body, other)
    with pytest.raises(SignatureError, match="expected the sender"):
        decode_tx(tx.raw).verify_signatures()


def test_tampered_tx_signature_is_refused():
    key = KeyPair.generate()
    tx = make_tx(CHAIN, "mint", key, 1, [key.public_key, 5])
    obj = codec.decode(tx.raw)
    obj[0][3] = 2  # change the nonce after signing
    with pytest.raises(SignatureError, match="does not verify"):
        decode_tx(codec.encode(obj)).verify_signatures()


@pytest.mark.parametrize("mutate, match", [
    (lambda o: o[0].pop(), "5 fields"),
    (lambda o: o[0].__setitem__(2, b"short"), "32 bytes"),
    (lambda o: o[0].__setitem__(3, 0), "nonce"),
    (lambda o: o[0].__setitem__(1, ""), "kind"),
    (lambda o: o.__setitem__(1, []), "signatures"),
    (lambda o: o[1][0].__setitem__(1, b"x" * 10), "64 bytes"),
])
def test_malformed_envelopes_are_refused_with_reason(mutate, match):
    key = KeyPair.generate()
    obj = codec.decode(make_tx(CHAIN, "mint", key, 1, [key.public_key, 5]).raw)
    mutate(obj)
    with pytest.raises(SchemaError, match=match):
        decode_tx(codec.encode(obj))


def test_non_canonical_envelope_is_refused():
    with pytest.raises(DecodeError):
        decode_tx(b"\x92\xcc\x01")


def test_verify_rejects_wrong_lengths_without_raising():
    assert not verify(b"x", b"m", b"s" * 64)
    assert not verify(b"x" * 32, b"m", b"s")
