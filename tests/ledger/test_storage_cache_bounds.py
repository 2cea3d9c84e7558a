"""The store's in-memory caches (SMT nodes by hash, current-state values) never hold more than their caps, and a
miss reads the same value from LevelDB."""

from __future__ import annotations

import pytest

from ledger import storage
from ledger.block import Block, Header
from ledger.results import TxResult
from ledger.storage import Store

CHAIN = "test-chain"


def _commit(store: Store, height: int, prev: bytes, writes: dict, nodes: dict) -> bytes:
    header = Header(CHAIN, height, prev, 1_000 + height, b"\x01" * 32, 0, b"\x02" * 32, b"\x04" * 32, b"\x03" * 32)
    block = Block(header, ())
    store.commit_block(block, (), [], writes, nodes)
    return block.hash


def _node(i: int) -> tuple[bytes, bytes]:
    return i.to_bytes(32, "big"), b"\x93\x00\xc4\x20" + i.to_bytes(32, "big") + b"\xc4\x20" + b"\x05" * 32


@pytest.fixture
def small_caps(monkeypatch):
    monkeypatch.setattr(storage, "NODE_CACHE_MAX", 50)
    monkeypatch.setattr(storage, "STATE_CACHE_MAX", 40)


def test_the_node_cache_never_holds_more_than_its_cap_and_a_miss_reads_leveldb(tmp_path, small_caps):
    with Store.open(tmp_path / "db") as store:
        prev = b"\x00" * 32
        for height in range(10):  # 10 blocks of 30 new nodes: 300 nodes, 6x the cap
            nodes = dict(_node(height * 30 + i) for i in range(30))
            prev = _commit(store, height, prev, {}, nodes)
            assert len(store._node_cache) <= storage.NODE_CACHE_MAX
        for i in range(300):  # every node read back (most are misses now), each read fills the cache
            key, raw = _node(i)
            assert store.get_node(key) == raw
            assert len(store._node_cache) <= storage.NODE_CACHE_MAX
        assert store.get_node(b"\xff" * 32) is None


def test_the_state_cache_never_holds_more_than_its_cap_and_a_miss_reads_leveldb(tmp_path, small_caps):
    with Store.open(tmp_path / "db") as store:
        prev = b"\x00" * 32
        for height in range(10):  # 10 blocks writing 25 keys each (and deleting one of the block before)
            writes: dict[bytes, bytes | None] = {b"a" + bytes([height, i]): bytes([i, height]) for i in range(25)}
            if height:
                writes[b"a" + bytes([height - 1, 0])] = None
            prev = _commit(store, height, prev, writes, {})
            assert len(store._state_cache) <= storage.STATE_CACHE_MAX
        for height in range(10):
            for i in range(25):
                expected = None if (i == 0 and height < 9) else bytes([i, height])
                assert store.get_state(b"a" + bytes([height, i])) == expected
                assert len(store._state_cache) <= storage.STATE_CACHE_MAX
        assert store.get_state(b"a\xff\xff") is None
