"""Prometheus metrics of one node, on a registry of its own.

Each ``NodeMetrics`` owns a ``CollectorRegistry`` (never the process-global default), so several nodes or
test apps in one process never collide on metric names. The service updates the counters; ``/metrics``
renders ``render()``.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Submit -> commit latency of transactions first seen by this node, in seconds.
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)


class NodeMetrics:
    """The node's metrics: height, round changes, committed txs, mempool size, peers, commit latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.height = Gauge("carecoin_height", "Height of the last committed block", registry=r)
        self.round = Gauge("carecoin_round", "Consensus round at the current height", registry=r)
        self.round_changes = Counter("carecoin_round_changes", "Rounds entered above round 0", registry=r)
        self.committed_txs = Counter("carecoin_committed_txs", "Transactions committed (applied or failed)",
                                     registry=r)
        self.committed_blocks = Counter("carecoin_committed_blocks", "Blocks committed (consensus or sync)",
                                        registry=r)
        self.synced_blocks = Counter("carecoin_synced_blocks", "Blocks committed through catch-up", registry=r)
        self.submitted_txs = Counter("carecoin_submitted_txs", "Transactions accepted by POST /v1/tx", registry=r)
        self.rejected_txs = Counter("carecoin_rejected_txs", "Transactions refused at admission", ["code"],
                                    registry=r)
        self.mempool_size = Gauge("carecoin_mempool_size", "Transactions pending in the mempool", registry=r)
        self.peers = Gauge("carecoin_peers_connected", "Authenticated peer links", registry=r)
        self.verify_pool_workers = Gauge("carecoin_verify_pool_workers", "Signature-check worker processes "
                                         "in use (0: every check runs in the event loop)", registry=r)
        self.verify_pool_failures = Gauge("carecoin_verify_pool_failures", "Times the signature-check pool "
                                          "failed since start (a dead or stalled worker; checks then run in the "
                                          "event loop)", registry=r)
        self.remote_faults = Counter("carecoin_remote_faults", "Bad input from peers, dropped", ["kind"],
                                     registry=r)
        self.peer_tls_refused = Counter("carecoin_peer_tls_refused", "Peer TLS handshakes refused (no or "
                                        "untrusted certificate, plain TCP)", ["direction"], registry=r)
        self.event_streams_cut = Counter("carecoin_event_streams_cut", "Event streams (GET /v1/events) cut "
                                         "because the reader fell too far behind", registry=r)
        self.webhook_deliveries = Counter("carecoin_webhook_deliveries", "Webhook delivery attempts by outcome",
                                          ["outcome"], registry=r)
        self.sink_events = Counter("carecoin_sink_events", "Committed events written to the SQL sink",
                                   registry=r)
        self.commit_latency = Histogram("carecoin_commit_latency_seconds",
                                        "Submit to commit latency of transactions first seen here",
                                        buckets=LATENCY_BUCKETS, registry=r)
        self.block_execution = Histogram("carecoin_block_execution_seconds",
                                         "Time to build or validate one block", registry=r)

    def bind(self, mempool_size: Callable[[], float], peers: Callable[[], float], verify_pool=None) -> None:
        """Read the live mempool size, peer count and signature-check pool state at scrape time."""
        self.mempool_size.set_function(mempool_size)
        self.peers.set_function(peers)
        if verify_pool is not None:
            self.verify_pool_workers.set_function(lambda: verify_pool.workers if verify_pool.active else 0)
            self.verify_pool_failures.set_function(lambda: verify_pool.fallbacks)

    def render(self) -> bytes:
        """Return the Prometheus text exposition of every metric of this node."""
        return generate_latest(self.registry)
