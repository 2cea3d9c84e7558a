"""The privacy vault: per-customer encryption, the commitment, crypto-shredding, the staff request digest."""

from __future__ import annotations

import os
import stat

import pytest

from ledger import codec
from ledger.hashing import H
from node.vault import (
    TAG_COMMITMENT, Vault, VaultCorrupt, VaultErased, VaultError, VaultNotFound, compute_commitment,
    compute_personal_data, compute_request_digest,
)

ALICE = bytes(range(32))
BOB = bytes(range(1, 33))
DATA = {"name": "Alice Martin", "email": "alice@example.org", "phone": "+33 6 12 34 56 78"}


def test_put_returns_a_commitment_to_salt_and_canonical_data_that_anyone_can_recompute(tmp_path):
    stored = Vault(tmp_path).put(ALICE, DATA)
    data = codec.encode(sorted([k, v] for k, v in DATA.items()))
    assert stored.commitment == H(TAG_COMMITMENT, stored.salt + data)
    assert stored.commitment == compute_commitment(stored.salt, compute_personal_data(DATA))
    assert len(stored.salt) == 32


def test_get_decrypts_the_data_and_salt_from_a_reopened_vault(tmp_path):
    stored = Vault(tmp_path).put(ALICE, DATA)
    fields, salt = Vault(tmp_path).get(ALICE)
    assert fields == DATA and salt == stored.salt


def test_no_personal_data_is_readable_in_the_vault_files(tmp_path):
    Vault(tmp_path).put(ALICE, DATA)
    blob = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for value in DATA.values():
        assert value.encode() not in blob


def test_each_customer_has_their_own_key(tmp_path):
    vault = Vault(tmp_path)
    vault.put(ALICE, DATA)
    vault.put(BOB, DATA)
    assert (tmp_path / "keys" / ALICE.hex()).read_bytes() != (tmp_path / "keys" / BOB.hex()).read_bytes()
    assert vault.erase(ALICE)
    assert vault.get(BOB)[0] == DATA  # erasing one customer leaves the other readable


def test_master_key_is_created_owner_only(tmp_path):
    Vault(tmp_path)
    mode = stat.S_IMODE((tmp_path / "master.key").stat().st_mode)
    assert mode == 0o600


def test_a_master_key_readable_by_others_is_refused(tmp_path):
    Vault(tmp_path)
    os.chmod(tmp_path / "master.key", 0o644)
    with pytest.raises(VaultCorrupt, match="readable by others"):
        Vault(tmp_path)


def test_erase_deletes_the_key_and_the_data_can_never_be_decrypted_again(tmp_path):
    vault = Vault(tmp_path)
    vault.put(ALICE, DATA)
    assert vault.erase(ALICE) is True
    assert not (tmp_path / "keys" / ALICE.hex()).exists()
    assert (tmp_path / "records" / ALICE.hex()).exists()  # the ciphertext may stay: it is noise now
    with pytest.raises(VaultErased):
        Vault(tmp_path).get(ALICE)
    assert vault.is_erased(ALICE)
    assert vault.erase(ALICE) is False  # idempotent
    with pytest.raises(VaultErased):
        vault.put(ALICE, DATA)  # an erased customer's data is never stored again


def test_unknown_customer_is_not_found(tmp_path):
    with pytest.raises(VaultNotFound):
        Vault(tmp_path).get(ALICE)


def test_a_different_master_key_cannot_open_the_data(tmp_path):
    Vault(tmp_path).put(ALICE, DATA)
    (tmp_path / "master.key").write_bytes(os.urandom(32))
    with pytest.raises(VaultCorrupt, match="does not decrypt"):
        Vault(tmp_path).get(ALICE)


@pytest.mark.parametrize("fields, needle", [
    ({}, "1..32 fields"),
    ({"Name": "x"}, "field name"),
    ({"name": 5}, "expected a string"),
    ({"name": "x" * 1025}, "at most 1024"),
])
def test_malformed_personal_data_is_refused(tmp_path, fields, needle):
    with pytest.raises(VaultError, match=needle):
        Vault(tmp_path).put(ALICE, fields)


def test_request_digest_binds_chain_method_path_time_and_body():
    base = compute_request_digest("c", "POST", "/v1/vault/customers", 1, b"{}")
    assert base != compute_request_digest("d", "POST", "/v1/vault/customers", 1, b"{}")
    assert base != compute_request_digest("c", "GET", "/v1/vault/customers", 1, b"{}")
    assert base != compute_request_digest("c", "POST", "/v1/vault/customers/x", 1, b"{}")
    assert base != compute_request_digest("c", "POST", "/v1/vault/customers", 2, b"{}")
    assert base != compute_request_digest("c", "POST", "/v1/vault/customers", 1, b"{ }")
