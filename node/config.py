"""Node configuration: the per-branch ``node.toml`` and the presets under ``configs/``.

Three tiers (STYLE "Configuration"): the ``DEFAULT_*`` constants below, presets in ``configs/`` (a 4-branch
local network, a default policy) and the per-network files ``carecoin network init`` writes. ``load_config``
validates every field and raises ``ConfigError`` naming the file, the field, what was seen and what was
expected. Relative paths resolve against the directory of the TOML file. Hosts are taken as given: an IP
literal or ``localhost``; nothing here resolves a name or touches the network.

node.toml layout::

    [node]       name, key_file, genesis_file, data_dir
    [api]        host, port
    [peer]       host, port, max_frame_bytes
    [[peers]]    name, public_key (hex), url (ws://host:port/peer)
    [consensus]  base_timeout_ms, max_timeout_ms, block_interval_ms, max_future_ms, empty_block_interval_ms
    [mempool]    max_count, max_bytes, max_per_sender
    [block]      max_txs, max_bytes
    [log]        format ("text" | "json"), level ("debug" | "info" | "warning" | "error")
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from node.errors import ConfigError

# Tier 1: constants. configs/local-4.toml repeats them so an operator sees every knob in one place.
DEFAULT_CHAIN_ID = "carecoin-local"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 27100
DEFAULT_BASE_TIMEOUT_MS = 1000
DEFAULT_MAX_TIMEOUT_MS = 30_000
DEFAULT_BLOCK_INTERVAL_MS = 200
DEFAULT_EMPTY_BLOCK_INTERVAL_MS = 1000
DEFAULT_MAX_FUTURE_MS = 2000
DEFAULT_MEMPOOL_MAX_COUNT = 20_000
DEFAULT_MEMPOOL_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_MEMPOOL_MAX_PER_SENDER = 256
DEFAULT_BLOCK_MAX_TXS = 2000
DEFAULT_BLOCK_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024
DEFAULT_LOG_FORMAT = "text"
DEFAULT_LOG_LEVEL = "info"

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
PEER_PATH = "/peer"
PRESET_LOCAL_4 = "local-4.toml"


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class PeerEntry:
    name: str
    public_key: bytes
    url: str


@dataclass(frozen=True, slots=True)
class ConsensusConfig:
    base_timeout_ms: int = DEFAULT_BASE_TIMEOUT_MS
    max_timeout_ms: int = DEFAULT_MAX_TIMEOUT_MS
    block_interval_ms: int = DEFAULT_BLOCK_INTERVAL_MS
    max_future_ms: int = DEFAULT_MAX_FUTURE_MS
    empty_block_interval_ms: int = DEFAULT_EMPTY_BLOCK_INTERVAL_MS  # idle: an empty block at most this often


@dataclass(frozen=True, slots=True)
class MempoolConfig:
    max_count: int = DEFAULT_MEMPOOL_MAX_COUNT
    max_bytes: int = DEFAULT_MEMPOOL_MAX_BYTES
    max_per_sender: int = DEFAULT_MEMPOOL_MAX_PER_SENDER


@dataclass(frozen=True, slots=True)
class BlockConfig:
    max_txs: int = DEFAULT_BLOCK_MAX_TXS
    max_bytes: int = DEFAULT_BLOCK_MAX_BYTES


@dataclass(frozen=True, slots=True)
class LogConfig:
    format: str = DEFAULT_LOG_FORMAT
    level: str = DEFAULT_LOG_LEVEL


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A validated node.toml; every path is absolute."""

    path: Path
    name: str
    key_file: Path
    genesis_file: Path
    data_dir: Path
    api: ListenAddress
    peer: ListenAddress
    max_frame_bytes: int
    peers: tuple[PeerEntry, ...]
    consensus: ConsensusConfig
    mempool: MempoolConfig
    block: BlockConfig
    log: LogConfig


# --- field checks (each raises ConfigError naming file, field, seen and expected) ---

