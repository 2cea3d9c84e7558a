"""Benchmark: the event loop's CPU per admitted tx, signatures checked in the loop or in worker processes.

Theory of operation. Opens one node's service on a temp LevelDB store (consensus not started: only admission
runs), pre-signs ``--txs`` transfers, each from a fresh key (nonce 1: admissible; the balance is the block's
business), and admits them through the batch path a ``POST /v1/txs`` takes (``submit_txs_chunked``, batches
of ``--batch``) once per layout: ``verify_workers`` 0 (every Ed25519 check in the loop) and each K of
``--workers``. For each it reports the loop process's CPU per tx (``time.process_time``: the worker
processes' CPU is not in it — that is the point: on a branch machine with spare cores it is off the loop)
and wall time per tx. Every layout must admit exactly the same txs in the same mempool order (``same_order``).

    .venv/bin/python bench/admission_pool.py [--txs 4000] [--batch 100] [--workers 1,2] [--json] [--quick]

Never fails for being slow; exits non-zero only when it cannot measure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.genesis import Genesis, Validator  # noqa: E402
from ledger.keys import KeyPair  # noqa: E402
from ledger.storage import Store  # noqa: E402
from ledger.tx import make_tx  # noqa: E402
from node.options import ServiceOptions  # noqa: E402
from node.service import NodeService  # noqa: E402

CHAIN_ID = "carecoin-bench"


def make_txs(count: int) -> list[bytes]:
    """``count`` transfers, each from its own fresh key with nonce 1."""
    to = KeyPair.generate().public_key
    return [make_tx(CHAIN_ID, "transfer", KeyPair.generate(), 1, [to, 1, bytes(32)]).raw for _ in range(count)]


async def admit(raws: list[bytes], batch: int, workers: int, tmp: Path) -> dict:
    """Admit ``raws`` in batches on a fresh service with ``workers`` verify processes; the figures."""
    node, issuer = KeyPair.generate(), KeyPair.generate()
    genesis = Genesis(CHAIN_ID, 1_700_000_000_000, (Validator("branch-1", node.public_key),),
                      roles={"issuer": (issuer.public_key,)}, policy={})
    opts = ServiceOptions(name="branch-1", mempool_max_count=4 * len(raws) + 100, mempool_max_bytes=2**30,
                          verify_workers=workers)
    svc = NodeService(key=node, genesis=genesis, store=Store.open(tmp / f"db{workers}"), options=opts)
    pool = svc.admission.verify_pool
    try:
        if pool is not None and not await pool.start():
            raise SystemExit(f"bench: the verify pool of {workers} workers did not start")
        warm = await svc.admission.submit_txs_chunked(raws[:batch], gossip=False)  # imports, caches, workers
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcomes = list(warm)
        for start in range(batch, len(raws), batch):
            outcomes.extend(await svc.admission.submit_txs_chunked(raws[start:start + batch], gossip=False))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        measured = len(raws) - batch
        return {"verify_workers": workers, "txs": measured,
                "loop_cpu_us_per_tx": round(cpu / measured * 1e6, 1),
                "wall_us_per_tx": round(wall / measured * 1e6, 1),
                "admitted": sum(not isinstance(o, Exception) for o in outcomes),
                "fallbacks": pool.fallbacks if pool is not None else 0,
                "_order": svc.mempool.get_hashes()}
    finally:
        if pool is not None:
            await pool.stop()
        svc.close()


def run(txs: int, batch: int, workers: list[int]) -> dict:
    raws = make_txs(txs)
    layouts = []
    with tempfile.TemporaryDirectory(prefix="carecoin-admit-") as tmp:
        for k in [0, *workers]:
            layouts.append(asyncio.run(admit(raws, batch, k, Path(tmp))))
            print(f"verify_workers={k}: loop {layouts[-1]['loop_cpu_us_per_tx']} µs/tx, "
                  f"wall {layouts[-1]['wall_us_per_tx']} µs/tx", file=sys.stderr)
    orders = [layout.pop("_order") for layout in layouts]
    same = all(order == orders[0] for order in orders[1:]) and len(orders[0]) == txs
    base = layouts[0]["loop_cpu_us_per_tx"]
    return {"bench": "admission_pool", "params": {"txs": txs, "batch": batch, "workers": workers},
            "cores": os.cpu_count() or 1, "layouts": layouts, "same_order": same,
            "loop_cpu_saved_us_per_tx": {str(la["verify_workers"]): round(base - la["loop_cpu_us_per_tx"], 1)
                                         for la in layouts[1:]},
            "goal": {"same_order": {"target": True, "met": same}}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--txs", type=int, default=4000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--workers", default="1,2", help="comma-separated K values besides 0 (default 1,2)")
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    p.add_argument("--quick", action="store_true", help="small sizes (< 60 s)")
    args = p.parse_args(argv)
    txs = min(args.txs, 1000) if args.quick else args.txs
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    report = run(txs, args.batch, workers)
    print(json.dumps(report))
    if not args.json:
        print(" | ".join(f"K={la['verify_workers']}: loop {la['loop_cpu_us_per_tx']} µs/tx"
                         for la in report["layouts"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
