"""bench/throughput.py: the report arithmetic, and (slow) one short run of the real 4-node network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.throughput import compute_report, parse_args

ROOT = Path(__file__).resolve().parents[2]


def _load(**over):
    doc = {"submitted": 1000, "committed": 990, "fates": {"pending": 4, "evicted:nonce_stale": 2, "unknown": 4},
           "refused": {}, "latencies_ms": {"p50": 10.0, "p90": 20.0, "p99": 30.0, "max": 40.0},
           "blocks": 10, "block_txs": 990, "elapsed_s": 2.0, "submit_window_s": 1.5, "exhausted": False,
           # what the load worker reports since --mix: the kind shares, per-kind counts, outcomes read back
           "shares": {"transfer": 1.0}, "per_kind": {"transfer": {"submitted": 1000, "committed": 990}},
           "failed_by_rule": {}, "outcomes_checked": 990}
    doc.update(over)
    return doc


def test_lost_counts_only_txs_neither_committed_nor_accounted_for():
    report = compute_report(_load(), verify_per_s=10_000, cores=2, args=parse_args([]))
    assert report["lost"] == 4  # the 4 "unknown" ones: pending and evicted-with-reason are accounted for
    assert report["tx_per_s"] == 495.0 and report["mean_txs_per_block"] == 99.0


def test_ratio_is_throughput_over_the_verify_capacity_shared_by_four_nodes():
    report = compute_report(_load(fates={}, committed=1000), verify_per_s=8_000, cores=2, args=parse_args([]))
    assert report["lost"] == 0
    assert report["ratio"] == round(500 / (8_000 * 2 / 4), 3)


@pytest.mark.slow
def test_a_short_bench_run_commits_everything_it_submitted():
    out = subprocess.run([sys.executable, "bench/throughput.py", "--duration", "3", "--senders", "40",
                          "--verify-s", "0.2", "--drain-s", "20"], cwd=str(ROOT), capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.splitlines()[0])
    assert report["submitted"] > 0 and report["lost"] == 0 and report["committed"] == report["submitted"]
    assert report["verify_per_s"] > 0 and report["blocks"] >= 1 and report["node_exit_codes"] == [0, 0, 0, 0]
