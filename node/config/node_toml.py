"""Node configuration: the per-branch ``node.toml`` (presets: ``node.config.presets``).

Three tiers (STYLE "Configuration"): the ``DEFAULT_*`` constants (``node.config.defaults``), presets in ``configs/`` (a 4-branch
local network, a default policy) and the per-network files ``carecoin network init`` writes. ``load_config``
validates every field and raises ``ConfigError`` naming the file, the field, what was seen and what was
expected. Relative paths resolve against the directory of the TOML file. Hosts are taken as given: an IP
literal or ``localhost``; nothing here resolves a name or touches the network.

node.toml layout::

    [node]       name, key_file, genesis_file, data_dir, vault_master_key_file (optional: node.vault_master),
                 verify_workers (signature-check worker processes, default 0 = in the event loop: node.verify_pool)
    [api]        host, port, tls_cert_file, tls_key_file (HTTPS when both are given)
    [peer]       host, port, max_frame_bytes, tls_cert_file, tls_key_file (required when genesis pins a CA)
    [[peers]]    name, public_key (hex), url (ws://host:port/peer)
    [consensus]  base_timeout_ms, max_timeout_ms, block_interval_ms, max_future_ms, empty_block_interval_ms
    [mempool]    max_count, max_bytes, max_per_sender
    [block]      max_txs, max_bytes
    [log]        format ("text" | "json"), level ("debug" | "info" | "warning" | "error")
    [storage]    state_history_blocks (K, default 256: keep the state trees of the last K heights below the head,
                 delete older ones' nodes), archive (true: keep every height's tree; then no state_history_blocks)
    [sink]       url ("sqlite:///PATH" | "postgresql://..."; default <data_dir>/events.sqlite3): node.sink
    [webhooks]   allow (internal networks / host names hooks may reach): node.webhook_targets
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.config.defaults import (
    DEFAULT_BASE_TIMEOUT_MS, DEFAULT_BLOCK_INTERVAL_MS, DEFAULT_BLOCK_MAX_BYTES, DEFAULT_BLOCK_MAX_TXS,
    DEFAULT_EMPTY_BLOCK_INTERVAL_MS, DEFAULT_HOST, DEFAULT_LOG_FORMAT, DEFAULT_LOG_LEVEL, DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_FUTURE_MS, DEFAULT_MAX_TIMEOUT_MS, DEFAULT_MEMPOOL_MAX_BYTES, DEFAULT_MEMPOOL_MAX_COUNT,
    DEFAULT_MEMPOOL_MAX_PER_SENDER, DEFAULT_STATE_HISTORY_BLOCKS, DEFAULT_VERIFY_WORKERS, LOG_FORMATS, LOG_LEVELS,
    MAX_STATE_HISTORY_BLOCKS, MAX_VERIFY_WORKERS, MIN_STATE_HISTORY_BLOCKS,
)
from node.config.fields import ListenAddress, PeerEntry, TlsFiles, _path, _peer_entry, _Reader, read_tls_files, read_toml
from node.errors import ConfigError


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
    peer_tls: TlsFiles | None = None  # the peer certificate (mutual TLS; node.tls)
    api_tls: TlsFiles | None = None  # the client API's HTTPS certificate
    vault_master_key_file: Path | None = None  # the vault master key outside the data dir (node.vault_master)
    sink_url: str | None = None  # the events sink (node.sink); None: no [sink] section, no sink
    webhook_allow: tuple[str, ...] = ()  # [webhooks] allow: internal targets hooks may reach (node.webhook_targets)
    verify_workers: int = DEFAULT_VERIFY_WORKERS  # [node] verify_workers: signature-check processes (node.verify_pool)
    # [storage]: K, keep the state trees of heights head-K..head (ledger.pruning); None: archive
    state_history_blocks: int | None = DEFAULT_STATE_HISTORY_BLOCKS



def config_from_dict(doc: dict[str, Any], path: Path) -> NodeConfig:
    """Validate a parsed node.toml document; relative paths resolve against ``path``'s directory."""
    where = path.name
    base = path.parent.resolve()
    known = {"node", "api", "peer", "peers", "consensus", "mempool", "block", "log", "sink", "webhooks", "storage"}
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
        peer_tls=read_tls_files(where, peer, base),
        api_tls=read_tls_files(where, api, base),
        vault_master_key_file=_path(base, node.str("vault_master_key_file")) if "vault_master_key_file" in node.table
        else None,
        sink_url=_sink_url(where, doc, base, _path(base, node.str("data_dir", "data"))),
        webhook_allow=_webhook_allow(where, doc),
        verify_workers=node.int("verify_workers", 0, MAX_VERIFY_WORKERS, DEFAULT_VERIFY_WORKERS),
        state_history_blocks=_state_history(where, doc),
    )


