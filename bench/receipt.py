"""Receipt size and offline verification time for one tx in a block of 1,000 txs sealed by 3 of 4 validators.

Also measured: the same receipt after one validator-set change (one more header, its seals and the new set).
Prints one JSON object, then a readable line. Goals: compact receipt <= 1.5 KB, verify <= 1 ms (median).
Usage: .venv/bin/python bench/receipt.py [--runs 500] [--txs 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.receipt import build_receipt, encode_compact, verify  # noqa: E402
from tests.receipt_fixtures import (  # noqa: E402
    make_block, make_change, make_genesis, new_validator_keys, validator_keys,
)


def time_verify(receipt: dict, genesis, runs: int) -> tuple[float, float]:
    """(median, p99) of ``verify`` in ms, after a warm-up."""
    for _ in range(20):  # warm caches
        verify(receipt, genesis)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        verify(receipt, genesis)
        times.append(time.perf_counter() - t0)
    times.sort()
    return (round(statistics.median(times) * 1e3, 4),
            round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3, 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--txs", type=int, default=1000)
    args = parser.parse_args()
    runs = max(200, args.runs)
    sb = make_block(42, args.txs, signers=3)
    genesis = make_genesis()
    index = args.txs * 3 // 4 + 1
    receipt = build_receipt(sb.block, sb.results, index, sb.seals)
    core = {k: v for k, v in receipt.items() if k != "decoded"}
    sizes = {
        "json_bytes": len(json.dumps(core, separators=(",", ":"))),
        "json_with_decoded_bytes": len(json.dumps(receipt, separators=(",", ":"))),
        "compact_bytes": len(encode_compact(receipt)),
    }
    median, p99 = time_verify(receipt, genesis, runs)
    # After one change: the receipt carries the announcing header, 3 seals of the old set and the new set
    new = new_validator_keys(4)
    changed = make_block(42, args.txs, signers=3, keys=new)
    change = make_change(41, validator_keys(), new, signers=3)
    receipt_1 = build_receipt(changed.block, changed.results, index, changed.seals, [change])
    median_1, p99_1 = time_verify(receipt_1, genesis, runs)
    result = {
        "bench": "receipt", "txs_in_block": args.txs, "validators": 4, "seals": len(sb.seals),
        "audit_path_len": len(receipt["audit_path"]), **sizes, "runs": runs,
        "verify_median_ms": median, "verify_p99_ms": p99,
        "one_change": {"compact_bytes": len(encode_compact(receipt_1)), "verify_median_ms": median_1,
                       "verify_p99_ms": p99_1},
        "goals": {"compact_bytes": 1536, "verify_median_ms": 1.0},
    }
    print(json.dumps(result))
    print(f"receipt for tx {index} of {args.txs}: JSON {sizes['json_bytes']} B, compact {sizes['compact_bytes']} B "
          f"(goal <= 1536); verify median {result['verify_median_ms']} ms, p99 {result['verify_p99_ms']} ms "
          f"over {runs} runs (goal <= 1 ms); 1 tx signature + {len(sb.seals)} seals")
    one = result["one_change"]
    print(f"after one validator-set change: compact {one['compact_bytes']} B; verify median "
          f"{one['verify_median_ms']} ms, p99 {one['verify_p99_ms']} ms (3 more seals)")


if __name__ == "__main__":
    main()
