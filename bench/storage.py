"""Benchmark: bytes a node keeps on disk per committed tx, before and after LevelDB compaction, by key prefix.

Theory of operation. Runs ``bench/throughput.py --mix coin --max-txs N --keep`` (a real 4-node network on
127.0.0.1 playing the coin customer stories of ``bench/mix.py``: registrations, mints, orders with coupon,
coin payment and confirmation, refund requests, transfers), which stops its nodes at the end. Then, in the
first node's data dir (``--data-dir`` measures an existing, stopped one instead):

1. sizes every file the node keeps (LevelDB's own files; ``consensus.wal``; ``vault/`` with its replay guard
   ``vault/seen-requests``; ``audit/``; ``webhooks/``). The list index and the report index live in memory
   (rebuilt at start); the SQL sink is off unless ``[sink]`` is configured, so neither is on disk here;
2. reads every LevelDB row and sums key + value bytes per key prefix (``ledger.storage`` key layout);
3. compacts the store (plyvel ``compact_range``, opened with the node's table options) and sizes it again;
4. copies each prefix's rows alone into a scratch LevelDB (same options: snappy, bloom filter), compacts it and sizes
   it: ``by_prefix`` is what each prefix costs on disk after compaction (the parts add up to the compacted
   store within LevelDB's per-table overhead);
5. walks the sparse-Merkle tree from the head's ``state_root``: nodes reachable from it are the live state
   tree; every other ``N`` row is history (the trees of older heights, kept by design: nodes are immutable).

``txs`` is the number of committed txs (rows of the tx index). ``bytes_per_tx`` = every byte of the data dir
after compaction / txs. ``bytes_per_tx_without_smt_history`` = the same without the unreachable tree nodes.

Nodes run with the node's default state pruning (``[storage] state_history_blocks = 256``: the trees of the last
256 heights kept) unless ``--state-history K`` or ``--archive`` (every height's tree) says otherwise; the
pruning journal (``J``, ``P`` rows) counts as sparse-Merkle history.

Usage: .venv/bin/python bench/storage.py [--txs 20000] [--mix coin|service] [--state-history K | --archive]
                                         [--json] [--quick] [--keep]
       .venv/bin/python bench/storage.py --data-dir PATH   (a stopped node's data dir; it is compacted in place)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import plyvel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger import storage  # noqa: E402
from ledger.smt import EMPTY_ROOT, NODE_INTERNAL, decode_node  # noqa: E402
from ledger.storage import ChainHead  # noqa: E402

GOAL_BYTES_PER_TX = 400
DEFAULT_TXS = 20_000
QUICK_TXS = 300  # ~60 s with the network start at load average 20 on 2 cores; half that when idle
# What each key prefix of ``ledger.storage`` holds (its module docstring is the reference).
PREFIXES = {
    storage.P_BLOCK: "block: header and tx envelopes",
    storage.P_HEADER: "header copy (reads skip the txs)",
    storage.P_HASH: "block hash -> height",
    storage.P_CERT: "commit certificate (seals)",
    storage.P_RESULT: "tx result: tx_hash, status, reason, events",
    storage.P_TX: "tx hash -> (height, index)",
    storage.P_STATE: "current state value",
    storage.P_NODE: "sparse-Merkle node (every height's tree)",
    storage.P_META: "node metadata",
    storage.P_WAL: "consensus WAL record (LevelDB copy)",
    storage.P_DETAIL: "failed tx's rule message (recent blocks)",
    storage.P_JOURNAL: "pruning journal: nodes a height replaced (pending deletion)",
    storage.P_REVIVED: "pruning revival marker: node written again -> that height",
    storage.P_LEGACY_PENDING: "format 1 pruning index (node -> journal), left from an upgrade",
    storage.P_HEAD: "head marker",
    storage.P_VERSION: "store format version",
}
# Prefixes of the chain itself and its indexes (everything else is state, the tree, or node bookkeeping).
CHAIN_PREFIXES = (storage.P_BLOCK, storage.P_HEADER, storage.P_HASH, storage.P_CERT, storage.P_RESULT, storage.P_TX,
                  storage.P_DETAIL)
# Files and directories of a data dir besides LevelDB's own.
OTHER_FILES = {
    "consensus.wal": "consensus WAL record (checksummed file copy; one record, not per tx)",
    "vault/seen-requests": "replay guard of signed requests (reads too; bounded by a time window)",
    "vault": "customer vault: wrapped keys, ciphertexts, texts (other than the replay guard)",
    "audit": "audit trail of vault reads and writes",
    "webhooks": "webhook registrations",
}


def eprint(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


# ---- sizes ---------------------------------------------------------------------------------------------


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (a file: its size; missing: 0)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def leveldb_bytes(data_dir: Path) -> int:
    """Bytes of LevelDB's own files in ``data_dir`` (tables, log, manifest, CURRENT, LOG, LOCK)."""
    return sum(p.stat().st_size for p in data_dir.iterdir() if p.is_file() and p.name != "consensus.wal")


