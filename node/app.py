"""The node as one aiohttp application: ``create_app(config)`` is everything ``carecoin node start`` runs.

Each resource is one ``cleanup_ctx`` entry that puts it on the app under a typed ``web.AppKey``
(``node.app_keys``); they start in this order and stop in the reverse order:

1. store      — open (and lock) the data dir's LevelDB; closed last (``STORE_KEY``)
2. node       — build the node's parts on that store (``NODE_KEY``; ``node.service``)
3. consensus  — replay the WAL, start the consensus loop and gossip admission
4. peers      — the peer listener (websocket links and ``/v1/blocks/{height}`` for catch-up; mutual TLS when
                genesis pins a CA, ``node.tls``), the peer links, catch-up
5. vault      — ``<data_dir>/vault`` (master key: ``node.vault_master``), the staff-signed guard, the audit
                trail and vault replication (``VAULT_KEY``, ``STAFF_GUARD_KEY``, ``AUDIT_KEY``, ``VAULT_SYNC_KEY``)
6. erasure    — the erasure follower, subscribed to commits (``ERASURE_KEY``; ``node.erasure``)
7. analytics  — the report index and its follower (``REPORT_KEY``; ``node.analytics``)
8. lists      — the ticket and order lists and their follower (``LISTS_KEY``; ``node.list_index``)
9. events     — the live event streams (``EVENT_HUB_KEY``; ``node.event_stream``), subscribed to commits
10. webhooks  — ``<data_dir>/webhooks`` and one delivery task per hook (``WEBHOOKS_KEY``; ``node.webhooks``)
11. sink      — with ``[sink]`` in node.toml: committed events written to SQL (``node.sink``)

``create_node_app(node)`` mounts the same routes and runs entries 3, 5-10 for a node whose store the caller
opened (tests); ``analytics=False`` leaves the analytics follower out. Routes come from ``node.routes.ROUTES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import AsyncIterator

from aiohttp import web

from ledger.customers import get_customer
from ledger.genesis import load_genesis
from ledger.keys import load_key
from ledger.storage import Store
from node import analytics, byzantine, clock, list_index
from node.analytics import ReportIndex
from node.audit import AUDIT_DIR, AUDIT_KEY, AuditLog
from node.app_keys import (
    CONFIG_KEY, CONN_BUDGET_KEY, ERASURE_KEY, LISTS_KEY, NODE_KEY, PERSONAL_DATA_GATE_KEY, REPORT_KEY,
    STAFF_GUARD_KEY, STORE_KEY, VAULT_KEY, WEBHOOK_ALLOW_KEY,
)
from node.config import NodeConfig
from node.conn_budget import ACCEPT_BACKLOG, ConnectionBudget
from node.erasure import ErasureFollower
from node.event_stream import EVENT_HUB_KEY, EventHub
from node.sink import SinkFollower, open_sink
from node.webhook_delivery import WebhookDelivery
from node.webhook_routes import WEBHOOKS_KEY
from node.webhook_targets import TargetPolicy
from node.webhooks import WebhookRegistry
from node.errors import NodeError
from node.http import AUTH_SIGNED, AUTH_STAFF_SIGNED, error_middleware, mount
from node.options import ServiceOptions
from node.routes import MAX_BATCH_BODY_BYTES, ROUTES
from node.service import NodeService, start_consensus, start_peers, stop_consensus, stop_peers
from node.staff_auth import StaffGuard, is_known_account
from node.tls import RefusalLog, load_peer_tls, read_pinned_ca
from node.vault import Vault
from node.vault_master import load_master_key
from node.vault_sync import VAULT_SYNC_KEY, VaultSync

log = logging.getLogger("carecoin.node")

SHUTDOWN_TIMEOUT_S = 1.0


class ListenFailed(NodeError):
    """A listener could not bind its address (port in use, no such address)."""

    code = "listen_failed"
    http_status = 500


def create_app(config: NodeConfig) -> web.Application:
    """The whole node of ``config`` as one application (serve it on ``config.api``)."""
    app = _api_app()
    app[CONFIG_KEY] = config
    app[PERSONAL_DATA_GATE_KEY] = True
    app[CONN_BUDGET_KEY] = ConnectionBudget()  # from RLIMIT_NOFILE: clients cannot take the WAL's descriptors
    app.cleanup_ctx.extend([_store_ctx, _node_ctx, _consensus_ctx, _peers_ctx, _vault_ctx, _erasure_ctx,
                            _analytics_ctx, _lists_ctx, _events_ctx, _webhooks_ctx, _sink_ctx])
    return app


def create_node_app(node: NodeService, *, analytics: bool = True, personal_data_gate: bool = False,
                    webhook_allow: tuple[str, ...] = ()) -> web.Application:
    """The client API of an already built ``node`` (its store stays the caller's); no peer listener.
    ``personal_data_gate``: the vault's reads wait until the node is in sync, as on a real node (``create_app``)."""
    app = _api_app()
    app[NODE_KEY] = node
    app[PERSONAL_DATA_GATE_KEY] = personal_data_gate
    app[WEBHOOK_ALLOW_KEY] = webhook_allow  # as node.toml's [webhooks] allow
    app.cleanup_ctx.extend([_consensus_ctx, _vault_ctx, _erasure_ctx] + ([_analytics_ctx] if analytics else [])
                           + [_lists_ctx, _events_ctx, _webhooks_ctx])
    return app


def add_sync_routes(app: web.Application, node: NodeService) -> None:
    """Mount the routes peers' catch-up reads (``/v1/blocks/{height}``) on ``app`` for ``node``."""
    app[NODE_KEY] = node
    mount(app, [r for r in ROUTES if r.peer], peer_listener=True)


def _api_app() -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BATCH_BODY_BYTES)
    mount(app, ROUTES, {AUTH_STAFF_SIGNED: _staff_signed, AUTH_SIGNED: _signed})
    return app


