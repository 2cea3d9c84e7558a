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


# ---- add-branch -----------------------------------------------------------------------------------------

def _add_branch(*args: str):
    return CliRunner().invoke(network, ["add-branch", *args])


def test_add_branch_writes_a_followers_keys_and_config_and_the_governance_commands(tmp_path: Path):
    import shlex

    from cli.main import main

    out = tmp_path / "net"
    assert _init("--branches", "4", "--dir", str(out), "--base-port", "33100", "--json").exit_code == 0
    res = _add_branch("--dir", str(out), "--name", "branch-5", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    bdir = out / "branch-5"
    node_key = load_key(bdir / "node.key")  # 0600, or load_key refuses it
    assert doc["node_key"] == node_key.public_key.hex()
    admin, staff = (load_key(bdir / "keys" / f"{r}.key") for r in ("admin", "staff"))
    cfg = load_config(bdir / "node.toml")
    existing = [load_config(out / f"branch-{i}" / "node.toml") for i in range(1, 5)]
    taken = {p for c in existing for p in (c.api.port, c.peer.port)}
    assert cfg.api.port not in taken and cfg.peer.port not in taken and cfg.peer.port == cfg.api.port + 1
    assert cfg.api.port >= 33108 and cfg.api.port % 2 == 0  # init's pattern, after the last branch
    assert cfg.genesis_file == out / "genesis.json" and cfg.key_file == bdir / "node.key"
    genesis = load_genesis(out / "genesis.json")
    assert {p.public_key for p in cfg.peers} == {v.public_key for v in genesis.validators}  # it dials them all
    assert cfg.consensus == existing[0].consensus
    assert node_key.public_key not in {v.public_key for v in genesis.validators}  # nobody changes genesis
    for c in existing:  # the running nodes need no config change
        assert {p.public_key for p in c.peers} == {v.public_key for v in genesis.validators} - {
            load_key(c.key_file).public_key}

    cmds = doc["commands"]
    propose = shlex.split(cmds[0])
    assert propose[:3] == ["carecoin", "tx", "propose-add-validator"]
    assert propose[propose.index("--node-public-key") + 1] == node_key.public_key.hex()
    assert propose[propose.index("--peer-address") + 1] == f"wss://127.0.0.1:{cfg.peer.port}/peer"  # mutual TLS
    # the default quorum of 4 branches is 3: the proposer's branch and two approvals of other branches
    approvals = [shlex.split(c) for c in cmds[1:3]]
    assert all(a[2] == "approve-proposal" for a in approvals)
    admins = {a[a.index("--key") + 1] for a in [propose, *approvals]}
    assert admins == {str(out / f"branch-{i}" / "keys" / "admin.key") for i in (1, 2, 3)}
    assert cmds[3] == f"carecoin node start --config {bdir / 'node.toml'}"
    grants = " ".join(cmds[4:])
    assert admin.public_key.hex() in grants and staff.public_key.hex() in grants and "--branch branch-5" in grants
    # every printed tx command parses as the real CLI's (the node is unreachable: not a usage error)
    for cmd in [c for c in cmds if c.startswith("carecoin tx")]:
        args = shlex.split(cmd)[1:]
        args[args.index("--node") + 1] = "http://127.0.0.1:9"
        parsed = CliRunner().invoke(main, args)
        assert parsed.exit_code not in (0, 2), (cmd, parsed.output)
        assert "No such option" not in parsed.output and "Missing option" not in parsed.output
    # and the proposal it prints is admissible on the network
    tx = make_tx(genesis.chain_id, "propose-add-validator", load_key(propose[propose.index("--key") + 1]), 1,
                 ["add-branch-5", "branch-5", node_key.public_key, propose[propose.index("--peer-address") + 1]])
    check_admissible(MemoryState(genesis_state(genesis)), tx, genesis.chain_id)


def test_add_branch_refuses_a_taken_name_and_a_directory_without_a_network(tmp_path: Path):
    out = tmp_path / "net"
    assert _init("--branches", "2", "--dir", str(out), "--base-port", "33200").exit_code == 0
    res = _add_branch("--dir", str(out), "--name", "branch-2")
    assert res.exit_code != 0 and "branch 'branch-2' is taken" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = _add_branch("--dir", str(empty), "--name", "branch-3")
    assert res.exit_code != 0 and "holds no genesis.json" in res.output


def test_add_branch_skips_ports_in_use(tmp_path: Path):
    import socket

    from cli.ports import free_port_base

    base = free_port_base(8)
    out = tmp_path / "net"
    assert _init("--branches", "2", "--dir", str(out), "--base-port", str(base)).exit_code == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base + 4))  # the next branch's first port
        busy.listen()
        res = _add_branch("--dir", str(out), "--name", "branch-3", "--json")
    assert res.exit_code == 0, res.output
    cfg = load_config(out / "branch-3" / "node.toml")
    assert cfg.api.port >= base + 6 and (cfg.api.port - base) % 2 == 0
