"""`carecoin network init --hosts`: each branch listens on its own host and the others dial it there."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from cli.main import main
from node.config import load_config

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]


def _init(*args: str):
    return CliRunner().invoke(main, ["network", "init", *args])


def test_each_branch_binds_its_own_host_and_its_peers_dial_the_others_there(tmp_path: Path):
    res = _init("--dir", str(tmp_path / "n"), "--hosts", ",".join(HOSTS), "--base-port", "27400", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert [b["api"] for b in summary["branches"]] == [f"http://{h}:{27400 + 2 * i}" for i, h in enumerate(HOSTS)]
    configs = [load_config(b["config"]) for b in summary["branches"]]
    for i, cfg in enumerate(configs):
        assert (cfg.api.host, cfg.peer.host) == (HOSTS[i], HOSTS[i])
        dialed = {p.name: p.url for p in cfg.peers}
        for j, other in enumerate(configs):
            if j != i:
                assert dialed[other.name] == f"wss://{HOSTS[j]}:{27401 + 2 * j}/peer"


def test_the_https_certificate_of_each_branch_names_its_own_host(tmp_path: Path):
    res = _init("--dir", str(tmp_path / "n"), "--hosts", ",".join(HOSTS), "--tls", "--json")
    assert res.exit_code == 0, res.output
    for i, b in enumerate(json.loads(res.output)["branches"]):
        cert = x509.load_pem_x509_certificate(load_config(b["config"]).api_tls.cert_file.read_bytes())
        ips = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.IPAddress)
        assert ipaddress.ip_address(HOSTS[i]) in ips and b["api"].startswith(f"https://{HOSTS[i]}:")


def test_the_branch_count_follows_the_hosts_given(tmp_path: Path):
    res = _init("--dir", str(tmp_path / "n"), "--hosts", "127.0.0.2,127.0.0.3", "--json")
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.output)["branches"]) == 2


@pytest.mark.parametrize("args, message", [
    (["--branches", "3", "--hosts", "127.0.0.2,127.0.0.3"], "names 2 hosts for 3 branches"),
    (["--hosts", "127.0.0.2,0.0.0.0"], "--hosts entry 2 is '0.0.0.0'"),
    (["--hosts", "127.0.0.2,node-b.example"], "names are not resolved"),
    (["--host", "127.0.0.1", "--hosts", "127.0.0.2,127.0.0.3"], "either --host"),
])
def test_bad_hosts_are_refused_with_a_clear_error_and_nothing_written(tmp_path: Path, args, message):
    res = _init("--dir", str(tmp_path / "n"), *args)
    assert res.exit_code != 0
    assert message in res.output
    assert not (tmp_path / "n" / "genesis.json").exists()
