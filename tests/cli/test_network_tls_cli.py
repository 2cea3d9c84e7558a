"""`carecoin network init --tls` and `add-branch` on a TLS network: certificates from the one network CA."""

import json
import ssl
import stat
from pathlib import Path

from click.testing import CliRunner

from cli.client import find_network_ca
from cli.network import add_branch, network
from ledger.genesis import load_genesis
from ledger.keys import load_key
from node.config import load_config
from node.tls import build_api_context, build_peer_tls, read_pinned_ca
from node.tls_certs import compute_fingerprint, read_node_key_of_pem


def _init(*args: str):
    return CliRunner().invoke(network, ["init", *args])


def test_init_tls_gives_every_branch_an_https_api_signed_by_the_network_ca(tmp_path: Path):
    out = tmp_path / "net"
    res = _init("--branches", "2", "--dir", str(out), "--base-port", "32100", "--tls", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["ca_file"] == str(out.resolve() / "company" / "tls-ca.pem")
    for branch in summary["branches"]:
        cfg = load_config(branch["config"])
        assert branch["api"] == f"https://127.0.0.1:{cfg.api.port}"
        assert branch["peer"] == f"wss://127.0.0.1:{cfg.peer.port}/peer"
        assert cfg.api_tls is not None and stat.S_IMODE(cfg.api_tls.key_file.stat().st_mode) == 0o600
        build_api_context(cfg.api_tls.cert_file, cfg.api_tls.key_file)  # loads
        # a client trusting only the network CA accepts the API certificate for 127.0.0.1
        client = ssl.create_default_context(cafile=summary["ca_file"])
        server = build_api_context(cfg.api_tls.cert_file, cfg.api_tls.key_file)
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        cli = client.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
        srv = server.wrap_bio(s_in, s_out, server_side=True)
        for _ in range(10):
            for obj, src, dst in ((cli, c_out, s_in), (srv, s_out, c_in)):
                try:
                    obj.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                dst.write(src.read())
        assert cli.version() is not None  # handshake completed, hostname and chain verified


def test_init_without_tls_keeps_plain_http_for_the_api_but_pins_the_peer_ca(tmp_path: Path):
    res = _init("--branches", "1", "--dir", str(tmp_path / "net"), "--base-port", "32200", "--json")
    assert res.exit_code == 0, res.output
    branch = json.loads(res.output)["branches"][0]
    assert branch["api"].startswith("http://")
    assert load_config(branch["config"]).api_tls is None
    assert read_pinned_ca(load_genesis(tmp_path / "net" / "genesis.json").extra) is not None


def test_add_branch_issues_the_new_branchs_certificates_with_the_same_ca(tmp_path: Path):
    out = tmp_path / "net"
    assert _init("--branches", "2", "--dir", str(out), "--base-port", "32300", "--tls").exit_code == 0
    new = add_branch(out, "branch-9")
    cfg = load_config(new.config_path)
    ca_pem = read_pinned_ca(load_genesis(out / "genesis.json").extra)
    assert read_node_key_of_pem(cfg.peer_tls.cert_file.read_bytes()) == load_key(cfg.key_file).public_key
    build_peer_tls(ca_pem, cfg.peer_tls.cert_file, cfg.peer_tls.key_file)
    assert cfg.api_tls is not None and all(p.url.startswith("wss://") for p in cfg.peers)
    assert new.peer_url.startswith("wss://") and new.to_json()["api"].startswith("https://")
    assert all("--node https://" in c for c in new.commands if c.startswith("carecoin tx"))


def test_add_branch_refuses_a_ca_that_is_not_the_pinned_one(tmp_path: Path):
    out = tmp_path / "net"
    assert _init("--branches", "1", "--dir", str(out), "--base-port", "32400").exit_code == 0
    other = tmp_path / "other"
    assert _init("--branches", "1", "--dir", str(other), "--base-port", "32500").exit_code == 0
    (out / "company" / "tls-ca.pem").write_bytes((other / "company" / "tls-ca.pem").read_bytes())
    res = CliRunner().invoke(network, ["add-branch", "--dir", str(out), "--name", "branch-5"])
    assert res.exit_code != 0 and "not the CA genesis.json pins" in res.output
    assert compute_fingerprint((other / "company" / "tls-ca.pem").read_bytes()) != \
        load_genesis(out / "genesis.json").extra["tls"]["ca_sha256"]


def test_the_cli_finds_the_network_ca_next_to_a_key_of_the_network(tmp_path: Path):
    out = tmp_path / "net"
    assert _init("--branches", "1", "--dir", str(out), "--base-port", "32600").exit_code == 0
    assert find_network_ca(out / "branch-1" / "keys" / "admin.key") == out.resolve() / "company" / "tls-ca.pem"
    assert find_network_ca(out / "company" / "auditor.key") == out.resolve() / "company" / "tls-ca.pem"
    assert find_network_ca(tmp_path / "elsewhere.key") is None
    assert find_network_ca(None) is None
