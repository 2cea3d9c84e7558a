"""Network presets under ``configs/`` (tier 2): branch names, chain id, ports and node.toml defaults."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from node.config.defaults import DEFAULT_BASE_PORT, DEFAULT_CHAIN_ID, DEFAULT_HOST, PRESET_LOCAL_4
from node.config.fields import _path, _Reader, read_toml
from node.config.node_toml import BlockConfig, ConsensusConfig, LogConfig, MempoolConfig, config_from_dict
from node.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Preset:
    """A network preset: branch names, chain id, ports and the defaults every node.toml starts from."""

    chain_id: str
    host: str
    base_port: int
    branches: tuple[str, ...]
    policy: dict[str, int | str]
    consensus: ConsensusConfig
    mempool: MempoolConfig
    block: BlockConfig
    log: LogConfig
    max_frame_bytes: int


def get_preset_path(name: str = PRESET_LOCAL_4) -> Path:
    """Path of a preset shipped in the ``configs`` package."""
    return Path(str(resources.files("configs").joinpath(name)))


def load_preset(path: str | Path | None = None) -> Preset:
    """Read a network preset (default ``configs/local-4.toml``) and its policy file."""
    path = Path(path) if path is not None else get_preset_path()
    doc = read_toml(path)
    where = path.name
    net = _Reader(where, doc.get("network", {}), "network")
    branches = net.table.get("branches", [])
    if not isinstance(branches, list) or not all(isinstance(b, str) and b for b in branches):
        raise ConfigError(f"{where}: network.branches must be an array of non-empty strings")
    policy: dict[str, int | str] = {}
    policy_file = net.table.get("policy_file")
    if policy_file is not None:
        pdoc = read_toml(_path(path.parent, net.str("policy_file")))
        policy = pdoc.get("policy", pdoc)
        for k, v in policy.items():
            if isinstance(v, bool) or not isinstance(v, (int, str)):
                raise ConfigError(f"{policy_file}: policy.{k} must be an integer or string, got {v!r}")
    # Reuse node.toml validation for the shared sections by building a throw-away node document.
    probe = {k: doc[k] for k in ("consensus", "mempool", "block", "log") if k in doc}
    probe["node"] = {"name": "preset"}
    probe["api"] = {"port": 1}
    probe["peer"] = {"port": 2, **({} if "peer" not in doc else doc["peer"])}
    cfg = config_from_dict(probe, path)
    return Preset(
        chain_id=net.str("chain_id", DEFAULT_CHAIN_ID),
        host=net.host("host", DEFAULT_HOST),
        base_port=net.int("base_port", 1, 65535, DEFAULT_BASE_PORT),
        branches=tuple(branches),
        policy=dict(policy),
        consensus=cfg.consensus, mempool=cfg.mempool, block=cfg.block, log=cfg.log,
        max_frame_bytes=cfg.max_frame_bytes,
    )

