"""The node's parts, wired together: the composition root (no logic of its own beyond routing peer frames).

``NodeService`` builds, for one validator and an open store: the mempool, the committer and the block
pipeline (``node.pipeline``), the consensus loop with its driver (``node.loop``, ``node.driver``), admission
(``node.admission``), catch-up (``node.sync``), the peer network, and the read models (``node.reads``). Each
part gets the few ports it needs, never the service. On an empty store it commits the genesis block first; a
store of another genesis is refused (``GenesisMismatch``). A node whose key is in no validator set (yet) runs
as a follower: it catches up and validates, and votes once governance adds it.

The peer links follow the validator set on chain (``compute_validator_peers``, re-read after every commit):
the handshake accepts the keys of the set in force and of the one decided next, a validator added by
governance is dialed at the address its decision carries (configured addresses win, so genesis validators
keep theirs), and the links of a removed one close once it has left the set (it may go on following
through the peer listener's block route, which needs no link). The same addresses are catch-up sources.

Lifecycle: ``start_consensus``/``stop_consensus`` and ``start_peers``/``stop_peers`` are the one definition
of starting and stopping each resource; ``node.app`` runs them from its ``cleanup_ctx`` entries, and
``NodeService.start``/``stop`` run the same functions for tests. The service never opens or closes the
store: whoever opened it closes it (``node.app``'s store context, or ``close`` in tests).
"""

from __future__ import annotations

import logging
import time
from typing import Sequence

from consensus.errors import ConsensusError
from consensus.events import MessageReceived
from consensus.wire import decode_message
from ledger import chain, state, validator_sets
from ledger.genesis import Genesis
from ledger.keys import KeyPair
from node.admission import CHANNEL_TX, CHANNEL_TXS, Admission, is_privileged
from node.committer import Committer
from node.config import PeerEntry
from node.errors import GenesisMismatch
from node.loop import ConsensusLoop
from node.mempool import Mempool, MempoolLimits
from node.metrics import NodeMetrics
from node.options import ServiceOptions, compute_http_url
from node.peer_link import PeerAddress, parse_peer_address
from node.peers import DEFAULT_CHANNELS, PeerNetwork
from node.pipeline import BlockPipeline
from node.reads import NodeReads
from node.sync import Syncer
from node.tls import PeerTls
from node.vault_sync import CHANNEL_VAULT
from node.verify_pool import VerifyPool

log = logging.getLogger("carecoin.node")

CHANNEL_CONSENSUS = "consensus"