def other_bytes(data_dir: Path) -> dict[str, int]:
    """Bytes of every non-LevelDB part of a data dir (``OTHER_FILES``; the vault without its replay guard)."""
    out = {name: tree_bytes(data_dir / name) for name in OTHER_FILES}
    out["vault"] -= out["vault/seen-requests"]
    return out


def prefix_label(prefix: bytes) -> str:
    """A key prefix as the JSON key: the letter of ``ledger.storage``'s layout, or ``0x..`` if unprintable."""
    return prefix.decode() if prefix.isalpha() else "0x" + prefix.hex()


def open_like_node(path: Path, *, create: bool) -> "plyvel.DB":
    """Open a LevelDB with the node's table options (``ledger.storage``: bloom filter, block cache; snappy is
    plyvel's default), so the tables a compaction writes here are the ones the node's would be."""
    return plyvel.DB(str(path), create_if_missing=create, lru_cache_size=storage.BLOCK_CACHE_BYTES,
                     bloom_filter_bits=storage.BLOOM_BITS_PER_KEY)


def scan_prefixes(db: "plyvel.DB") -> dict[str, dict[str, int]]:
    """Per key prefix (first byte): rows and key + value bytes of every row."""
    out: dict[str, dict[str, int]] = {}
    for key, value in db.iterator():
        entry = out.setdefault(prefix_label(key[:1]), {"rows": 0, "raw_bytes": 0})
        entry["rows"] += 1
        entry["raw_bytes"] += len(key) + len(value)
    return out


def prefix_disk_bytes(db: "plyvel.DB", scratch: Path) -> dict[str, int]:
    """Per key prefix: bytes on disk of its rows alone in a compacted LevelDB of the same options."""
    out: dict[str, int] = {}
    scratch.mkdir(parents=True, exist_ok=True)
    for prefix in present_prefixes(db):
        target = scratch / f"prefix-{prefix.hex()}"
        part = open_like_node(target, create=True)
        try:
            with part.write_batch() as wb:
                for key, value in db.iterator(prefix=prefix):
                    wb.put(key, value)
            part.compact_range()
        finally:
            part.close()
        out[prefix_label(prefix)] = sum(p.stat().st_size for p in target.iterdir() if p.suffix in (".ldb", ".log"))
        shutil.rmtree(target, ignore_errors=True)
    return out


def present_prefixes(db: "plyvel.DB") -> list[bytes]:
    """Every first key byte present in the store, in order (one seek per prefix, not a full scan)."""
    out: list[bytes] = []
    start = b""
    while True:
        it = db.iterator(start=start, include_value=False)
        first = next(it, None)
        it.close()
        if first is None:
            return out
        out.append(first[:1])
        if first[0] == 0xFF:
            return out
        start = bytes([first[0] + 1])


def smt_live(db: "plyvel.DB") -> dict[str, int]:
    """Rows and bytes of the sparse-Merkle nodes reachable from the head's state root (the live tree)."""
    raw = db.get(storage.P_HEAD)
    if raw is None:
        return {"rows": 0, "raw_bytes": 0}
    root = ChainHead.decode(raw).state_root
    rows = size = 0
    seen: set[bytes] = set()
    todo = [root] if root != EMPTY_ROOT else []
    while todo:
        h = todo.pop()
        if h in seen:
            continue
        seen.add(h)
        node = db.get(storage.P_NODE + h)
        if node is None:
            raise SystemExit(f"bench: sparse-Merkle node {h.hex()[:16]}… reachable from the head is missing")
        rows += 1
        size += 1 + len(h) + len(node)
        kind, left, right = decode_node(node)
        if kind == NODE_INTERNAL:
            todo.extend(x for x in (left, right) if x != EMPTY_ROOT)
    return {"rows": rows, "raw_bytes": size}


