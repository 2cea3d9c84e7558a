"""`carecoin doctor` on a network's files (no node running): each misconfiguration an operator can make is
named with its fix, and fails the command."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.ports import free_port_base
from cli.main import main
from cli.network import init_network
from ledger.keys import KeyPair
from node.config import load_config
from node.tls_certs import make_ca, make_peer_cert, write_private, write_public


@pytest.fixture
def cfg(tmp_path):
    summary = init_network(tmp_path / "net", 4, base_port=free_port_base(8))
    return load_config(summary.branches[0].config_path)


def run(cfg) -> tuple[int, dict]:
    res = CliRunner().invoke(main, ["doctor", "--config", str(cfg.path), "--json"])
    return res.exit_code, {c["name"]: c for c in json.loads(res.output)["checks"]}


def test_a_fresh_branch_passes_its_own_checks_and_fails_only_for_its_stopped_peers(cfg):
    code, checks = run(cfg)
    assert code == 1
    failed = [n for n, c in checks.items() if c["level"] == "fail"]
    assert failed == ["peers"] and "0 of 3 peers reachable" in checks["peers"]["message"]
    for name in ("config", "genesis", "node key", "tls peer", "vault key", "store", "api port", "peer port", "disk"):
        assert checks[name]["level"] == "ok", checks[name]


def test_a_node_key_readable_by_others_fails_with_the_chmod_to_run(cfg):
    cfg.key_file.chmod(0o644)
    code, checks = run(cfg)
    assert code == 1 and checks["node key"]["level"] == "fail"
    assert "mode 0o644" in checks["node key"]["message"] and f"chmod 600 {cfg.key_file}" in checks["node key"]["fix"]


def test_a_peer_certificate_from_another_ca_fails(cfg):
    other_key, other_cert = make_ca("someone-else")
    key_pem, cert_pem = make_peer_cert(other_key, other_cert, cfg.name, KeyPair.generate().public_key)
    write_public(cfg.peer_tls.cert_file, cert_pem)
    write_private(cfg.peer_tls.key_file, key_pem)
    code, checks = run(cfg)
    assert checks["tls peer"]["level"] == "fail" and "not signed by the CA genesis pins" in checks["tls peer"]["message"]


def test_a_peer_certificate_naming_another_node_key_fails(cfg, tmp_path):
    ca = ((tmp_path / "net" / "company" / f"tls-ca.{ext}").read_bytes() for ext in ("key", "pem"))
    key_pem, cert_pem = make_peer_cert(*ca, cfg.name, KeyPair.generate().public_key)
    write_public(cfg.peer_tls.cert_file, cert_pem)
    write_private(cfg.peer_tls.key_file, key_pem)
    code, checks = run(cfg)
    assert checks["tls peer"]["level"] == "fail" and "this node's key" in checks["tls peer"]["message"]


def test_a_port_taken_by_another_process_fails_naming_it(cfg):
    with socket.socket() as sock:
        sock.bind((cfg.api.host, cfg.api.port))
        sock.listen()
        code, checks = run(cfg)
    assert checks["api port"]["level"] == "fail"
    assert f"{cfg.api.host}:{cfg.api.port} is in use by another process" in checks["api port"]["message"]


def test_a_config_that_does_not_parse_is_one_failed_check_not_a_traceback(tmp_path: Path):
    bad = tmp_path / "node.toml"
    bad.write_text("[node\nname = 1")
    res = CliRunner().invoke(main, ["doctor", "--config", str(bad)])
    assert res.exit_code == 1 and "FAIL" in res.output and "not valid TOML" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
