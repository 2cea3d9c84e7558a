"""The storage bench's measurement of a data dir: rows and bytes per key prefix add up to the store, the tx
count is the tx index's, and the sparse-Merkle history is exactly the nodes the head's tree no longer uses."""

from __future__ import annotations

from pathlib import Path

import plyvel
import pytest

from bench.storage import compute_report, measure_data_dir
from ledger import storage
from ledger.smt import MemoryNodes, SparseMerkleTree
from ledger.storage import ChainHead

KEYS = 20
CHANGED = 5
TXS = 7


@pytest.fixture
def data_dir(tmp_path: Path) -> tuple[Path, dict[bytes, bytes], int]:
    """A stopped node's data dir in miniature: a state tree at two heights, tx index, state, a block, files."""
    nodes = MemoryNodes()
    tree = SparseMerkleTree(nodes)
    state = {b"a" + bytes([i]): b"balance %d" % i for i in range(KEYS)}
    root1, new1 = tree.update(b"\x00" * 32, state)
    nodes.put_many(new1)
    changes = {b"a" + bytes([i]): b"balance %d!" % i for i in range(CHANGED)}
    root2, new2 = tree.update(root1, changes)
    state.update(changes)
    rows = {storage.P_NODE + h: raw for h, raw in {**new1, **new2}.items()}
    rows.update({storage.P_STATE + k: v for k, v in state.items()})
    rows.update({storage.P_TX + bytes([i]) * 32: b"\x92\x01" + bytes([i]) for i in range(TXS)})
    rows[storage.P_BLOCK + (1).to_bytes(8, "big")] = b"block bytes " * 50
    rows[storage.P_HEAD] = ChainHead(1, b"\x11" * 32, root2).encode()
    path = tmp_path / "data"
    db = plyvel.DB(str(path), create_if_missing=True)
    for k, v in rows.items():
        db.put(k, v)
    db.close()
    (path / "consensus.wal").write_bytes(b"w" * 100)
    (path / "vault").mkdir()
    (path / "vault" / "seen-requests").write_bytes(b"r" * 770)
    (path / "vault" / "master.check").write_bytes(b"m" * 70)
    fresh_root, fresh_nodes = SparseMerkleTree(MemoryNodes()).update(b"\x00" * 32, state)
    assert fresh_root == root2
    return path, rows, len(fresh_nodes)  # the head's tree, built afresh: its node count


def test_rows_and_bytes_per_prefix_add_up_to_every_row_of_the_store(data_dir, tmp_path):
    path, rows, _ = data_dir
    m = measure_data_dir(path, tmp_path / "scratch")
    assert sum(e["rows"] for e in m["scanned"].values()) == len(rows)
    assert sum(e["raw_bytes"] for e in m["scanned"].values()) == sum(len(k) + len(v) for k, v in rows.items())
    assert m["scanned"]["T"] == {"rows": TXS, "raw_bytes": TXS * 36}
    assert m["txs"] == TXS
    assert set(m["disk"]) == set(m["scanned"]) == {"N", "S", "T", "B", "h"}


def test_hash_rows_do_not_compress_and_repeated_text_does(data_dir, tmp_path):
    path, _, _ = data_dir
    m = measure_data_dir(path, tmp_path / "scratch")
    assert m["disk"]["N"] >= m["scanned"]["N"]["raw_bytes"] * 0.9
    assert m["disk"]["B"] < m["scanned"]["B"]["raw_bytes"] / 2  # snappy on: 50 copies of one phrase shrink


def test_smt_history_is_the_nodes_the_head_tree_replaced(data_dir, tmp_path):
    path, _, live_nodes = data_dir
    m = measure_data_dir(path, tmp_path / "scratch")
    assert m["smt_live"]["rows"] == live_nodes >= 2 * KEYS - 1  # 20 leaves, 19+ internal nodes
    history = m["scanned"]["N"]["rows"] - m["smt_live"]["rows"]
    assert CHANGED <= history <= m["scanned"]["N"]["rows"] - KEYS  # at least the 5 replaced leaves
    report = compute_report(m, "coin", {}, None)
    assert report["smt"]["history_nodes"] == history
    assert report["bytes_per_tx_without_smt_history"] < report["bytes_per_tx"]


def test_bytes_per_tx_counts_the_compacted_store_and_every_other_file(data_dir, tmp_path):
    path, _, _ = data_dir
    m = measure_data_dir(path, tmp_path / "scratch")
    assert m["others"] == {"consensus.wal": 100, "vault/seen-requests": 770, "vault": 70, "audit": 0,
                           "webhooks": 0}
    report = compute_report(m, "coin", {"txs_requested": TXS}, None)
    assert report["bytes_per_tx"] == round((m["leveldb_after"] + 940) / TXS, 1)
    assert report["goal"]["bytes_per_tx"]["met"] is (report["bytes_per_tx"] <= 400)
    assert report["bench"] == "storage" and report["txs"] == TXS and report["mix"] == "coin"


def test_parts_split_the_prefixes_without_counting_one_twice(data_dir, tmp_path):
    path, _, _ = data_dir
    m = measure_data_dir(path, tmp_path / "scratch")
    report = compute_report(m, "coin", {}, None)
    parts = report["by_part_per_tx"]
    assert parts["chain"] == round((m["disk"]["B"] + m["disk"]["T"]) / TXS, 1)
    assert parts["smt_history"] == round(report["smt"]["history_disk_bytes"] / TXS, 1)
    whole = sum(m["disk"].values()) + sum(m["others"].values())
    assert abs(sum(parts.values()) * TXS - whole) <= 4 * 0.05 * TXS  # only the per-part rounding differs