async def _staff_signed(request: web.Request) -> None:
    await request.app[STAFF_GUARD_KEY](request)


async def _signed(request: web.Request) -> None:
    await request.app[STAFF_GUARD_KEY].signed(request)


class HandshakeBoundSite(web.TCPSite):
    """A ``TCPSite`` whose TLS handshakes must finish within ``handshake_timeout_s`` (asyncio's default is
    60 s): a socket that never sends a ClientHello is closed as soon as a silent plain one would be."""

    __slots__ = ("_handshake_timeout_s", "_budget")

    def __init__(self, *args, handshake_timeout_s: float, budget: ConnectionBudget | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._handshake_timeout_s = handshake_timeout_s
        self._budget = budget  # the open sockets it may hold (shared by the node's listeners)

    async def start(self) -> None:
        await web.BaseSite.start(self)
        tls = {"ssl": self._ssl_context, "ssl_handshake_timeout": self._handshake_timeout_s} \
            if self._ssl_context is not None else {}
        factory, backlog = self._runner.server, self._backlog
        if self._budget is not None:  # asyncio accepts up to ``backlog`` sockets a wakeup before refusing any
            factory, backlog = self._budget.wrap(factory), min(backlog, ACCEPT_BACKLOG)
        self._server = await asyncio.get_running_loop().create_server(
            factory, self._host, self._port, backlog=backlog, **tls)
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port


# ---- one context per resource ---------------------------------------------------------------------------

async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG_KEY]
    config.data_dir.mkdir(parents=True, exist_ok=True)
    # a second node on this data dir is refused here; [storage] sets how many heights' state trees are kept
    store = Store.open(str(config.data_dir), state_history_blocks=config.state_history_blocks)
    app[STORE_KEY] = store
    try:
        yield
    finally:
        store.close()


async def _node_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG_KEY]
    clock.configure_from_env()  # CARECOIN_CLOCK_OFFSET_MS, read once: a bad value refuses the start
    behaviours = byzantine.read_mode()  # refuses CARECOIN_TEST_BYZANTINE without CARECOIN_TEST_MODE=1
    genesis = load_genesis(config.genesis_file)
    refusals = RefusalLog()

    def on_tls_refused(direction: str, reason: str) -> None:
        node.metrics.peer_tls_refused.labels(direction).inc()
        refusals.note(direction, reason)

    tls = load_peer_tls(read_pinned_ca(genesis.extra), config.peer_tls, config.path.name, on_tls_refused)
    node = NodeService(key=load_key(config.key_file), genesis=genesis, store=app[STORE_KEY],
                       options=ServiceOptions.from_config(config), peers=config.peers, tls=tls)
    if behaviours:  # test mode only: the honest send path is not wrapped otherwise
        byzantine.install(node, behaviours)
    app[NODE_KEY] = node
    yield


async def _consensus_ctx(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE_KEY]
    await start_consensus(node)
    try:
        yield
    finally:
        await stop_consensus(node)


async def _peers_ctx(app: web.Application) -> AsyncIterator[None]:
    node, config = app[NODE_KEY], app[CONFIG_KEY]
    listener = web.Application()
    if node.peers is not None:
        node.peers.add_routes(listener)
    add_sync_routes(listener, node)
    # Sockets that never send a request are closed after the handshake deadline (not aiohttp's hour).
    options = node.peers.server_options() if node.peers is not None else {}
    runner = web.AppRunner(listener, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S, **options)
    await runner.setup()
    try:
        try:
            tls = node.peers.tls if node.peers is not None else None
            await HandshakeBoundSite(runner, config.peer.host, config.peer.port,
                                     ssl_context=tls.server if tls is not None else None,
                                     handshake_timeout_s=options.get("keepalive_timeout", 5.0),
                                     budget=app.get(CONN_BUDGET_KEY)).start()
        except OSError as exc:
            raise ListenFailed(f"cannot listen on {config.peer.host}:{config.peer.port}: "
                               f"{exc.strerror or exc}") from None
        await start_peers(node)
        try:
            yield
        finally:
            await stop_peers(node)
    finally:
        await runner.cleanup()