def count_txs(db: "plyvel.DB") -> int:
    """Committed txs: rows of the tx index."""
    return sum(1 for _ in db.iterator(prefix=storage.P_TX, include_value=False))


# ---- one data dir ----------------------------------------------------------------------------------------


def measure_data_dir(data_dir: Path, scratch: Path) -> dict:
    """Everything ``compute_report`` needs, from a stopped node's data dir (compacted in place)."""
    before = leveldb_bytes(data_dir)
    others = other_bytes(data_dir)
    db = open_like_node(data_dir, create=False)
    try:
        txs = count_txs(db)
        scanned = scan_prefixes(db)
        live = smt_live(db)
        db.compact_range()
        disk = prefix_disk_bytes(db, scratch)
    finally:
        db.close()
    after = leveldb_bytes(data_dir)
    return {"txs": txs, "leveldb_before": before, "leveldb_after": after, "others": others,
            "scanned": scanned, "disk": disk, "smt_live": live}


def compute_report(m: dict, mix: str, params: dict, network: dict | None) -> dict:
    """The one JSON object the bench prints (pure: from ``measure_data_dir``'s figures)."""
    txs = max(1, m["txs"])
    other_total = sum(m["others"].values())
    total_after = m["leveldb_after"] + other_total
    total_before = m["leveldb_before"] + other_total
    nodes = m["scanned"].get(prefix_label(storage.P_NODE), {"rows": 0, "raw_bytes": 0})
    history_raw = nodes["raw_bytes"] - m["smt_live"]["raw_bytes"]
    # the history's share of the N rows' on-disk bytes (hashes do not compress: the share is by raw bytes)
    history_disk = (m["disk"].get(prefix_label(storage.P_NODE), 0) * history_raw // nodes["raw_bytes"]
                    if nodes["raw_bytes"] else 0)
    per_tx = round(total_after / txs, 1)
    disk = m["disk"]
    chain = sum(disk.get(prefix_label(p), 0) for p in CHAIN_PREFIXES)
    state = disk.get(prefix_label(storage.P_STATE), 0) + disk.get(prefix_label(storage.P_NODE), 0) - history_disk
    rest = sum(v for k, v in disk.items() if k not in {prefix_label(p) for p in (*CHAIN_PREFIXES, storage.P_STATE,
                                                                                 storage.P_NODE)})
    journal = sum(disk.get(prefix_label(p), 0) for p in (storage.P_JOURNAL, storage.P_REVIVED,
                                                          storage.P_LEGACY_PENDING))
    parts = {"chain": chain, "current_state": state, "smt_history": history_disk + journal,
             "node_files": rest - journal + other_total}
    return {
        "bench": "storage", "params": params, "mix": mix, "txs": m["txs"],
        "bytes_per_tx": per_tx,
        "bytes_per_tx_before_compaction": round(total_before / txs, 1),
        "leveldb_bytes_per_tx": round(m["leveldb_after"] / txs, 1),
        "bytes_per_tx_without_smt_history": round((total_after - history_disk) / txs, 1),
        "by_prefix": dict(sorted(m["disk"].items(), key=lambda kv: -kv[1])),
        "by_prefix_per_tx": {k: round(v / txs, 1) for k, v in sorted(m["disk"].items(), key=lambda kv: -kv[1])},
        "by_prefix_raw": m["scanned"],
        # chain: blocks, results and their indexes (grow per tx); current_state: state values and the head's
        # tree (grow per record the workload creates); smt_history: older heights' tree nodes
        "by_part_per_tx": {k: round(v / txs, 1) for k, v in parts.items()},
        "prefix_meaning": {prefix_label(p): what for p, what in PREFIXES.items()},
        "leveldb_bytes": {"before_compaction": m["leveldb_before"], "after_compaction": m["leveldb_after"]},
        "other_files": m["others"], "other_files_meaning": OTHER_FILES,
        "smt": {"nodes": nodes["rows"], "live_nodes": m["smt_live"]["rows"],
                "history_nodes": nodes["rows"] - m["smt_live"]["rows"], "history_disk_bytes": history_disk,
                "nodes_per_tx": round(nodes["rows"] / txs, 2)},
        "network": network,
        "goal": {"bytes_per_tx": {"target": GOAL_BYTES_PER_TX, "value": per_tx, "met": per_tx <= GOAL_BYTES_PER_TX}},
    }