class _Reader:
    """Typed getters over one TOML table that name the file and field in every error."""

    def __init__(self, where: str, table: Any, section: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] must be a table, got {type(table).__name__}")
        self.where, self.table, self.section = where, table, section

    def _field(self, key: str) -> str:
        return f"{self.section}.{key}" if self.section else key

    def int(self, key: str, lo: int, hi: int, default: int | None = None) -> int:
        value = self.table.get(key, default)
        if value is None:
            raise ConfigError(f"{self.where}: {self._field(key)} is missing; expected an integer {lo}..{hi}")
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(f"{self.where}: {self._field(key)} must be an integer {lo}..{hi}, got {value!r}")
        return value

    def str(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self.table.get(key, default)
        if value is None:
            raise ConfigError(f"{self.where}: {self._field(key)} is missing; expected a string")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.where}: {self._field(key)} must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise ConfigError(
                f"{self.where}: {self._field(key)} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def host(self, key: str, default: str | None = None) -> str:
        value = self.str(key, default)
        if not is_valid_host(value):
            raise ConfigError(
                f"{self.where}: {self._field(key)} must be an IP address or 'localhost', got {value!r}")
        return value


def is_valid_host(host: str) -> bool:
    """True for an IP literal or ``localhost`` (names are never resolved here)."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_local_or_any_host(host: str) -> bool:
    """True for a loopback address, ``localhost`` or the any-address (0.0.0.0 / ::)."""
    if host == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr.is_loopback or addr.is_unspecified


def compute_peer_url(host: str, port: int) -> str:
    """The URL a peer dials to reach a node listening on ``host:port`` (any-address dials loopback)."""
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"ws://{host}:{port}{PEER_PATH}"


def _peer_entry(where: str, i: int, doc: Any) -> PeerEntry:
    r = _Reader(where, doc, f"peers[{i}]")
    name = r.str("name")
    key_hex = r.str("public_key")
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{where}: peers[{i}].public_key must be 64 hex digits, got {key_hex[:20]!r}")
    url = r.str("url")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("ws", "wss") or not parts.hostname or port is None or \
            not is_valid_host(parts.hostname):
        raise ConfigError(
            f"{where}: peers[{i}].url must look like ws://127.0.0.1:PORT{PEER_PATH}, got {url!r}")
    return PeerEntry(name, key, url)


def _path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def config_from_dict(doc: dict[str, Any], path: Path) -> NodeConfig:
    """Validate a parsed node.toml document; relative paths resolve against ``path``'s directory."""
    where = path.name
    base = path.parent.resolve()
    known = {"node", "api", "peer", "peers", "consensus", "mempool", "block", "log"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown section {unknown[0]!r}; expected one of {', '.join(sorted(known))}")
    node = _Reader(where, doc.get("node"), "node") if "node" in doc else None
    if node is None:
        raise ConfigError(f"{where}: [node] section is missing")
    api = _Reader(where, doc.get("api", {}), "api")
    peer = _Reader(where, doc.get("peer", {}), "peer")
    cons = _Reader(where, doc.get("consensus", {}), "consensus")
    mem = _Reader(where, doc.get("mempool", {}), "mempool")
    blk = _Reader(where, doc.get("block", {}), "block")
    log = _Reader(where, doc.get("log", {}), "log")

    peers_doc = doc.get("peers", [])
    if not isinstance(peers_doc, list):
        raise ConfigError(f"{where}: peers must be an array of tables ([[peers]]), got {type(peers_doc).__name__}")
    peers = tuple(_peer_entry(where, i, p) for i, p in enumerate(peers_doc))
    seen: set[bytes] = set()
    for p in peers:
        if p.public_key in seen:
            raise ConfigError(f"{where}: peer key {p.public_key.hex()[:16]}… is listed twice")
        seen.add(p.public_key)

    consensus = ConsensusConfig(
        base_timeout_ms=cons.int("base_timeout_ms", 10, 600_000, DEFAULT_BASE_TIMEOUT_MS),
        max_timeout_ms=cons.int("max_timeout_ms", 10, 3_600_000, DEFAULT_MAX_TIMEOUT_MS),
        block_interval_ms=cons.int("block_interval_ms", 0, 600_000, DEFAULT_BLOCK_INTERVAL_MS),
        max_future_ms=cons.int("max_future_ms", 0, 3_600_000, DEFAULT_MAX_FUTURE_MS),
        empty_block_interval_ms=cons.int("empty_block_interval_ms", 0, 3_600_000, DEFAULT_EMPTY_BLOCK_INTERVAL_MS),
    )
    if consensus.max_timeout_ms < consensus.base_timeout_ms:
        raise ConfigError(f"{where}: consensus.max_timeout_ms ({consensus.max_timeout_ms}) must be at least "
                          f"consensus.base_timeout_ms ({consensus.base_timeout_ms})")
    api_addr = ListenAddress(api.host("host", DEFAULT_HOST), api.int("port", 1, 65535))
    peer_addr = ListenAddress(peer.host("host", DEFAULT_HOST), peer.int("port", 1, 65535))
    if api_addr.port == peer_addr.port and api_addr.host == peer_addr.host:
        raise ConfigError(f"{where}: api.port and peer.port are both {api_addr.port}; expected two ports")
    return NodeConfig(
        path=path.resolve(),
        name=node.str("name"),
        key_file=_path(base, node.str("key_file", "node.key")),
        genesis_file=_path(base, node.str("genesis_file", "../genesis.json")),
        data_dir=_path(base, node.str("data_dir", "data")),
        api=api_addr,
        peer=peer_addr,
        max_frame_bytes=peer.int("max_frame_bytes", 1024, 256 * 1024 * 1024, DEFAULT_MAX_FRAME_BYTES),
        peers=peers,
        consensus=consensus,
        mempool=MempoolConfig(
            max_count=mem.int("max_count", 1, 10_000_000, DEFAULT_MEMPOOL_MAX_COUNT),
            max_bytes=mem.int("max_bytes", 1024, 2**40, DEFAULT_MEMPOOL_MAX_BYTES),
            max_per_sender=mem.int("max_per_sender", 1, 10_000_000, DEFAULT_MEMPOOL_MAX_PER_SENDER),
        ),
        block=BlockConfig(
            max_txs=blk.int("max_txs", 1, 10_000, DEFAULT_BLOCK_MAX_TXS),
            max_bytes=blk.int("max_bytes", 1024, 2**31, DEFAULT_BLOCK_MAX_BYTES),
        ),
        log=LogConfig(
            format=log.str("format", DEFAULT_LOG_FORMAT, LOG_FORMATS),
            level=log.str("level", DEFAULT_LOG_LEVEL, LOG_LEVELS),
        ),
    )


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; raise ``ConfigError`` for a missing or malformed file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from None


def load_config(path: str | Path) -> NodeConfig:
    """Read and validate a node.toml; raise ``ConfigError`` naming the first bad field."""
    path = Path(path)
    return config_from_dict(read_toml(path), path)


def config_to_dict(cfg: NodeConfig) -> dict[str, Any]:
    """The TOML document of ``cfg`` (paths relative to the config's directory where possible)."""
    base = cfg.path.parent

    def rel(p: Path) -> str:
        try:
            return str(p.relative_to(base))
        except ValueError:
            if p.parent == base.parent:
                return f"../{p.name}"
            return str(p)

    return {
        "node": {"name": cfg.name, "key_file": rel(cfg.key_file), "genesis_file": rel(cfg.genesis_file),
                 "data_dir": rel(cfg.data_dir)},
        "api": {"host": cfg.api.host, "port": cfg.api.port},
        "peer": {"host": cfg.peer.host, "port": cfg.peer.port, "max_frame_bytes": cfg.max_frame_bytes},
        "peers": [{"name": p.name, "public_key": p.public_key.hex(), "url": p.url} for p in cfg.peers],
        "consensus": {"base_timeout_ms": cfg.consensus.base_timeout_ms,
                      "max_timeout_ms": cfg.consensus.max_timeout_ms,
                      "block_interval_ms": cfg.consensus.block_interval_ms,
                      "max_future_ms": cfg.consensus.max_future_ms,
                      "empty_block_interval_ms": cfg.consensus.empty_block_interval_ms},
        "mempool": {"max_count": cfg.mempool.max_count, "max_bytes": cfg.mempool.max_bytes,
                    "max_per_sender": cfg.mempool.max_per_sender},
        "block": {"max_txs": cfg.block.max_txs, "max_bytes": cfg.block.max_bytes},
        "log": {"format": cfg.log.format, "level": cfg.log.level},
    }


# --- presets ---

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


def verify_config_against_genesis(cfg: NodeConfig, validators: Mapping[bytes, str], node_key: bytes) -> None:
    """Raise ``ConfigError`` unless our key and every peer's key are validators of the genesis.

    ``validators`` maps public key -> name (from genesis.json). A node whose key is not a validator, or a
    peer entry naming a key the genesis does not know, would only ever be refused by the other side's
    handshake; saying so at start-up is clearer.
    """
    where = cfg.path.name if cfg.path.parent.name == "" else f"{cfg.path.parent.name}/{cfg.path.name}"
    if node_key not in validators:
        raise ConfigError(f"{where}: node key {node_key.hex()[:16]}… ({cfg.key_file.name}) is not a validator "
                          f"in {cfg.genesis_file.name}; expected one of {', '.join(validators.values())}")
    for i, peer in enumerate(cfg.peers):
        name = validators.get(peer.public_key)
        if name is None:
            raise ConfigError(f"{where}: peers[{i}] ({peer.name}) key {peer.public_key.hex()[:16]}… is not a "
                              f"validator in {cfg.genesis_file.name}")
        if peer.public_key == node_key:
            raise ConfigError(f"{where}: peers[{i}] ({peer.name}) is this node's own key")
