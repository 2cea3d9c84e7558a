"""The LevelDB store: round trips, chain rules on commit, locking, reopen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ledger.block import Block, CommitSeal, Header
from ledger.errors import NotFound, StorageError
from ledger.results import TxResult
from ledger.smt import EMPTY_ROOT, SparseMerkleTree, compute_root, value_hash, verify_proof
from ledger.storage import ChainHead, Store

ROOT = Path(__file__).resolve().parents[2]
CHAIN = "test-chain"


def make_block(height: int, prev: bytes, state_root: bytes, txs: tuple[bytes, ...] = ()) -> Block:
    header = Header(CHAIN, height, prev, 1_000 + height, b"\x01" * 32, len(txs), b"\x02" * 32, state_root,
                    b"\x03" * 32)
    return Block(header, txs)


def results_for(txs: tuple[bytes, ...]) -> list[TxResult]:
    return [TxResult(bytes([i]) * 32 if i else b"\xee" * 32, i % 2, "" if i % 2 == 0 else "nonce",
                     (["earned", b"\x05" * 32, 10 + i],)) for i in range(len(txs))]


SEALS = (CommitSeal(b"\x07" * 32, b"\x08" * 64), CommitSeal(b"\x09" * 32, b"\x0a" * 64))


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "db") as s:
        yield s


def commit(store: Store, height: int, prev: bytes, writes: dict, txs: tuple[bytes, ...] = ()) -> Block:
    tree = SparseMerkleTree(store)
    root = store.head().state_root if store.head() else EMPTY_ROOT
    new_root, nodes = tree.update(root, writes)
    block = make_block(height, prev, new_root, txs)
    store.commit_block(block, SEALS, results_for(txs), writes, nodes)
    return block


def test_new_store_is_empty(store):
    assert store.head() is None
    assert store.get_state(b"k") is None
    assert store.get_wal() is None
    with pytest.raises(NotFound, match="height 0"):
        store.get_block(0)


def test_committed_block_round_trips_everything(store):
    genesis = commit(store, 0, b"\x00" * 32, {b"acct/a": b"100", b"acct/b": b"5"})
    txs = (b"tx-one", b"tx-two", b"tx-three")
    block = commit(store, 1, genesis.hash, {b"acct/a": b"90", b"acct/b": None, b"acct/c": b"10"}, txs)
    results = results_for(txs)

    assert store.head() == ChainHead(1, block.hash, block.header.state_root)
    assert store.get_block(1) == block and store.get_block(1).hash == block.hash
    assert store.get_block_by_hash(genesis.hash) == genesis
    assert store.get_height(block.hash) == 1
    assert store.get_header(1) == block.header
    assert store.get_certificate(1) == SEALS
    assert store.get_results(1) == results
    assert store.get_results(0) == []
    assert store.get_result(1, 2) == results[2]
    for i, r in enumerate(results):
        assert store.get_tx_location(r.tx_hash) == (1, i)
    assert store.get_tx_location(b"\x99" * 32) is None
    assert store.get_state(b"acct/a") == b"90"
    assert store.get_state(b"acct/b") is None
    assert list(store.iter_state(b"acct/")) == [(b"acct/a", b"90"), (b"acct/c", b"10")]
    assert store.head().state_root == compute_root(dict(store.iter_state()))
    tree = SparseMerkleTree(store)
    verify_proof(store.head().state_root, b"acct/a", b"90", tree.prove(store.head().state_root, b"acct/a"))
    # the genesis state root is still provable after the next block
    assert tree.get(genesis.header.state_root, b"acct/b") == value_hash(b"5")


def test_missing_things_raise_not_found_naming_them(store):
    genesis = commit(store, 0, b"\x00" * 32, {})
    with pytest.raises(NotFound, match="height 5"):
        store.get_header(5)
    with pytest.raises(NotFound, match="height 5"):
        store.get_results(5)
    with pytest.raises(NotFound, match="result 3 at height 0"):
        store.get_result(0, 3)
    with pytest.raises(NotFound, match=(b"\x42" * 32).hex()):
        store.get_block_by_hash(b"\x42" * 32)
    with pytest.raises(NotFound):
        store.get_certificate(1)
    assert store.get_block(0) == genesis


def test_refuses_a_block_at_the_wrong_height(store):
    with pytest.raises(StorageError, match="height 1 on an empty store; expected 0"):
        store.commit_block(make_block(1, b"\x00" * 32, EMPTY_ROOT), SEALS, [], {}, {})
    genesis = commit(store, 0, b"\x00" * 32, {b"k": b"v"})
    with pytest.raises(StorageError, match="height 2; expected 1"):
        store.commit_block(make_block(2, genesis.hash, EMPTY_ROOT), SEALS, [], {}, {})
    with pytest.raises(StorageError, match="height 0; expected 1"):
        store.commit_block(make_block(0, genesis.hash, EMPTY_ROOT), SEALS, [], {}, {})
    assert store.head().height == 0


def test_refuses_a_block_on_the_wrong_parent_and_writes_nothing(store):
    commit(store, 0, b"\x00" * 32, {b"k": b"v"})
    before = store.head()
    bad = make_block(1, b"\x55" * 32, EMPTY_ROOT)
    with pytest.raises(StorageError, match="prev_hash 5555"):
        store.commit_block(bad, SEALS, [], {b"k": b"changed"}, {})
    assert store.head() == before
    assert store.get_state(b"k") == b"v"
    with pytest.raises(NotFound):
        store.get_block(1)


def test_refuses_results_that_do_not_match_the_txs(store):
    block = make_block(0, b"\x00" * 32, EMPTY_ROOT, (b"a", b"b"))
    with pytest.raises(StorageError, match="2 txs.*1 results"):
        store.commit_block(block, SEALS, results_for((b"a",)), {}, {})
    assert store.head() is None


def test_reopen_after_close_keeps_head_state_and_wal(tmp_path):
    path = tmp_path / "db"
    with Store.open(path) as s:
        g = commit(s, 0, b"\x00" * 32, {b"x": b"1"})
        b1 = commit(s, 1, g.hash, {b"y": b"2"}, (b"t",))
        s.put_wal(b"wal-record")
        s.put_meta("peer-id", b"abc")
    assert s.closed
    with pytest.raises(StorageError, match="closed"):
        s.get_state(b"x")
    with Store.open(path, create=False) as s:
        assert s.head() == ChainHead(1, b1.hash, b1.header.state_root)
        assert dict(s.iter_state()) == {b"x": b"1", b"y": b"2"}
        assert s.get_wal() == b"wal-record"
        assert s.get_meta("peer-id") == b"abc"
        assert s.get_meta("other") is None
        s.put_wal(b"second")
        assert s.get_wal() == b"second"
        commit(s, 2, b1.hash, {b"x": None})
        assert s.head().height == 2


def test_open_without_create_on_a_missing_dir_is_a_clear_error(tmp_path):
    with pytest.raises(StorageError, match="holds no store"):
        Store.open(tmp_path / "nothing", create=False)


def test_corrupt_store_is_a_clear_error(tmp_path):
    path = tmp_path / "db"
    Store.open(path).close()
    (path / "CURRENT").write_text("MANIFEST-999999\n")
    with pytest.raises(StorageError, match="corrupt"):
        Store.open(path)


def test_second_open_from_another_process_names_the_data_dir_in_use(tmp_path):
    path = tmp_path / "db"
    with Store.open(path):
        code = (
            "import sys\n"
            "from ledger.storage import Store\n"
            "from ledger.errors import StorageError\n"
            "try:\n"
            f"    Store.open({str(path)!r})\n"
            "except StorageError as e:\n"
            "    print(e.code, e.message); sys.exit(3)\n"
            "sys.exit(0)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.startswith("storage ")
    assert f"data dir {path} is in use by another node" in proc.stdout
    # the lock is released on close: another open now succeeds
    with Store.open(path) as again:
        assert again.head() is None


def test_state_reads_follow_every_commit_including_deletions(store):
    b0 = commit(store, 0, b"\x00" * 32, {b"k": b"v1", b"gone": b"x"})
    assert store.get_state(b"k") == b"v1" and store.get_state(b"gone") == b"x"  # now cached
    assert store.get_state(b"later") is None  # a cached miss
    b1 = commit(store, 1, b0.hash, {b"k": b"v2", b"gone": None, b"later": b"now"})
    assert store.get_state(b"k") == b"v2"
    assert store.get_state(b"gone") is None
    assert store.get_state(b"later") == b"now"


def test_a_read_racing_a_commit_never_caches_the_old_value(store, monkeypatch):
    b0 = commit(store, 0, b"\x00" * 32, {b"k": b"old"})
    store._state_cache.clear()  # force the next read to miss and go to disk
    real_get = store._get

    def racing_get(key):
        value = real_get(key)  # the disk read sees the old value ...
        monkeypatch.setattr(store, "_get", real_get)
        commit(store, 1, b0.hash, {b"k": b"new"})  # ... while a commit lands before it is cached
        return value

    monkeypatch.setattr(store, "_get", racing_get)
    assert store.get_state(b"k") == b"old"  # the racing read answers what it saw
    assert store.get_state(b"k") == b"new"  # and never cached the stale value
