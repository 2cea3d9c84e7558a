"""Benchmark: CPU cost of admitting one transaction (decode once, signature check once, admission rules).

Theory of operation. Builds the seeded steady mix of ``bench/execute.py`` (mints and transfers, some with a
second-factor signature), keeps only the envelope bytes, then times in CPU time (``time.process_time``: the
machine may be shared) the three steps a node runs on every submitted tx, each over all ``--txs``:
``decode_tx`` (canonical decode, shape checks, tx hash), ``verify_signatures`` (Ed25519) and the ledger's
admission rules without the signatures (``check_admission(..., verify_signatures=False)``) on the genesis
state. Best of ``--repeat``. Prints ONE JSON object:

    decode_us_per_tx, verify_us_per_tx, rules_us_per_tx, total_us_per_tx, txs, digest

``digest`` = sha256 over the tx hashes: an optimisation of decoding must never change it.

Usage: .venv/bin/python bench/admission.py [--txs 5000] [--repeat 3] [--seed 7] [--json] [--quick]   (never fails for being slow)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from execute import CHAIN_ID, Workload  # noqa: E402

from ledger.chain import check_admission, genesis_block  # noqa: E402
from ledger.errors import LedgerError  # noqa: E402
from ledger.state import MemoryState  # noqa: E402
from ledger.tx import decode_tx  # noqa: E402


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def run(txs: int, repeat: int, seed: int) -> dict:
    """Time the three admission steps; return the figures (see the module docstring)."""
    work = Workload(seed, 300, 8)
    raws = [work.next_tx().raw for _ in range(txs)]
    state = MemoryState(genesis_block(work.genesis)[1].state_writes)
    decoded = [decode_tx(raw) for raw in raws]

    def decode_all() -> None:
        for raw in raws:
            decode_tx(raw)

    def verify_all() -> None:
        for tx in decoded:
            tx.verify_signatures()

    def rules_all() -> None:
        for tx in decoded:
            try:
                check_admission(state, tx, CHAIN_ID, exact_nonce=False, verify_signatures=False)
            except LedgerError:
                pass

    per_tx = {name: round(_best(fn, repeat) / txs * 1e6, 1)
              for name, fn in (("decode", decode_all), ("verify", verify_all), ("rules", rules_all))}
    return {"txs": txs,
            "decode_us_per_tx": per_tx["decode"], "verify_us_per_tx": per_tx["verify"],
            "rules_us_per_tx": per_tx["rules"], "total_us_per_tx": round(sum(per_tx.values()), 1),
            "digest": hashlib.sha256(b"".join(tx.tx_hash for tx in decoded)).hexdigest()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--txs", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print one JSON object (the default output already is)")
    p.add_argument("--quick", action="store_true", help="small sizes (500 txs): ends in seconds")
    args = p.parse_args(argv)
    if args.quick:
        args.txs = min(args.txs, 500)
    params = {"txs": args.txs, "repeat": args.repeat, "seed": args.seed, "quick": args.quick}
    print(json.dumps({"bench": "admission", "params": params, **run(args.txs, args.repeat, args.seed)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
