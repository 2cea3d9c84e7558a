"""Golden execution: a seeded coin workload must produce exactly the same blocks as before any optimisation.

The digest (sha256 over the block hashes) covers every header, hence every results_root (statuses, reasons,
events) and every state_root (all state keys and values). It was computed with the unoptimised code of
``ledger.lots``/``ledger.state``/``ledger.chain``/``ledger.smt``; an optimisation that changes any result,
event or state byte fails here.

Re-pinned for the block-time sweeps (issue 12): every lot now schedules an expiry due entry (new state keys)
and a block whose time reaches one starts with a ``block-sweep`` system tx, so 5 of the 8 blocks carry one
more tx and some expiries move from a later tx's result to that sweep's. Every client tx's outcome is the
same as before (the failure reasons are unchanged).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "bench_execute", Path(__file__).resolve().parents[2] / "bench" / "execute.py")
bench_execute = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench_execute)

GOLDEN_DIGEST = "bdbe51748e686432b53aaf3cbde8eadf4528b59d215b1c0d0476f0833f957e1f"
GOLDEN_REASONS = {"": 738, "daily_limit_exceeded": 54, "insufficient_balance": 252, "invalid_amount": 14,
                  "second_factor_required": 84, "self_transfer": 63}
GOLDEN_EVENTS = {"credited": 113, "customer_registered": 14, "expired": 129, "second_factor_set": 2,
                 "transferred": 604}


def test_seeded_workload_executes_to_the_pinned_block_digest_with_expiry_and_failures():
    out = bench_execute.run(blocks=8, block_size=150, accounts=30, seed=3, lifetime_blocks=3)
    assert out["txs"] == 1200 + 5  # the workload's txs and the block-sweeps of the 5 blocks where lots came due
    assert out["reasons"] == GOLDEN_REASONS
    assert out["events"] == GOLDEN_EVENTS
    assert out["digest"] == GOLDEN_DIGEST