async def _vault_ctx(app: web.Application) -> AsyncIterator[None]:
    node, config = app[NODE_KEY], app.get(CONFIG_KEY)
    master = load_master_key(config.vault_master_key_file if config is not None else None)
    vault = Vault(Path(node.store.path) / "vault", on_chain=lambda customer: get_customer(node.store, customer),
                  master_key=master)
    app[VAULT_KEY] = vault
    app[STAFF_GUARD_KEY] = StaffGuard(node.store, node.chain_id, replay_file=vault.root / "seen-requests")
    app[AUDIT_KEY] = audit = AuditLog(Path(node.store.path) / AUDIT_DIR)
    app[VAULT_SYNC_KEY] = sync = VaultSync(
        vault, node.key, node.peers.send, node.peers.connected,
        is_known=lambda account: is_known_account(node.store, account),
        on_fault=lambda kind: node.metrics.remote_faults.labels(kind).inc())
    node.vault_sync = sync
    unsubscribe = node.committer.subscribe(sync.on_commit)
    try:
        async with _task(sync.run(), "vault-sync"):
            yield
    finally:
        node.vault_sync = None
        unsubscribe()
        audit.close()
        app[STAFF_GUARD_KEY].replay.close()


async def _erasure_ctx(app: web.Application) -> AsyncIterator[None]:
    node, vault = app[NODE_KEY], app[VAULT_KEY]

    def on_erased(customer: bytes) -> None:
        app[VAULT_SYNC_KEY].forget(customer)
        if vault.erase(customer):
            log.info("customer %s erased on chain: vault key deleted", customer.hex()[:16])

    follower = ErasureFollower(node.store, on_erased, results_of=node.committer.get_recent_results)
    app[ERASURE_KEY] = follower
    unsubscribe = node.committer.subscribe(follower.on_commit)
    async with _task(follower.run(lambda: node.store.closed), "erasure-follower"):
        yield
    unsubscribe()


async def _analytics_ctx(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE_KEY]
    index = ReportIndex(node.store, results_of=node.committer.get_recent_results)
    app[REPORT_KEY] = index
    async with _task(analytics.follow(index, lambda: node.store.closed), "analytics-follower"):
        yield


async def _lists_ctx(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE_KEY]
    index = list_index.ListIndex(node.store, results_of=node.committer.get_recent_results)
    app[LISTS_KEY] = index
    async with _task(list_index.follow(index, lambda: node.store.closed), "list-follower"):
        yield


async def _events_ctx(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE_KEY]
    hub = EventHub(node.store, on_cut=lambda: node.metrics.event_streams_cut.inc())
    app[EVENT_HUB_KEY] = hub
    unsubscribe = node.committer.subscribe(hub.on_commit)
    try:
        yield
    finally:
        unsubscribe()
        hub.close()


async def _webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE_KEY]
    config = app.get(CONFIG_KEY)
    own = [] if config is None else [(config.api.host, config.api.port), (config.peer.host, config.peer.port)]
    allow = config.webhook_allow if config is not None else app.get(WEBHOOK_ALLOW_KEY, ())
    delivery = WebhookDelivery(node.store, WebhookRegistry(Path(node.store.path) / "webhooks"),
                               on_outcome=lambda outcome: node.metrics.webhook_deliveries.labels(outcome).inc(),
                               targets=TargetPolicy.from_allow(allow, own))
    app[WEBHOOKS_KEY] = delivery
    unsubscribe = node.committer.subscribe(delivery.on_commit)
    delivery.start()
    try:
        yield
    finally:
        unsubscribe()
        await delivery.close()


async def _sink_ctx(app: web.Application) -> AsyncIterator[None]:
    node, config = app[NODE_KEY], app[CONFIG_KEY]
    if config.sink_url is None:
        yield
        return
    sink = open_sink(config.sink_url)
    follower = SinkFollower(node.store, sink, on_written=node.metrics.sink_events.inc)
    unsubscribe = node.committer.subscribe(follower.on_commit)
    try:
        async with _task(follower.run(lambda: node.store.closed), "events-sink"):
            yield
    finally:
        unsubscribe()
        await asyncio.to_thread(sink.close)


@contextlib.asynccontextmanager
async def _task(coro, name: str) -> AsyncIterator[asyncio.Task]:
    task = asyncio.create_task(coro, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
