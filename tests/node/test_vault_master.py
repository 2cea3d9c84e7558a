"""The vault master key outside the data dir (``node.vault_master``): environment or a file; a data dir
copied without it opens nothing; a missing, malformed or ambiguous key refuses the start with a clear error."""

from __future__ import annotations

import base64
import os
import shutil

import pytest

from node.vault import MASTER_KEY_ENV, Vault, VaultCorrupt
from node.vault_master import load_master_key

ALICE = bytes(range(32))
DATA = {"name": "Alice Example"}
MASTER = bytes(range(100, 132))


def key_file(path, content: bytes, mode: int = 0o600):
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("text", [MASTER.hex(), base64.b64encode(MASTER).decode(), " " + MASTER.hex() + "\n"])
def test_the_master_key_from_the_environment_is_read_as_hex_or_base64(text):
    assert load_master_key(None, {MASTER_KEY_ENV: text}) == MASTER


@pytest.mark.parametrize("content", [MASTER, MASTER.hex().encode() + b"\n", base64.b64encode(MASTER)])
def test_the_master_key_file_holds_raw_hex_or_base64(tmp_path, content):
    assert load_master_key(key_file(tmp_path / "m.key", content), {}) == MASTER


def test_no_configured_key_leaves_the_vault_its_own_master_file(tmp_path):
    assert load_master_key(None, {}) is None


def test_a_missing_configured_file_is_a_clear_error(tmp_path):
    with pytest.raises(VaultCorrupt, match="vault_master_key_file .*nope.key"):
        load_master_key(tmp_path / "nope.key", {})


@pytest.mark.parametrize("content", [b"short", b"zz" * 32, MASTER + b"x"])
def test_a_malformed_key_is_a_clear_error(tmp_path, content):
    with pytest.raises(VaultCorrupt, match="expected 32 bytes"):
        load_master_key(key_file(tmp_path / "m.key", content), {})
    with pytest.raises(VaultCorrupt, match=MASTER_KEY_ENV):
        load_master_key(None, {MASTER_KEY_ENV: "not a key"})


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    with pytest.raises(VaultCorrupt, match="0600"):
        load_master_key(key_file(tmp_path / "m.key", MASTER, 0o644), {})


def test_both_environment_and_file_set_is_refused_as_ambiguous(tmp_path):
    with pytest.raises(VaultCorrupt, match="expected one"):
        load_master_key(key_file(tmp_path / "m.key", MASTER), {MASTER_KEY_ENV: MASTER.hex()})


def test_thief_with_the_data_dir_alone_cannot_decrypt_a_vault_keyed_from_outside(tmp_path):
    root = tmp_path / "data" / "vault"
    Vault(root, master_key=MASTER).put(ALICE, DATA)
    assert not (root / "master.key").exists()  # the key never touched the data dir
    assert Vault(root, master_key=MASTER).get(ALICE)[0] == DATA
    stolen = tmp_path / "stolen"
    shutil.copytree(root, stolen)
    with pytest.raises(VaultCorrupt, match="another master key"):
        Vault(stolen)  # opened without the key: a fresh master.key is made, and refused at once
    (stolen / "master.check").unlink()
    os.remove(stolen / "master.key")
    with pytest.raises(VaultCorrupt, match="does not decrypt"):
        Vault(stolen).get(ALICE)
    raw = b"".join(p.read_bytes() for p in (stolen / "records").iterdir())
    assert b"Alice Example" not in raw


def test_node_toml_names_the_master_key_file_relative_to_its_directory(tmp_path):
    from node.config import config_from_dict, config_to_dict
    doc = {"node": {"name": "b1", "vault_master_key_file": "../secrets/master.key"},
           "api": {"port": 18000}, "peer": {"port": 18001}}
    cfg = config_from_dict(doc, tmp_path / "b1" / "node.toml")
    assert cfg.vault_master_key_file == (tmp_path / "secrets" / "master.key").resolve()
    again = config_from_dict(config_to_dict(cfg), tmp_path / "b1" / "node.toml")
    assert again.vault_master_key_file == cfg.vault_master_key_file
    assert config_from_dict({k: v for k, v in doc.items() if k != "node"} | {"node": {"name": "b1"}},
                            tmp_path / "b1" / "node.toml").vault_master_key_file is None
