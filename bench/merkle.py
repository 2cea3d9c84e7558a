"""Benchmark: RFC 6962 Merkle root of 1M leaves, proof size/build/verify, incremental appends, SMT batches.

Prints one JSON object, then a readable line. Never fails for being slow; finishes in well under a minute.
Usage: .venv/bin/python bench/merkle.py [--leaves 1000000] [--appends 200000] [--proofs 1000]
                                        [--smt-keys 20000] [--smt-batches 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.merkle import MerkleTree, root, verify_inclusion  # noqa: E402

TIME_BUDGET_S = 20.0  # per timed loop; every loop also has a count bound


def make_leaves(n: int) -> list[bytes]:
    """Distinct leaves about the size of a result leaf (~72 bytes)."""
    pad = b"\xa5" * 64
    return [i.to_bytes(8, "big") + pad for i in range(n)]


def bench_root(leaves: list[bytes]) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    r = root(leaves)
    # CPU time next to wall time: on a shared machine the wall figure mostly measures the neighbours.
    return {"leaves": len(leaves), "root_s": round(time.perf_counter() - t0, 3),
            "root_cpu_s": round(time.process_time() - c0, 3), "root": r.hex()}


def bench_proofs(leaves: list[bytes], runs: int, rnd: random.Random) -> dict:
    t0 = time.perf_counter()
    tree = MerkleTree.from_leaves(leaves)
    build_s = time.perf_counter() - t0
    r = tree.root()
    n = tree.size
    build, verify, sizes = [], [], []
    deadline = time.perf_counter() + TIME_BUDGET_S
    for _ in range(runs):
        if time.perf_counter() > deadline:
            break
        i = rnd.randrange(n)
        t0 = time.perf_counter()
        proof = tree.inclusion_proof(i)
        t1 = time.perf_counter()
        verify_inclusion(leaves[i], i, n, proof, r)
        t2 = time.perf_counter()
        build.append(t1 - t0)
        verify.append(t2 - t1)
        sizes.append(len(proof))
    return {
        "tree_from_leaves_s": round(build_s, 3),
        "proof_hashes_max": max(sizes),
        "proof_bytes_max": 32 * max(sizes),
        "proof_build_us_median": round(statistics.median(build) * 1e6, 1),
        "proof_verify_us_median": round(statistics.median(verify) * 1e6, 1),
        "proofs_measured": len(build),
    }


def bench_appends(leaves: list[bytes], count: int) -> dict:
    tree = MerkleTree()
    deadline = time.perf_counter() + TIME_BUDGET_S
    t0 = time.perf_counter()
    for i, leaf in enumerate(leaves[:count]):
        tree.append(leaf)
        if not i & 4095 and time.perf_counter() > deadline:
            break
    elapsed = time.perf_counter() - t0
    t1 = time.perf_counter()
    tree.root()
    root_after_s = time.perf_counter() - t1
    return {"appended": tree.size, "appends_per_s": round(tree.size / elapsed),
            "root_after_appends_us": round(root_after_s * 1e6, 1)}


def bench_smt(keys: int, batches: int, rnd: random.Random) -> dict:
    if importlib.util.find_spec("ledger.smt") is None:
        return {"skipped": "ledger.smt is not there yet"}
    from ledger import smt

    nodes = smt.MemoryNodes()
    tree = smt.SparseMerkleTree(nodes)
    t0 = time.perf_counter()
    state_root, new = tree.update(smt.EMPTY_ROOT, {b"acct/%08d" % i: i.to_bytes(8, "big") for i in range(keys)})
    nodes.put_many(new)
    prefill_s = time.perf_counter() - t0
    times = []
    deadline = time.perf_counter() + TIME_BUDGET_S
    for _ in range(batches):
        if time.perf_counter() > deadline:
            break
        # 1,000 writes: mostly updates of existing accounts, some new keys, a few deletions.
        batch: dict[bytes, bytes | None] = {}
        while len(batch) < 1000:
            roll = rnd.random()
            if roll < 0.8:
                batch[b"acct/%08d" % rnd.randrange(keys)] = rnd.randbytes(24)
            elif roll < 0.98:
                batch[b"new/%016x" % rnd.getrandbits(64)] = rnd.randbytes(24)
            else:
                batch[b"acct/%08d" % rnd.randrange(keys)] = None
        t0 = time.perf_counter()
        state_root, new = tree.update(state_root, batch)
        times.append(time.perf_counter() - t0)
        nodes.put_many(new)
    median = statistics.median(times)
    return {"prefill_keys": keys, "prefill_s": round(prefill_s, 3), "batch_keys": 1000, "batches": len(times),
            "batch_ms_median": round(median * 1e3, 1), "batches_per_s": round(1 / median, 2),
            "keys_per_s": round(1000 / median)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=200_000)
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--smt-keys", type=int, default=20_000)
    parser.add_argument("--smt-batches", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    leaves = make_leaves(max(1, args.leaves))
    out = {"python": sys.version.split()[0]}
    out["root"] = bench_root(leaves)
    out["proofs"] = bench_proofs(leaves, max(1, args.proofs), rnd)
    out["appends"] = bench_appends(leaves, max(1, args.appends))
    try:
        out["smt"] = bench_smt(max(1, args.smt_keys), max(1, args.smt_batches), rnd)
    except Exception as exc:  # another engineer's module, possibly mid-change: report, never crash the bench
        out["smt"] = {"skipped": f"ledger.smt failed: {type(exc).__name__}: {exc}"}
    print(json.dumps(out, indent=2))
    r, p, a, s = out["root"], out["proofs"], out["appends"], out["smt"]
    smt_line = (f"SMT {s['keys_per_s']:,} keys/s ({s['batches_per_s']} batches of 1,000/s over "
                f"{s['prefill_keys']:,} keys)" if "skipped" not in s else f"SMT skipped ({s['skipped']})")
    print(f"root of {r['leaves']:,} leaves in {r['root_s']:.2f} s ({r['root_cpu_s']:.2f} s CPU); proof {p['proof_hashes_max']} hashes / "
          f"{p['proof_bytes_max']} B, build {p['proof_build_us_median']} us, verify {p['proof_verify_us_median']} us "
          f"(median); {a['appends_per_s']:,} appends/s; {smt_line}")


if __name__ == "__main__":
    main()