def _state_history(where: str, doc: dict[str, Any]) -> int | None:
    """``[storage]``: ``state_history_blocks = K`` (default ``DEFAULT_STATE_HISTORY_BLOCKS``) or ``archive = true``
    (None: every height's state tree kept). Both at once is refused: they contradict each other."""
    r = _Reader(where, doc.get("storage", {}), "storage")
    unknown = sorted(set(r.table) - {"state_history_blocks", "archive"})
    if unknown:
        raise ConfigError(f"{where}: unknown key storage.{unknown[0]}; expected state_history_blocks or archive")
    archive = r.table.get("archive", False)
    if not isinstance(archive, bool):
        raise ConfigError(f"{where}: storage.archive must be true or false, got {archive!r}")
    if archive:
        if "state_history_blocks" in r.table:
            raise ConfigError(f"{where}: storage.archive = true keeps every height's state tree; expected no "
                              f"storage.state_history_blocks with it, got {r.table['state_history_blocks']!r}")
        return None
    given = r.table.get("state_history_blocks")
    if type(given) is int and given == 0:
        raise ConfigError(f"{where}: storage.state_history_blocks must be an integer {MIN_STATE_HISTORY_BLOCKS}.."
                          f"{MAX_STATE_HISTORY_BLOCKS}, got 0 (to keep every height's state tree, set "
                          f"storage.archive = true)")
    return r.int("state_history_blocks", MIN_STATE_HISTORY_BLOCKS, MAX_STATE_HISTORY_BLOCKS,
                 DEFAULT_STATE_HISTORY_BLOCKS)


def _webhook_allow(where: str, doc: dict[str, Any]) -> tuple[str, ...]:
    """``[webhooks] allow``: networks (CIDR or one address) and host names hooks may reach though internal."""
    table = doc.get("webhooks", {})
    if not isinstance(table, dict) or set(table) - {"allow"}:
        raise ConfigError(f"{where}: [webhooks] takes only allow = [\"<network or host>\", ...]")
    allow = table.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(a, str) and 0 < len(a) <= 253 for a in allow):
        raise ConfigError(f"{where}: webhooks.allow must be a list of networks or host names, got {allow!r:.60}")
    return tuple(allow)


def _sink_url(where: str, doc: dict[str, Any], base: Path, data_dir: Path) -> str | None:
    """``[sink] url``: sqlite:///PATH (relative to the node.toml) or postgresql://...; None without [sink]."""
    if "sink" not in doc:
        return None
    url = _Reader(where, doc["sink"], "sink").str("url", f"sqlite:///{data_dir / 'events.sqlite3'}")
    if url.startswith("sqlite:///"):
        return f"sqlite:///{_path(base, url[len('sqlite:///'):])}"
    if url.startswith(("postgresql://", "postgres://")):
        return url
    raise ConfigError(f"{where}: sink.url must be sqlite:///PATH or postgresql://user@host:port/db, got {url[:40]!r}")



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

    def tls(files: TlsFiles | None) -> dict[str, str]:
        return {} if files is None else {"tls_cert_file": rel(files.cert_file), "tls_key_file": rel(files.key_file)}

    return {
        "node": {"name": cfg.name, "key_file": rel(cfg.key_file), "genesis_file": rel(cfg.genesis_file),
                 "data_dir": rel(cfg.data_dir),
                 **({"vault_master_key_file": rel(cfg.vault_master_key_file)} if cfg.vault_master_key_file else {}),
                 **({"verify_workers": cfg.verify_workers} if cfg.verify_workers else {})},
        "api": {"host": cfg.api.host, "port": cfg.api.port, **tls(cfg.api_tls)},
        "peer": {"host": cfg.peer.host, "port": cfg.peer.port, "max_frame_bytes": cfg.max_frame_bytes,
                 **tls(cfg.peer_tls)},
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
        **({"sink": {"url": cfg.sink_url}} if cfg.sink_url else {}),
        **({"webhooks": {"allow": list(cfg.webhook_allow)}} if cfg.webhook_allow else {}),
        **({"storage": {"archive": True}} if cfg.state_history_blocks is None else
           {"storage": {"state_history_blocks": cfg.state_history_blocks}}
           if cfg.state_history_blocks != DEFAULT_STATE_HISTORY_BLOCKS else {}),
    }


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
