"""A failed tx's rule message: kept by the node beside its result, never in what is hashed or replicated,
and only for the last ``DETAIL_BLOCKS`` blocks."""

from __future__ import annotations

import pytest

from ledger import storage
from ledger.results import TxResult
from ledger.smt import EMPTY_ROOT
from ledger.storage import Store
from tests.ledger.test_storage import SEALS, make_block

FAILED = TxResult(b"\x01" * 32, 7, "insufficient_balance", (), detail="balance 100 < amount 250")


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "db") as s:
        yield s


def commit(store: Store, height: int, results: list[TxResult]) -> None:
    prev = store.head().block_hash if store.head() else b"\x00" * 32
    block = make_block(height, prev, EMPTY_ROOT, tuple(b"tx%d" % i for i in range(len(results))))
    store.commit_block(block, SEALS, results, {}, {})


def test_the_detail_is_kept_off_chain_and_read_back_by_height_and_index(store):
    commit(store, 0, [])
    applied = TxResult(b"\x02" * 32, 0, "", ())
    commit(store, 1, [applied, FAILED])
    assert store.get_detail(1, 1) == "balance 100 < amount 250"
    assert store.get_detail(1, 0) is None  # an applied tx has none
    # the result as stored and hashed is the same with or without its detail
    plain = TxResult(FAILED.tx_hash, FAILED.status, FAILED.reason, ())
    assert store.get_result(1, 1).encode() == plain.encode() and FAILED.leaf(b"\x09" * 32) == plain.leaf(b"\x09" * 32)
    assert store.get_result(1, 1) == FAILED


def test_only_the_last_detail_blocks_keep_their_messages(store, monkeypatch):
    monkeypatch.setattr(storage, "DETAIL_BLOCKS", 3)
    commit(store, 0, [])
    for height in range(1, 7):
        commit(store, height, [TxResult(bytes([height]) * 32, 7, "nonce", (), detail=f"at {height}")])
    assert [store.get_detail(h, 0) for h in range(1, 7)] == [None, None, None, "at 4", "at 5", "at 6"]


def test_a_long_detail_is_cut_to_the_bound(store):
    commit(store, 0, [])
    commit(store, 1, [TxResult(b"\x03" * 32, 7, "nonce", (), detail="x" * 5000)])
    assert store.get_detail(1, 0) == "x" * storage.MAX_DETAIL_BYTES
