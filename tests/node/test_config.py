"""node.toml loading: every field validated with errors that name the file, field, seen and expected."""

from pathlib import Path

import pytest
import tomli_w

from cli.network import init_network
from node.config import (
    DEFAULT_MEMPOOL_MAX_COUNT,
    compute_peer_url,
    config_to_dict,
    load_config,
    load_preset,
)
from node.errors import ConfigError


@pytest.fixture()
def net(tmp_path: Path):
    return init_network(tmp_path / "net", 4, base_port=31000, now_ms=1_700_000_000_000)


def _rewrite(path: Path, mutate) -> None:
    import tomllib

    doc = tomllib.loads(path.read_text())
    mutate(doc)
    path.write_text(tomli_w.dumps(doc))


def test_generated_config_loads_with_absolute_paths_resolved_against_toml_dir(net):
    cfg = load_config(net.branches[1].config_path)
    bdir = net.dir / "branch-2"
    assert cfg.name == "branch-2"
    assert cfg.key_file == bdir / "node.key"
    assert cfg.genesis_file == net.dir / "genesis.json"
    assert cfg.data_dir == bdir / "data"
    assert (cfg.api.port, cfg.peer.port) == (31002, 31003)
    assert [p.name for p in cfg.peers] == ["branch-1", "branch-3", "branch-4"]
    assert cfg.peers[0].url == "wss://127.0.0.1:31001/peer"  # peer links are mutual TLS
    assert cfg.peers[0].public_key == net.branches[0].node_key
    assert cfg.peer_tls is not None and cfg.peer_tls.key_file == bdir / "tls" / "peer.key"
    assert cfg.api_tls is None  # HTTPS for the client API only with `network init --tls`


def test_empty_block_interval_is_read_from_the_consensus_section(net):
    path = net.branches[0].config_path
    assert load_config(path).consensus.empty_block_interval_ms == 1000
    _rewrite(path, lambda d: d["consensus"].update(empty_block_interval_ms=250))
    assert load_config(path).consensus.empty_block_interval_ms == 250


def test_config_round_trips_through_toml(net, tmp_path):
    cfg = load_config(net.branches[0].config_path)
    copy = net.branches[0].config_path.parent / "copy.toml"
    copy.write_text(tomli_w.dumps(config_to_dict(cfg)))
    again = load_config(copy)
    assert again.key_file == cfg.key_file and again.peers == cfg.peers and again.mempool == cfg.mempool
    assert again.consensus == cfg.consensus and again.block == cfg.block and again.log == cfg.log


def test_missing_optional_sections_take_the_defaults(tmp_path):
    p = tmp_path / "node.toml"
    p.write_text('[node]\nname = "solo"\n[api]\nport = 8000\n[peer]\nport = 8001\n')
    cfg = load_config(p)
    assert cfg.mempool.max_count == DEFAULT_MEMPOOL_MAX_COUNT
    assert cfg.peers == () and cfg.key_file == tmp_path / "node.key"


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["api"].update(port="abc"), "node.toml: api.port must be an integer 1..65535, got 'abc'"),
    (lambda d: d["api"].update(port=70000), "api.port must be an integer 1..65535, got 70000"),
    (lambda d: d["peer"].update(port=True), "peer.port must be an integer 1..65535, got True"),
    (lambda d: d["api"].update(host="example.com"), "api.host must be an IP address or 'localhost'"),
    (lambda d: d["mempool"].update(max_count=0), "mempool.max_count must be an integer 1..10000000, got 0"),
    (lambda d: d["block"].update(max_txs=10**6), "block.max_txs must be an integer 1..10000"),
    (lambda d: d["log"].update(format="xml"), "log.format must be one of text, json, got 'xml'"),
    (lambda d: d["consensus"].update(max_timeout_ms=100), "consensus.max_timeout_ms (100) must be at least"),
    (lambda d: d["consensus"].update(empty_block_interval_ms=-1), "consensus.empty_block_interval_ms must be"),
    (lambda d: d["peers"][0].update(public_key="zz"), "peers[0].public_key must be 64 hex digits"),
    (lambda d: d["peers"][0].update(url="http://x/peer"), "peers[0].url must look like ws://"),
    (lambda d: d["peers"].append(dict(d["peers"][0])), "is listed twice"),
    (lambda d: d.pop("node"), "[node] section is missing"),
    (lambda d: d["node"].update(name=""), "node.name must be a non-empty string"),
    (lambda d: d.update(extra={}), "unknown section 'extra'"),
    (lambda d: d["peer"].update(port=d["api"]["port"]), "api.port and peer.port are both"),
    (lambda d: d.update(webhooks={"allow": "10.0.0.0/8"}), "webhooks.allow must be a list of networks or host"),
    (lambda d: d.update(webhooks={"deny": []}), "[webhooks] takes only allow"),
])
def test_bad_field_is_refused_naming_field_and_value(net, mutate, message):
    path = net.branches[0].config_path
    _rewrite(path, mutate)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in err.value.message
    assert err.value.code == "bad_config"


def test_missing_and_malformed_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "node.toml"
    bad.write_text("[node\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_shipped_preset_is_a_four_branch_local_network_with_policy():
    preset = load_preset()
    assert preset.branches == ("branch-1", "branch-2", "branch-3", "branch-4")
    assert preset.host == "127.0.0.1"
    assert preset.policy["earn_rate_bp"] > 0


def test_peer_url_of_any_address_dials_loopback():
    assert compute_peer_url("0.0.0.0", 9) == "ws://127.0.0.1:9/peer"
    assert compute_peer_url("::1", 9) == "ws://[::1]:9/peer"


def test_config_is_checked_against_the_genesis_validator_set(net):
    from ledger.genesis import load_genesis
    from ledger.keys import load_key
    from node.config import verify_config_against_genesis

    cfg = load_config(net.branches[0].config_path)
    genesis = load_genesis(cfg.genesis_file)
    validators = {v.public_key: v.name for v in genesis.validators}
    own = load_key(cfg.key_file).public_key
    verify_config_against_genesis(cfg, validators, own)  # as generated: consistent
    with pytest.raises(ConfigError, match="node key .* is not a validator in genesis.json"):
        verify_config_against_genesis(cfg, validators, b"\x07" * 32)
    other_net = {k: n for k, n in validators.items() if k != cfg.peers[1].public_key}
    with pytest.raises(ConfigError, match=r"peers\[1\] \(branch-3\) key .* is not a validator"):
        verify_config_against_genesis(cfg, other_net, own)


def test_webhook_allow_list_is_read_and_round_trips(net, tmp_path):
    path = net.branches[0].config_path
    _rewrite(path, lambda d: d.update(webhooks={"allow": ["10.20.0.0/16", "crm.internal"]}))
    cfg = load_config(path)
    assert cfg.webhook_allow == ("10.20.0.0/16", "crm.internal")
    assert config_to_dict(cfg)["webhooks"] == {"allow": ["10.20.0.0/16", "crm.internal"]}