class NodeService:
    """One validator node's parts (see the module docstring)."""

    def __init__(self, *, key: KeyPair, genesis: Genesis, store, options: ServiceOptions | None = None,
                 peers: Sequence[PeerEntry] = (), tls: PeerTls | None = None) -> None:
        self.key, self.genesis, self.store = key, genesis, store
        self.options = opts = options or ServiceOptions()
        self.chain_id = genesis.chain_id
        self.metrics = NodeMetrics()
        ensure_genesis(store, genesis)
        if all(v.node_public_key != key.public_key for v in get_linked_validators(store)):
            log.warning("node key %s is not in the validator set: this node follows (catches up and validates) "
                        "and votes once governance adds it", key.public_key.hex()[:16])
        # Given the committed nonces the pool tells runnable txs from gapped ones (bounded, expiring); given
        # who holds a role or a registration it keeps its reserve for them, so fresh keys cannot fill it.
        self.mempool = Mempool(MempoolLimits(max_count=opts.mempool_max_count, max_bytes=opts.mempool_max_bytes,
                                             max_per_sender=opts.mempool_max_per_sender),
                               get_nonce=lambda sender: state.get_nonce(store, sender),
                               is_privileged=lambda sender: is_privileged(store, sender), now=time.monotonic)
        self.configured_peers = tuple(peers)
        self._validator_peers = names, dial = compute_validator_peers(store, key.public_key, peers)
        # Always built (a one-validator network may add a branch later); with nobody to dial it only listens.
        self.peers = PeerNetwork(self.chain_id, key, names, dial, self._on_peer_frame,
                                 max_frame_bytes=opts.max_frame_bytes, on_link=self._on_link,
                                 channels=tuple(DEFAULT_CHANNELS) + (CHANNEL_TXS,), tls=tls)
        self.vault_sync = None  # node.vault_sync.VaultSync, set by node.app once the vault is open
        self.committer = Committer(store, self.mempool, self.metrics)
        self.pipeline = BlockPipeline(
            store=store, mempool=self.mempool, genesis=genesis, key=key, options=opts, metrics=self.metrics,
            committer=self.committer,
            is_next_proposer=lambda height: self.consensus.replica.proposer(height, 0) == key.public_key,
            consensus_height=lambda: self.consensus.replica.height)
        self.consensus = ConsensusLoop(store=store, genesis=genesis, key=key, options=opts, metrics=self.metrics,
                                       pipeline=self.pipeline, net=self, request_sync=self._request_sync)
        self.syncer = Syncer(self._get_sync_sources(), store=store, chain_id=self.chain_id,
                             validators_at=self.pipeline.get_validators_at, post=self.consensus.post,
                             apply_synced=self.consensus.apply_synced,
                             on_fault=lambda: self.metrics.remote_faults.labels("sync").inc(),
                             ssl=tls.client if tls is not None else None)
        self.committer.subscribe(lambda height, results: self.follow_validator_set())
        self.admission = Admission(
            store=store, chain_id=self.chain_id, mempool=self.mempool, committer=self.committer,
            metrics=self.metrics, mempool_max_count=opts.mempool_max_count,
            on_admitted=self.consensus.driver.on_txs_admitted, stopped=lambda: self.consensus.fatal,
            yield_to_consensus=self.consensus.yield_to_consensus,
            broadcast=self.peers.broadcast if dial else None,  # gossip only where links may exist
            verify_pool=VerifyPool(opts.verify_workers) if opts.verify_workers > 0 else None)
        self.reads = NodeReads(
            store, genesis, self.mempool, name=opts.name, validator=key.public_key,
            consensus=lambda: (self.consensus.replica.height, self.consensus.replica.round, self.consensus.fatal),
            peers=self.get_connected_peers, recent_block_hashes=self.committer.get_recent_block_hashes)
        self.metrics.bind(lambda: len(self.mempool), lambda: len(self.get_connected_peers()),
                          verify_pool=self.admission.verify_pool)
        self.metrics.height.set(store.head().height)

    @property
    def fatal(self) -> BaseException | None:
        """The local fault that stopped consensus, or None while the node is healthy."""
        return self.consensus.fatal

    # ---- lifecycle (tests; the app runs the same functions from its cleanup contexts) ----------------

    async def start(self) -> None:
        """Start consensus (with admission), then the peer links and catch-up."""
        await start_consensus(self)
        await start_peers(self)

    async def stop(self) -> None:
        """Stop peer links and catch-up, then consensus (the store stays open: ``close`` closes it)."""
        await stop_peers(self)
        await stop_consensus(self)

    def close(self) -> None:
        """Close the store (releases the LevelDB lock); for callers that opened the store themselves."""
        self.store.close()

    # ---- peers ---------------------------------------------------------------------------------------

    def follow_validator_set(self) -> bool:
        """Re-read the validator set from the head state; when it changed, update the peer links and the
        catch-up sources. Runs after every commit (on the consensus task: it only schedules link work)."""
        table = compute_validator_peers(self.store, self.key.public_key, self.configured_peers)
        if table == self._validator_peers:
            return False
        self._validator_peers = names, dial = table
        log.info("validator set changed: linking with %s", ", ".join(sorted(names.values())) or "nobody")
        self.peers.set_validators(names, dial)
        self.admission.broadcast = self.peers.broadcast if dial else None
        self.syncer.sources = self._get_sync_sources()
        return True

    def _get_sync_sources(self) -> list[tuple[bytes, str]]:
        """Configured peers, then every other validator address known on chain: where catch-up reads blocks."""
        urls = {p.public_key: p.url for p in self.configured_peers}
        for key, url in compute_validator_urls(self.store, self.configured_peers).items():
            urls.setdefault(key, url)
        urls.pop(self.key.public_key, None)
        return [(k, compute_http_url(u)) for k, u in urls.items()]

    async def _on_peer_frame(self, peer: bytes, channel: str, payload: bytes) -> None:
        """Route a peer frame: consensus messages to the consensus queue, txs to admission, vault records to
        vault replication (``node.vault_sync``, once the app opened the vault)."""
        if channel == CHANNEL_CONSENSUS:
            try:
                msg = decode_message(payload, max_bytes=self.options.max_frame_bytes)
            except ConsensusError as exc:
                self.metrics.remote_faults.labels("bad_message").inc()
                log.debug("dropped a bad consensus message from %s: %s", peer.hex()[:16], exc)
                return
            self.consensus.post(MessageReceived(msg))
        elif channel == CHANNEL_TXS:
            self.admission.on_gossip_batch(payload)
        elif channel == CHANNEL_TX:
            self.admission.on_gossip_tx(payload)
        elif channel == CHANNEL_VAULT and self.vault_sync is not None:
            await self.vault_sync.on_frame(peer, payload)

    async def _on_link(self, peer: bytes, up: bool) -> None:
        if up:
            self.consensus.on_link_up()
        if self.vault_sync is not None:
            await self.vault_sync.on_link(peer, up)

    def _request_sync(self, height: int) -> None:
        self.syncer.request(height)

    async def broadcast(self, channel: str, payload: bytes) -> None:
        """Send to every connected peer (no-op without links)."""
        await self.peers.broadcast(channel, payload)

    async def send(self, peer: bytes, channel: str, payload: bytes) -> None:
        """Send to one peer (no-op when it is not connected)."""
        await self.peers.send(peer, channel, payload)

    def get_connected_peers(self) -> list[bytes]:
        """Public keys of the authenticated peer links."""
        return list(self.peers.connected())


