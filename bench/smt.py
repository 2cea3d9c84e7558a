"""Benchmark: sparse Merkle tree batch updates (in memory and over LevelDB) and proof sizes.

Usage: python bench/smt.py [--keys 100000] [--batch 1000] [--batches 20] [--seed 1] [--history K] [--json] [--quick]

``--history K`` runs the LevelDB part on a pruned store (``Store.open(state_history_blocks=K)``: each commit
journals the replaced nodes and deletes those of height - K); without it the store is an archive.

Prints numbers only (``--json``: one JSON object on stdout, the text lines on stderr); never fails for being slow.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.block import Block, CommitSeal, Header  # noqa: E402
from ledger.smt import EMPTY_ROOT, MemoryNodes, SparseMerkleTree, verify_proof  # noqa: E402
from ledger.storage import Store  # noqa: E402

SEALS = (CommitSeal(b"\x07" * 32, b"\x08" * 64),)


def make_batch(rnd: random.Random, n_keys: int, size: int) -> dict[bytes, bytes]:
    """``size`` writes: 80% updates of existing keys, 20% new keys."""
    batch = {}
    while len(batch) < size:
        if rnd.random() < 0.8:
            key = b"acct/%08d" % rnd.randrange(n_keys)
        else:
            key = b"new/%016x" % rnd.getrandbits(64)
        batch[key] = rnd.randbytes(24)
    return batch


def initial_state(n_keys: int) -> dict[bytes, bytes]:
    return {b"acct/%08d" % i: i.to_bytes(8, "big") for i in range(n_keys)}


FIGURES: dict = {}  # what --json prints


def say(line: str) -> None:
    print(line, file=sys.stderr if FIGURES.get("_json") else sys.stdout)


def bench_memory(args, rnd: random.Random) -> None:
    nodes = MemoryNodes()
    tree = SparseMerkleTree(nodes)
    model = initial_state(args.keys)
    t0 = time.perf_counter()
    root, new = tree.update(EMPTY_ROOT, model)
    nodes.put_many(new)
    built_s = time.perf_counter() - t0
    FIGURES["memory_build_s"] = round(built_s, 3)
    say(f"memory : built {args.keys:,} keys in {built_s:.2f} s ({len(nodes):,} nodes)")
    times = []
    for _ in range(args.batches):
        batch = make_batch(rnd, args.keys, args.batch)
        t0 = time.perf_counter()
        root, new = tree.update(root, batch)
        times.append(time.perf_counter() - t0)
        nodes.put_many(new)
        model.update(batch)
    report("memory ", args, times)
    keys = rnd.sample(sorted(model), 1000)
    absent = [b"absent/%d" % i for i in range(1000)]
    t0 = time.perf_counter()
    proofs = [(k, model[k], tree.prove(root, k)) for k in keys] + [(k, None, tree.prove(root, k)) for k in absent]
    t1 = time.perf_counter()
    for key, value, proof in proofs:
        verify_proof(root, key, value, proof)
    t2 = time.perf_counter()
    present = [len(p.encode()) for _, v, p in proofs if v is not None]
    missing = [len(p.encode()) for _, v, p in proofs if v is None]
    depth = statistics.mean(len(p.siblings) for _, _, p in proofs)
    FIGURES.update(proof_bytes_mean=round(statistics.mean(present)), proof_bytes_max=max(present),
                   absence_proof_bytes_mean=round(statistics.mean(missing)), siblings_mean=round(depth, 1),
                   prove_per_s=round(len(proofs) / (t1 - t0)), verify_per_s=round(len(proofs) / (t2 - t1)))
    say(f"proof  : membership {statistics.mean(present):.0f} B mean / {max(present)} B max, "
        f"absence {statistics.mean(missing):.0f} B mean; {depth:.1f} siblings mean")
    say(f"proof  : prove {len(proofs) / (t1 - t0):,.0f}/s, verify {len(proofs) / (t2 - t1):,.0f}/s")


def bench_leveldb(args, rnd: random.Random) -> None:
    with tempfile.TemporaryDirectory() as tmp, \
            Store.open(Path(tmp) / "db", state_history_blocks=args.history) as store:
        tree = SparseMerkleTree(store)
        t0 = time.perf_counter()
        state = initial_state(args.keys)
        root, nodes = tree.update(EMPTY_ROOT, state)
        prev = b"\x00" * 32
        block = Block(Header("bench", 0, prev, 1, b"\x01" * 32, 0, b"\x02" * 32, root, b"\x03" * 32), ())
        store.commit_block(block, SEALS, [], state, nodes, ())
        say(f"leveldb: built and committed {args.keys:,} keys in {time.perf_counter() - t0:.2f} s")
        for label, cold in (("leveldb (warm cache)", False), ("leveldb (cold cache)", True)):
            times, commits = [], []
            for _ in range(args.batches):
                if cold:
                    tree = SparseMerkleTree(store)
                batch = make_batch(rnd, args.keys, args.batch)
                head = store.head()
                t0 = time.perf_counter()
                done = tree.update_tracked(head.state_root, batch)
                t1 = time.perf_counter()
                header = Header("bench", head.height + 1, head.block_hash, head.height + 2, b"\x01" * 32, 0,
                                b"\x02" * 32, done.root, b"\x03" * 32)
                store.commit_block(Block(header, ()), SEALS, [], batch, done.nodes, done.replaced, done.reused)
                times.append(t1 - t0)
                commits.append(time.perf_counter() - t1)
            report(label, args, times, commits)
        rows = sum(1 for _ in store._db.iterator(prefix=b"N", include_value=False))
        FIGURES["leveldb_node_rows"] = rows
        FIGURES["state_history_blocks"] = args.history
        say(f"leveldb: {rows:,} node rows after {2 * args.batches} batches "
            f"({'archive' if args.history is None else f'pruned, state_history_blocks={args.history}'})")


def report(label: str, args, times: list[float], commits: list[float] | None = None) -> None:
    mean = statistics.mean(times)
    line = (f"{label}: {1 / mean:.1f} batches/s of {args.batch:,} keys over {args.keys:,} "
            f"({args.batch / mean:,.0f} key updates/s, median {statistics.median(times) * 1e3:.0f} ms/batch)")
    if commits:
        line += f"; commit_block {statistics.median(commits) * 1e3:.0f} ms median"
    name = label.strip().replace("leveldb (warm cache)", "leveldb_warm").replace("leveldb (cold cache)", "leveldb_cold")
    FIGURES[name] = {"key_updates_per_s": round(args.batch / mean), "batch_ms_median":
                     round(statistics.median(times) * 1e3, 1),
                     **({"commit_ms_median": round(statistics.median(commits) * 1e3, 1)} if commits else {})}
    say(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--history", type=int, default=None,
                        help="prune the LevelDB store to the last K heights' trees (default: archive)")
    parser.add_argument("--json", action="store_true", help="print one JSON object; the text lines go to stderr")
    parser.add_argument("--quick", action="store_true", help="small sizes (10,000 keys, 5 batches of 500)")
    args = parser.parse_args()
    if args.quick:
        args.keys, args.batch, args.batches = min(args.keys, 10_000), min(args.batch, 500), min(args.batches, 5)
    FIGURES["_json"] = args.json
    bench_memory(args, random.Random(args.seed))
    bench_leveldb(args, random.Random(args.seed + 1))
    if args.json:
        del FIGURES["_json"]
        print(json.dumps({"bench": "smt", "params": {"keys": args.keys, "batch": args.batch,
                                                      "batches": args.batches, "seed": args.seed,
                                                      "quick": args.quick}, **FIGURES}))


if __name__ == "__main__":
    main()