# ---- the network run ---------------------------------------------------------------------------------------


def run_network(args: argparse.Namespace, workdir_holder: list[Path]) -> tuple[Path, dict]:
    """Run the throughput bench with ``--keep``; return the first node's data dir and its JSON report."""
    cmd = [sys.executable, str(ROOT / "bench" / "throughput.py"), "--mix", args.mix, "--json", "--keep",
           "--max-txs", str(args.txs), "--seconds", str(args.seconds), "--drain-s", str(args.drain_s),
           "--verify-s", "0.2"] + (["--archive"] if args.archive else []) + \
        (["--state-history", str(args.state_history)] if args.state_history else [])
    eprint(f"storage: running {args.txs} {args.mix} txs through a 4-node network (bench/throughput.py)")
    out = subprocess.run(cmd, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         timeout=args.seconds + args.drain_s + 600, env={**os.environ, "CI": "true"})
    kept = [line.split("files kept in ", 1)[1].strip() for line in out.stderr.splitlines() if "files kept in " in line]
    if kept:
        workdir_holder.append(Path(kept[-1]))
    if out.returncode != 0 or not kept:
        raise SystemExit(f"bench: the network run failed ({out.returncode}):\n{out.stderr[-3000:]}")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    net = Path(kept[-1]) / "net"
    first = sorted(p.parent for p in net.glob("*/node.toml"))[0]
    return first / "data", report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--txs", type=int, default=DEFAULT_TXS, help=f"txs to pre-sign and commit (default {DEFAULT_TXS})")
    p.add_argument("--mix", choices=("coin", "service"), default="coin", help="customer stories (bench/mix.py)")
    p.add_argument("--seconds", type=float, default=600.0, help="bound on the submission window")
    p.add_argument("--drain-s", type=float, default=60.0, help="bound on waiting for the last commits")
    p.add_argument("--data-dir", type=Path, help="measure this stopped node's data dir instead of running a network")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_TXS} txs (smoke test)")
    p.add_argument("--keep", action="store_true", help="keep the network's temp dir")
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    p.add_argument("--state-history", type=int, default=0,
                   help="[storage] state_history_blocks of the nodes (default 0: the node's default, 256)")
    p.add_argument("--archive", action="store_true", help="[storage] archive = true: keep every height's tree")
    args = p.parse_args(argv)
    if args.quick:
        args.txs, args.seconds, args.drain_s = QUICK_TXS, 25.0, 20.0
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = {"txs_requested": args.txs, "mix": args.mix, "quick": args.quick, "nodes": 4,
              "data_dir": str(args.data_dir) if args.data_dir else None,
              "storage": "archive" if args.archive else f"state_history_blocks={args.state_history or 256}"}
    t0 = time.time()
    workdirs: list[Path] = []
    scratch = Path(tempfile.mkdtemp(prefix="carecoin-storage-"))
    try:
        network = None
        if args.data_dir is not None:
            data_dir = args.data_dir
        else:
            data_dir, run = run_network(args, workdirs)
            network = {k: run.get(k) for k in ("submitted", "committed", "lost", "blocks", "mean_txs_per_block",
                                               "tx_per_s", "shares")}
        if not (data_dir / "CURRENT").exists():
            raise SystemExit(f"bench: {data_dir} holds no LevelDB store")
        m = measure_data_dir(data_dir, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for w in workdirs:
            if args.keep:
                eprint(f"storage: files kept in {w}")
            else:
                shutil.rmtree(w, ignore_errors=True)
    report = compute_report(m, args.mix, params, network)
    report["elapsed_s"] = round(time.time() - t0, 1)
    print(json.dumps(report))
    if args.json:
        return
    parts = ", ".join(f"{k} {v}" for k, v in report["by_prefix_per_tx"].items())
    kinds = ", ".join(f"{k} {v}" for k, v in report["by_part_per_tx"].items())
    print(f"storage ({args.mix}, {report['txs']} txs): {report['bytes_per_tx']} B/tx after compaction "
          f"({report['bytes_per_tx_before_compaction']} before; goal <= {GOAL_BYTES_PER_TX}); per prefix B/tx: {parts}; "
          f"without sparse-Merkle history {report['bytes_per_tx_without_smt_history']} B/tx; by part B/tx: {kinds}")


if __name__ == "__main__":
    main()