def get_linked_validators(store) -> tuple[validator_sets.ValidatorInfo, ...]:
    """The validators a node links with, from the head state: the set in force there, then those of the
    decided next set (a change decided at head H is in force from H + 2: the joiner is linked from the
    decision on, a removed one until the head reaches H + 2, i.e. after it sealed its last block)."""
    infos = {i.node_public_key: i for i in validator_sets.get_current_validators(store)}
    pending = validator_sets.get_pending_change(store)
    for info in pending.validators if pending is not None else ():
        infos.setdefault(info.node_public_key, info)
    return tuple(infos.values())


def compute_validator_urls(store, configured: Sequence[PeerEntry]) -> dict[bytes, str]:
    """key -> the URL to dial, for every linked validator with one: configured first, else its on-chain address."""
    urls = {p.public_key: p.url for p in configured}
    out = {}
    for info in get_linked_validators(store):
        url = urls.get(info.node_public_key) or parse_peer_address(info.peer_address)
        if url is not None:
            out[info.node_public_key] = url
    return out


def compute_validator_peers(store, me: bytes,
                            configured: Sequence[PeerEntry]) -> tuple[dict[bytes, str], tuple[PeerAddress, ...]]:
    """(keys the handshake accepts -> branch names, addresses to dial). Only a member of the linked set dials:
    a follower (not added yet, or removed) has no link to ask for and catches up over the block route."""
    infos = get_linked_validators(store)
    names = {i.node_public_key: i.branch_name for i in infos}
    if me not in names:
        return names, ()
    urls = compute_validator_urls(store, configured)
    return names, tuple(PeerAddress(names[k], k, u) for k, u in urls.items() if k != me)


def ensure_genesis(store, genesis: Genesis) -> None:
    """Commit the genesis block to an empty store; refuse a store whose genesis block differs."""
    block, execution = chain.genesis_block(genesis)
    if store.head() is None:
        store.commit_block(block, (), execution.results, execution.state_writes, execution.smt_nodes,
                           execution.smt_replaced, execution.smt_reused)
        log.info("committed the genesis block %s", block.hash.hex()[:16])
        return
    stored = store.get_block(0).hash
    if stored != block.hash:
        raise GenesisMismatch(f"the data dir's genesis block is {stored.hex()[:16]}…; the genesis file gives "
                              f"{block.hash.hex()[:16]}… (wrong data dir or genesis file?)")


async def start_consensus(node: NodeService) -> None:
    """Replay the WAL and start the consensus task, then the gossip admission task."""
    await node.consensus.start()
    await node.admission.start()


async def stop_consensus(node: NodeService) -> None:
    """Stop admission and the consensus loop; cancel anyone waiting for a commit."""
    await node.admission.stop()
    await node.consensus.stop()
    node.committer.cancel_waiters()


async def start_peers(node: NodeService) -> None:
    """Dial and accept peer links, and catch up from peers that are ahead."""
    await node.peers.start()
    node.syncer.start()


async def stop_peers(node: NodeService) -> None:
    """Stop catch-up and close every peer link."""
    await node.syncer.stop()
    await node.peers.stop()
