"""The knobs of a running node, mapped from a validated node.toml (``ServiceOptions.from_config``)."""

from __future__ import annotations

from dataclasses import dataclass

from node.config import NodeConfig

DEFAULT_EMPTY_BLOCK_INTERVAL_MS = 1000  # until node.toml's [consensus] carries empty_block_interval_ms


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """The knobs of a running node (node.toml's consensus, mempool and block sections, and a few internals)."""

    name: str = "node"
    base_timeout_ms: int = 1000
    max_timeout_ms: int = 30_000
    block_interval_ms: int = 200
    max_future_ms: int = 2000
    block_max_txs: int = 2000
    block_max_bytes: int = 4 * 1024 * 1024
    mempool_max_count: int = 20_000
    mempool_max_bytes: int = 32 * 1024 * 1024
    mempool_max_per_sender: int = 256
    max_frame_bytes: int = 8 * 1024 * 1024
    retransmit_ms: int = 1000  # re-send this height's votes while it does not move
    sync_poll_ms: int = 2000  # ask peers for their head when no block committed for this long
    empty_block_interval_ms: int = DEFAULT_EMPTY_BLOCK_INTERVAL_MS  # with an empty mempool, a new height waits this long after a commit
    verify_workers: int = 0  # signature-check worker processes for admission (node.verify_pool); 0 = in the loop

    @classmethod
    def from_config(cls, cfg: NodeConfig) -> "ServiceOptions":
        """Map a validated node.toml onto the service options."""
        c = cfg.consensus
        return cls(name=cfg.name, base_timeout_ms=c.base_timeout_ms, max_timeout_ms=c.max_timeout_ms,
                   block_interval_ms=c.block_interval_ms, max_future_ms=c.max_future_ms,
                   block_max_txs=cfg.block.max_txs, block_max_bytes=cfg.block.max_bytes,
                   mempool_max_count=cfg.mempool.max_count, mempool_max_bytes=cfg.mempool.max_bytes,
                   mempool_max_per_sender=cfg.mempool.max_per_sender, max_frame_bytes=cfg.max_frame_bytes,
                   empty_block_interval_ms=getattr(c, "empty_block_interval_ms", DEFAULT_EMPTY_BLOCK_INTERVAL_MS),
                   verify_workers=cfg.verify_workers)


def compute_http_url(peer_url: str) -> str:
    """The HTTP base URL of a peer's listener (``ws://h:p/peer`` -> ``http://h:p``): it serves block sync."""
    scheme, rest = peer_url.split("://", 1)
    hostport = rest.split("/", 1)[0]
    return f"{'https' if scheme == 'wss' else 'http'}://{hostport}"
