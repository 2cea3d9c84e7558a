"""State pruning on a node: node.toml ``[storage]``, a running node with a small K (its sparse-Merkle rows stay
bounded while an archive node's grow; proofs at the head verify), and catch-up into a pruned store."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest
import tomli_w
from aiohttp import web

from cli.network import init_network
from cli.ports import free_port_base
from ledger.keys import KeyPair
from ledger.state_proof import verify_state_proof
from ledger.storage import P_NODE, Store
from ledger.tx import make_tx
from node import reads
from node.app import create_app
from node.app_keys import STORE_KEY
from node.config import config_to_dict, load_config
from node.errors import ConfigError
from node.service import NodeService
from tests.ledger.test_pruning import reachable
from tests.node.test_service import CHAIN, FAST, make_genesis, serve_blocks, wait_committed, wait_height


@pytest.fixture()
def net(tmp_path: Path):
    return init_network(tmp_path / "net", 1, base_port=free_port_base(2), now_ms=1_700_000_000_000)


def _set_storage(path: Path, table) -> None:
    doc = tomllib.loads(path.read_text())
    doc["storage"] = table
    path.write_text(tomli_w.dumps(doc))


def test_pruning_is_on_by_default_with_256_heights_and_round_trips(net):
    path = net.branches[0].config_path
    cfg = load_config(path)
    assert cfg.state_history_blocks == 256 and "storage" not in config_to_dict(cfg)
    _set_storage(path, {"state_history_blocks": 16})
    cfg = load_config(path)
    assert cfg.state_history_blocks == 16 and config_to_dict(cfg)["storage"] == {"state_history_blocks": 16}
    _set_storage(path, {"archive": True})
    cfg = load_config(path)
    assert cfg.state_history_blocks is None and config_to_dict(cfg)["storage"] == {"archive": True}
    _set_storage(path, {"archive": False, "state_history_blocks": 2})
    assert load_config(path).state_history_blocks == 2


@pytest.mark.parametrize("table, message", [
    ({"state_history_blocks": 0}, r"storage\.state_history_blocks must be an integer 2\.\.10000000, got 0 \(to keep "
                                  r"every height's state tree, set storage\.archive = true\)"),
    ({"state_history_blocks": 1}, r"storage\.state_history_blocks must be an integer 2\.\.10000000, got 1"),
    ({"state_history_blocks": "256"}, r"storage\.state_history_blocks must be an integer 2\.\.10000000, got '256'"),
    ({"state_history_blocks": True}, r"storage\.state_history_blocks must be an integer 2\.\.10000000, got True"),
    ({"state_history_blocks": 10_000_001}, r"must be an integer 2\.\.10000000, got 10000001"),
    ({"archive": "yes"}, r"storage\.archive must be true or false, got 'yes'"),
    ({"archive": True, "state_history_blocks": 64}, r"storage\.archive = true keeps every height's state tree; "
                                                    r"expected no storage\.state_history_blocks with it, got 64"),
    ({"history": 5}, r"unknown key storage\.history; expected state_history_blocks or archive"),
])
def test_a_bad_storage_table_is_refused_naming_the_field(net, table, message):
    path = net.branches[0].config_path
    _set_storage(path, table)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


@pytest.mark.asyncio
async def test_the_app_opens_its_store_with_the_configured_history(net):
    path = net.branches[0].config_path
    _set_storage(path, {"state_history_blocks": 3})
    runner = web.AppRunner(create_app(load_config(path)))
    await runner.setup()
    try:
        store = runner.app[STORE_KEY]
        assert store.state_history_blocks == 3
        for _ in range(250):
            if store.head().height >= 5:
                break
            await asyncio.sleep(0.02)
        assert store.head().height >= 5
    finally:
        await runner.cleanup()


def node_rows(store: Store) -> set[bytes]:
    return {key[1:] for key in store._db.iterator(prefix=P_NODE, include_value=False)}


def kept_nodes(store: Store, k: int) -> set[bytes]:
    head = store.head().height
    return set().union(*(reachable(store, store.get_header(h).state_root) for h in range(max(0, head - k), head + 1)))


@pytest.mark.asyncio
async def test_a_running_pruned_node_keeps_its_tree_rows_bounded_while_an_archive_node_grows(tmp_path):
    k, holders = 3, [KeyPair.generate() for _ in range(3)]
    services = {}
    for mode, history in (("pruned", k), ("archive", None)):
        node, issuer = KeyPair.generate(), KeyPair.generate()
        svc = NodeService(key=node, genesis=make_genesis(node, issuer),
                          store=Store.open(tmp_path / mode, state_history_blocks=history), options=FAST)
        await svc.start()
        services[mode] = (svc, issuer)
    rows: dict[str, list[int]] = {"pruned": [], "archive": []}  # history rows at heights 10, 20, 30, 40
    try:
        for n in range(1, 41):  # the same few accounts over and over: each block replaces their paths
            for mode, (svc, issuer) in services.items():
                tx = make_tx(CHAIN, "mint", issuer, n, [holders[n % 3].public_key, n])
                svc.admission.submit_tx(tx.raw)
                await wait_committed(svc, tx.tx_hash)
                if n % 10 == 0:  # history: stored nodes outside the head's tree
                    live = reachable(svc.store, svc.store.head().state_root)
                    rows[mode].append(len(node_rows(svc.store) - live))
        pruned = services["pruned"][0]
        assert pruned.store.head().height >= 40
        doc = reads.build_account_proof(pruned.store, CHAIN, holders[1].public_key)
        assert verify_state_proof(doc, pruned.genesis).balance == sum(n for n in range(1, 41) if n % 3 == 1)
    finally:
        for svc, _ in services.values():
            await svc.stop()
    try:
        store = services["pruned"][0].store
        assert node_rows(store) == kept_nodes(store, k), "a node outside the last K heights' trees is stored"
        # the history a pruned node keeps is K blocks' worth, whatever the chain's length; an archive's grows
        assert max(rows["pruned"]) <= min(rows["pruned"]) + 15, rows
        assert rows["archive"][-1] > rows["archive"][0] + 500, rows
        assert rows["archive"][-1] > 10 * rows["pruned"][-1], rows
    finally:
        for svc, _ in services.values():
            svc.close()


@pytest.mark.asyncio
async def test_a_follower_with_a_small_history_catches_up_over_many_blocks(tmp_path, aiohttp_server):
    node, issuer = KeyPair.generate(), KeyPair.generate()
    leader = NodeService(key=node, genesis=make_genesis(node, issuer), store=Store.open(tmp_path / "a"), options=FAST)
    await leader.start()
    follower = NodeService(key=KeyPair.generate(), genesis=leader.genesis,
                           store=Store.open(tmp_path / "b", state_history_blocks=2), options=FAST)
    holder = KeyPair.generate()
    try:
        for n in range(1, 25):
            tx = make_tx(CHAIN, "mint", issuer, n, [holder.public_key, n])
            leader.admission.submit_tx(tx.raw)
            await wait_committed(leader, tx.tx_hash)
        await leader.stop()
        top = leader.store.head()
        follower.syncer.sources = [(node.public_key, await serve_blocks(aiohttp_server, leader))]
        await follower.start()
        await wait_height(follower, top.height)
        assert follower.store.head() == top  # re-executed every block on its pruned head: the same roots
        assert follower.reads.get_account(holder.public_key)["balance"] == sum(range(1, 25))
        await follower.stop()
        assert node_rows(follower.store) == kept_nodes(follower.store, 2)
        assert len(node_rows(follower.store)) < len(node_rows(leader.store))
    finally:
        await follower.stop()
        follower.close()
        leader.close()
