"""A node app served on 127.0.0.1 (an ephemeral port) by an event loop in its own thread, for tests that talk to
it as a client would (CliRunner, schemathesis, plain HTTP) from the test's own thread."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from ledger.keys import KeyPair
from ledger.storage import Store
from node.app import create_node_app
from node.service import NodeService
from tests.node.test_service import FAST


class LiveNode:
    """The node of ``key`` on the store at ``path``; ``url`` is its API base; ``close`` stops it and its store."""

    def __init__(self, key: KeyPair, genesis, path) -> None:
        self.key, self.genesis, self.path = key, genesis, path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-node", daemon=True)
        self.thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)

    async def _start(self) -> str:
        self.svc = NodeService(key=self.key, genesis=self.genesis, store=Store.open(self.path), options=FAST)
        self.runner = web.AppRunner(create_node_app(self.svc), access_log=None, shutdown_timeout=2)  # open streams
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    async def _stop(self) -> None:
        await self.runner.cleanup()
        self.svc.close()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
