"""node.toml ``[node] verify_workers``: signature-check worker processes (default 0: in the event loop)."""

from pathlib import Path

import pytest
import tomli_w

from cli.network import init_network
from node.config import config_to_dict, load_config
from node.errors import ConfigError
from node.options import ServiceOptions


@pytest.fixture()
def net(tmp_path: Path):
    return init_network(tmp_path / "net", 1, base_port=31100, now_ms=1_700_000_000_000)


def _set_workers(path: Path, value) -> None:
    import tomllib

    doc = tomllib.loads(path.read_text())
    doc["node"]["verify_workers"] = value
    path.write_text(tomli_w.dumps(doc))


def test_verify_workers_defaults_to_zero_and_reaches_the_service_options(net):
    path = net.branches[0].config_path
    cfg = load_config(path)
    assert cfg.verify_workers == 0 and ServiceOptions.from_config(cfg).verify_workers == 0
    assert "verify_workers" not in config_to_dict(cfg)["node"]
    _set_workers(path, 3)
    cfg = load_config(path)
    assert ServiceOptions.from_config(cfg).verify_workers == 3
    assert config_to_dict(cfg)["node"]["verify_workers"] == 3


@pytest.mark.parametrize("value", [-1, 65, "2", True])
def test_a_bad_verify_workers_is_refused_naming_the_field(net, value):
    path = net.branches[0].config_path
    _set_workers(path, value)
    with pytest.raises(ConfigError, match=r"node\.verify_workers must be an integer 0\.\.64"):
        load_config(path)
