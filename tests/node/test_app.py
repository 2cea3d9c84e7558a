"""``create_app(config)``: the whole node as one aiohttp app, as ``carecoin node start`` runs it."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from cli.ports import free_port_base
from cli.network import init_network
from ledger.errors import StorageError
from node.app import create_app
from node.app_keys import NODE_KEY, STORE_KEY
from node.config import load_config


@pytest.fixture
def config(tmp_path):
    summary = init_network(tmp_path / "net", 1, base_port=free_port_base(2))
    return load_config(summary.branches[0].config_path)


@pytest.mark.asyncio
async def test_the_app_opens_the_store_commits_blocks_and_closes_the_store_on_cleanup(config):
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        node, store = app[NODE_KEY], app[STORE_KEY]
        for _ in range(250):
            if store.head().height >= 2:
                break
            await asyncio.sleep(0.02)
        assert store.head().height >= 2 and node.fatal is None
    finally:
        await runner.cleanup()
    assert store.closed


@pytest.mark.asyncio
async def test_a_second_app_on_the_same_data_dir_is_refused_and_the_first_keeps_running(config):
    first = web.AppRunner(create_app(config))
    await first.setup()
    try:
        second = web.AppRunner(create_app(config))
        with pytest.raises(StorageError, match="in use by another node"):
            await second.setup()
        await second.cleanup()
        assert not first.app[STORE_KEY].closed
    finally:
        await first.cleanup()


@pytest.mark.asyncio
async def test_run_node_exits_2_after_a_local_safety_fault(config, monkeypatch):
    from cli.node import run_node
    from ledger.storage import Store

    def broken(self, raw: bytes, **_options) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(Store, "put_wal", broken)
    assert await asyncio.wait_for(run_node(config), timeout=30) == 2
