"""`carecoin network init`: keys, genesis and node configs that a node can start from."""

import json
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.network import network
from ledger.chain import check_admissible, genesis_state
from ledger.errors import InvalidTransaction
from ledger.genesis import load_genesis
from ledger.keys import load_key
from ledger.state import MemoryState
from ledger.tx import make_tx
from node.config import load_config


def _init(*args: str):
    return CliRunner().invoke(network, ["init", *args])


def test_init_writes_keys_genesis_and_configs_that_agree(tmp_path: Path):
    out = tmp_path / "net"
    res = _init("--branches", "4", "--dir", str(out), "--base-port", "32000", "--chain-id", "test-chain", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    genesis = load_genesis(out / "genesis.json")
    assert genesis.chain_id == "test-chain"
    assert [v.name for v in genesis.validators] == ["branch-1", "branch-2", "branch-3", "branch-4"]
    assert genesis.policy and genesis.genesis_time_ms > 1_600_000_000_000
    for i, branch in enumerate(summary["branches"]):
        bdir = out / branch["name"]
        node_key = load_key(bdir / "node.key")  # load_key refuses anything but 0600
        assert stat.S_IMODE((bdir / "node.key").stat().st_mode) == 0o600
        assert genesis.validators[i].public_key == node_key.public_key
        admin, issuer, staff = (load_key(bdir / "keys" / f"{r}.key").public_key for r in ("admin", "issuer", "staff"))
        assert admin in genesis.roles["branch-admin"]
        assert issuer in genesis.roles["issuer"]
        assert staff in genesis.roles["staff"]
        cfg = load_config(bdir / "node.toml")
        assert cfg.api.port == 32000 + 2 * i and cfg.peer.port == 32000 + 2 * i + 1
        assert cfg.key_file == bdir / "node.key" and cfg.genesis_file == out / "genesis.json"
        others = {v.public_key for v in genesis.validators} - {node_key.public_key}
        assert {p.public_key for p in cfg.peers} == others
    ports = [p for b in summary["branches"] for p in (b["api"], b["peer"])]
    assert len(set(ports)) == 8


def test_every_init_without_chain_id_writes_a_fresh_unique_chain_id(tmp_path: Path):
    ids = []
    for name in ("a", "b"):
        res = _init("--branches", "1", "--dir", str(tmp_path / name), "--json")
        assert res.exit_code == 0, res.output
        chain_id = load_genesis(tmp_path / name / "genesis.json").chain_id
        assert re.fullmatch(r"carecoin-local-[0-9a-f]{16}", chain_id)
        assert json.loads(res.output)["chain_id"] == chain_id
        ids.append(chain_id)
    assert ids[0] != ids[1]


def test_a_tx_signed_for_one_new_network_is_refused_by_another_as_wrong_chain(tmp_path: Path):
    # Two networks from the same preset: the issuer key of one signs a mint; the other's state refuses it.
    for name in ("a", "b"):
        assert _init("--branches", "1", "--dir", str(tmp_path / name)).exit_code == 0
    genesis_a, genesis_b = (load_genesis(tmp_path / n / "genesis.json") for n in ("a", "b"))
    issuer = load_key(next((tmp_path / "a").glob("*/keys/issuer.key")))
    tx = make_tx(genesis_a.chain_id, "mint", issuer, 1, [issuer.public_key, 5])
    check_admissible(MemoryState(genesis_state(genesis_a)), tx, genesis_a.chain_id)  # fine at home
    with pytest.raises(InvalidTransaction) as exc:
        check_admissible(MemoryState(genesis_state(genesis_b)), tx, genesis_b.chain_id)
    assert exc.value.code == "wrong_chain"


def test_init_refuses_existing_network_without_force(tmp_path: Path):
    out = tmp_path / "net"
    assert _init("--branches", "3", "--dir", str(out)).exit_code == 0
    before = (out / "genesis.json").read_text()
    res = _init("--branches", "3", "--dir", str(out))
    assert res.exit_code != 0
    assert "refusing to overwrite without --force" in res.output
    assert (out / "genesis.json").read_text() == before
    (out / "notes.txt").write_text("mine")
    res = _init("--branches", "2", "--dir", str(out), "--force")
    assert res.exit_code == 0, res.output
    assert (out / "genesis.json").read_text() != before
    assert not (out / "branch-3").exists()  # no stale branch of the earlier, bigger network
    assert (out / "notes.txt").read_text() == "mine"  # nothing init did not write is removed


def test_init_table_output_names_every_branch(tmp_path: Path):
    res = _init("--branches", "2", "--dir", str(tmp_path / "n"))
    assert res.exit_code == 0, res.output
    assert "branch-1" in res.output and "branch-2" in res.output and "genesis" in res.output


def test_more_branches_than_the_preset_get_generated_names(tmp_path: Path):
    res = _init("--branches", "6", "--dir", str(tmp_path / "n"), "--json")
    assert res.exit_code == 0, res.output
    assert [b["name"] for b in json.loads(res.output)["branches"]][-2:] == ["branch-5", "branch-6"]


@pytest.mark.parametrize("args, message", [
    (["--host", "10.1.2.3"], "--host must be a loopback address"),
    (["--host", "example.com"], "--host must be a loopback address"),
    (["--base-port", "65530"], "needs ports up to"),
    (["--branches", "0"], "--branches must be 1..64"),
])
def test_init_refuses_bad_options_with_a_clear_error(tmp_path: Path, args, message):
    res = _init("--dir", str(tmp_path / "n"), *args)
    assert res.exit_code != 0
    assert message in res.output
    assert not (tmp_path / "n" / "genesis.json").exists()


def test_network_init_runs_as_a_real_process(tmp_path: Path):
    import subprocess
    import sys

    out = tmp_path / "net"
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "network", "init", "--branches", "4", "--dir", str(out), "--json"],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["branches"]) == 4
    assert load_config(out / "branch-4" / "node.toml").api.port == 27106


def test_init_places_each_branchs_admin_and_staff_in_it_and_writes_the_company_keys(tmp_path: Path):
    from ledger.customers import get_branch_of
    from ledger.state import has_role

    out = tmp_path / "net"
    res = _init("--branches", "3", "--dir", str(out), "--base-port", "32100")
    assert res.exit_code == 0, res.output
    assert "who holds what" in res.output and "branch-2/keys/staff.key" in res.output
    state = MemoryState(genesis_state(load_genesis(out / "genesis.json")))
    for name in ("branch-1", "branch-2", "branch-3"):
        for role, genesis_role in (("admin", "branch-admin"), ("staff", "staff")):
            account = load_key(out / name / "keys" / f"{role}.key").public_key
            assert has_role(state, genesis_role, account) and get_branch_of(state, account) == name
    for role in ("compliance", "auditor", "treasury"):
        account = load_key(out / "company" / f"{role}.key").public_key
        assert has_role(state, role, account) and get_branch_of(state, account) == ""
