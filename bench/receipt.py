"""Receipt size and offline verification time for one tx in a block of 1,000 txs sealed by 3 of 4 validators.

Sizes are of the JSON (DESIGN's keys, no ``decoded`` copy, no spaces) and of the compact file that
``encode_compact`` writes (layout 3, ``ledger.receipt_compact``); ``parts_bytes`` splits the compact bytes by
layout-3 field (framing included: they add up to ``compact_bytes`` minus the 1-byte array header). Times:
``verify`` of the JSON dict, and ``decode_compact`` then ``verify`` of the compact bytes (what checking a
compact file costs after reading it).

Also measured: the same receipt after one validator-set change (one more header, its seals and the new set).
Prints one JSON object, then a readable line. Goals: compact receipt <= 1.5 KB, verify <= 1 ms (median).

``--sweep`` (implied by ``--json``) adds ``curve``: size and verify time of a receipt whose audit path proves a
leaf in a tree of 10^3, 10^4, 10^5 and 10^6 leaves (``--quick``: 10^3 and 10^4). What "at 10^6 txs" means:
a receipt proves its tx against the ``results_root`` of ITS block, so on a real chain its size does not grow
with the chain's length but with its block's tx count (plus one entry per validator-set change). Blocks hold
at most ``MAX_BLOCK_TXS`` (10,000) txs, so every receipt of a chain of 10^6 txs is at most the 10^4 point.
The 10^5 and 10^6 points are trees no real block can have (``Block.decode`` refuses them; ``real_block``
false; ``built`` "tree"): the tx, its leaf and the seals are real, the other leaves are stand-ins (only their hashes enter the
receipt, through the audit path), the path and root are computed by the RFC 6962 recursion streaming over
the leaves (O(log n) memory), and the receipt is checked by ``ledger.receipt.verify`` like any other. They
show the cost if blocks were that large: one 32-byte hash per doubling of leaves.

Usage: .venv/bin/python bench/receipt.py [--runs 500] [--txs 1000] [--sweep] [--json] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.block import MAX_BLOCK_TXS, make_seal  # noqa: E402
from ledger import codec  # noqa: E402
from ledger.receipt import build_receipt, verify  # noqa: E402
from ledger.receipt_compact import LAYOUT_3_FIELDS, decode_compact, encode_compact  # noqa: E402
from tests.receipt_fixtures import (  # noqa: E402
    make_block, make_change, make_genesis, new_validator_keys, validator_keys,
)


def time_verify(receipt: dict | bytes, genesis, runs: int) -> tuple[float, float]:
    """(median, p99) of ``verify`` in ms, after a warm-up; of ``decode_compact`` then ``verify`` for bytes."""
    check = (lambda: verify(decode_compact(receipt), genesis)) if isinstance(receipt, bytes) \
        else (lambda: verify(receipt, genesis))
    for _ in range(20):  # warm caches
        check()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        check()
        times.append(time.perf_counter() - t0)
    times.sort()
    return (round(statistics.median(times) * 1e3, 4),
            round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3, 4))


SWEEP = (10**3, 10**4, 10**5, 10**6)
QUICK_SWEEP = (10**3, 10**4)
SWEEP_RUNS = 300
_sha256 = hashlib.sha256


def stand_in_leaf_hash(i: int) -> bytes:
    """The RFC 6962 leaf hash of stand-in leaf ``i`` (another tx's result leaf; distinct per index)."""
    return _sha256(b"\x00" + b"stand-in result leaf " + i.to_bytes(8, "big")).digest()


def subtree_root(start: int, count: int, leaf_hash_at) -> bytes:
    """MTH of leaves ``start .. start+count-1`` (count >= 1), streaming: a stack of perfect subtrees, so
    O(log count) memory. The RFC splits at the largest power of two below n, which for the subtrees an audit
    path uses (perfect, or the right edge of the tree) is exactly folding the stack right to left at the end."""
    stack: list[tuple[int, bytes]] = []  # (leaves under it, hash); sizes strictly decreasing
    for i in range(start, start + count):
        size, h = 1, leaf_hash_at(i)
        while stack and stack[-1][0] == size:
            left = stack.pop()[1]
            h = _sha256(b"\x01" + left + h).digest()
            size *= 2
        stack.append((size, h))
    h = stack.pop()[1]
    while stack:
        h = _sha256(b"\x01" + stack.pop()[1] + h).digest()
    return h


def path_and_root(n: int, index: int, leaf_hash_at) -> tuple[list[bytes], bytes]:
    """The RFC 9162 §2.1.3.1 audit path of leaf ``index`` in a tree of ``n`` leaves, and the tree's root.

    Descends like ``MerkleTree.inclusion_proof`` (split at the largest power of two below n); each sibling
    subtree is hashed by ``subtree_root``; the root is folded back up from the leaf. Every leaf is hashed
    once: 2n hashes in all, whatever ``n``."""
    steps: list[tuple[bytes, bool]] = []  # (sibling hash, sibling is on the left), root to leaf
    start, m = 0, index
    while n > 1:
        k = 1 << ((n - 1).bit_length() - 1)
        if m < k:
            steps.append((subtree_root(start + k, n - k, leaf_hash_at), False))
            n = k
        else:
            steps.append((subtree_root(start, k, leaf_hash_at), True))
            start, m, n = start + k, m - k, n - k
    h = leaf_hash_at(start)
    for sibling, on_left in reversed(steps):
        h = _sha256(b"\x01" + (sibling + h if on_left else h + sibling)).digest()
    return [s for s, _ in reversed(steps)], h


def build_tree_receipt(leaves: int, index: int) -> dict:
    """A receipt of a real signed tx at ``index`` of a tree of ``leaves`` leaves (stand-ins elsewhere), under a
    header with that tx_count and root, sealed by 3 of the 4 validators. Checked by ``verify`` before use."""
    one = make_block(42, 1, signers=3)
    template = build_receipt(one.block, one.results, 0, one.seals)
    own = bytes.fromhex(template["leaf"])
    own_hash = _sha256(b"\x00" + own).digest()
    path, root = path_and_root(leaves, index, lambda i: own_hash if i == index else stand_in_leaf_hash(i))
    header = dataclasses.replace(one.block.header, tx_count=leaves, results_root=root)
    block_hash = header.hash()
    seals = [make_seal(k, header.chain_id, header.height, block_hash) for k in validator_keys()[:3]]
    receipt = {k: v for k, v in template.items() if k != "decoded"}
    receipt.update(leaf_index=index, audit_path=[p.hex() for p in path], header=header.encode().hex(),
                   block_hash=block_hash.hex(),
                   commit=[{"validator": s.validator.hex(), "signature": s.signature.hex()} for s in seals])
    return receipt


def measure_point(txs: int, genesis, runs: int, block_max: int = MAX_BLOCK_TXS) -> dict:
    """One point of the curve: a receipt for the tx at 3/4 of a block (or tree) of ``txs`` leaves. Up to
    ``block_max`` txs the block is real (every tx signed) and ``build_receipt`` proves it; above, a tree."""
    index = txs * 3 // 4 + 1
    t0 = time.perf_counter()
    built = "block" if txs <= block_max else "tree"
    if built == "block":  # a block of signed txs, proved by the node's own code
        sb = make_block(42, txs, signers=3)
        receipt = build_receipt(sb.block, sb.results, index, sb.seals)
    else:
        receipt = build_tree_receipt(txs, index)
    build_s = time.perf_counter() - t0
    verify(receipt, genesis)  # a receipt that does not verify is no measurement
    core = {k: v for k, v in receipt.items() if k != "decoded"}
    p50, p99 = time_verify(core, genesis, runs)
    compact = encode_compact(receipt)
    compact_p50, _ = time_verify(compact, genesis, runs)
    return {"txs": txs, "receipt_bytes": len(json.dumps(core, separators=(",", ":"))),
            "compact_bytes": len(compact), "verify_ms_p50": p50, "verify_ms_p99": p99,
            "verify_compact_ms_p50": compact_p50,
            "audit_path_len": len(receipt["audit_path"]), "real_block": txs <= MAX_BLOCK_TXS,
            "built": built, "build_s": round(build_s, 2), "parts_bytes": receipt_parts(compact)}


def receipt_parts(compact: bytes) -> dict[str, int]:
    """Bytes of each layout-3 field of a compact receipt, framing included (they add up to all but the 1-byte
    array header)."""
    return {name: len(codec.encode(value)) for name, value in zip(LAYOUT_3_FIELDS, codec.decode(compact))}


def sweep(sizes, genesis, runs: int, block_max: int = MAX_BLOCK_TXS) -> list[dict]:
    """``measure_point`` for each size, in order (progress on stderr)."""
    out = []
    for txs in sizes:
        point = measure_point(txs, genesis, runs, block_max)
        print(f"receipt: {txs} leaves: compact {point['compact_bytes']} B, verify p50 {point['verify_ms_p50']} ms "
              f"(built in {point['build_s']} s)", file=sys.stderr, flush=True)
        out.append(point)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--txs", type=int, default=1000)
    parser.add_argument("--sweep", action="store_true", help="add the curve over 10^3..10^6 leaves")
    parser.add_argument("--json", action="store_true", help="print only the JSON object (implies --sweep)")
    parser.add_argument("--quick", action="store_true", help="fewer runs; the curve stops at 10^4")
    args = parser.parse_args()
    runs = 200 if args.quick else max(200, args.runs)
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
    compact_median, _ = time_verify(encode_compact(receipt), genesis, runs)
    # After one change: the receipt carries the announcing header, 3 seals of the old set and the new set
    new = new_validator_keys(4)
    changed = make_block(42, args.txs, signers=3, keys=new)
    change = make_change(41, validator_keys(), new, signers=3)
    receipt_1 = build_receipt(changed.block, changed.results, index, changed.seals, [change])
    median_1, p99_1 = time_verify(receipt_1, genesis, runs)
    result = {
        "bench": "receipt", "txs_in_block": args.txs, "validators": 4, "seals": len(sb.seals),
        "audit_path_len": len(receipt["audit_path"]), **sizes, "runs": runs,
        "verify_median_ms": median, "verify_p99_ms": p99, "verify_compact_median_ms": compact_median,
        "one_change": {"compact_bytes": len(encode_compact(receipt_1)), "verify_median_ms": median_1,
                       "verify_p99_ms": p99_1},
        "goals": {"compact_bytes": 1536, "verify_median_ms": 1.0},
    }
    result["params"] = {"txs": args.txs, "runs": runs, "quick": args.quick, "sweep": args.sweep or args.json,
                        "max_block_txs": MAX_BLOCK_TXS}
    if args.sweep or args.json:
        # --quick builds only the 10^3 block from signed txs (10^4 signatures take ~30 s on a busy machine)
        result["curve"] = curve = sweep(QUICK_SWEEP if args.quick else SWEEP, genesis,
                                        200 if args.quick else SWEEP_RUNS, 10**3 if args.quick else MAX_BLOCK_TXS)
        result["goal"] = compute_goal(curve)
    else:  # the one block measured
        result["goal"] = compute_goal([{"txs": args.txs, "compact_bytes": sizes["compact_bytes"],
                                        "verify_ms_p50": median, "real_block": args.txs <= MAX_BLOCK_TXS}])
    print(json.dumps(result))
    if args.json:
        return
    print(f"receipt for tx {index} of {args.txs}: JSON {sizes['json_bytes']} B, compact {sizes['compact_bytes']} B "
          f"(goal <= 1536); verify median {result['verify_median_ms']} ms, p99 {result['verify_p99_ms']} ms "
          f"over {runs} runs (goal <= 1 ms); 1 tx signature + {len(sb.seals)} seals; from the compact bytes "
          f"(decode + verify) median {result['verify_compact_median_ms']} ms")
    one = result["one_change"]
    print(f"after one validator-set change: compact {one['compact_bytes']} B; verify median "
          f"{one['verify_median_ms']} ms, p99 {one['verify_p99_ms']} ms (3 more seals)")
    for point in result.get("curve", []):
        print(f"  {point['txs']:>9} leaves: path {point['audit_path_len']} hashes, JSON {point['receipt_bytes']} B, "
              f"compact {point['compact_bytes']} B, verify p50 {point['verify_ms_p50']} ms p99 "
              f"{point['verify_ms_p99']} ms, from compact p50 {point['verify_compact_ms_p50']} ms"
              f"{'' if point['real_block'] else ' (larger than any block)'}")


def compute_goal(curve: list[dict]) -> dict:
    """Goals at the largest point measured (10^6 leaves without --quick): compact <= 1.5 KB, verify p50 <= 1 ms.
    ``at_max_block`` is the same at the largest real block (every receipt of a chain of any length)."""
    top = curve[-1]
    real = [p for p in curve if p["real_block"]]
    out = {"at_txs": top["txs"],
           "compact_bytes": {"target": 1536, "value": top["compact_bytes"], "met": top["compact_bytes"] <= 1536},
           "verify_ms_p50": {"target": 1.0, "value": top["verify_ms_p50"], "met": top["verify_ms_p50"] <= 1.0}}
    if real:
        out["at_max_block"] = {"txs": real[-1]["txs"], "target": 1536, "value": real[-1]["compact_bytes"],
                               "compact_bytes": real[-1]["compact_bytes"],
                               "verify_ms_p50": real[-1]["verify_ms_p50"],
                               "met": real[-1]["compact_bytes"] <= 1536 and real[-1]["verify_ms_p50"] <= 1.0}
    return out


if __name__ == "__main__":
    main()
