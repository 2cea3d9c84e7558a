"""Benchmark: decided heights per second of the pure consensus core, happy path, real Ed25519 signing.

n replicas on the simulator's zero-delay network (no faults, no drops, block interval 0, instant app
answers); every replica signs and verifies every message for real. A height counts once every replica
has decided it. The simulator's own certificate check is off here (it is not part of the core); the
agreement check stays on. Prints one JSON object, then a readable line. Never fails for being slow.
Usage: .venv/bin/python bench/consensus.py [--validators 4,16] [--heights 60] [--budget-s 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consensus.sim.invariants import InvariantChecker  # noqa: E402
from consensus.sim.network import LinkModel  # noqa: E402
from consensus.sim.scenarios import FaultPlan, build_simulation, get_keys, make_config  # noqa: E402


class AgreementOnlyChecker(InvariantChecker):
    """Keeps the fork check, skips certificate verification (simulator cost, not core cost)."""

    def verify_decision(self, node, honest, block, seals, expected_height, expected_prev, time_ms):
        first = self.decided.setdefault(block.height, block.hash)
        if first != block.hash or block.height != expected_height:
            self.record("fork", node, time_ms, f"height {block.height}")
            return False
        return True


def bench_one(n: int, heights: int, budget_s: float) -> dict:
    """Run the happy path for ``n`` validators until ``heights`` are decided by all (or the time budget)."""
    keys = get_keys(n)
    plan = FaultPlan(n, 0, (), 0, LinkModel(0.0, 0.0, 0, 0), (), (), (), (), (), 0.0, heights)
    config = make_config(keys, block_interval_ms=0)
    sim = build_simulation(plan, config=config)
    sim.checker.__class__ = AgreementOnlyChecker
    sim.app_delay_ms = (0, 0)
    deadline = time.perf_counter() + budget_s
    done_heights = [0]

    def done(s) -> bool:
        done_heights[0] = min(h.app.get_height() for h in s.hosts)
        return done_heights[0] >= heights or time.perf_counter() > deadline

    t0, c0 = time.perf_counter(), time.process_time()
    for host in sim.hosts:
        sim.start_host(host)
    outcome = sim.run(done, 10**12, 50_000_000)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    decided = min(h.app.get_height() for h in sim.hosts)
    rounds = max((d.round for h in sim.hosts for d in h.app.log), default=0)
    return {"n": n, "heights": decided, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "heights_per_s": round(decided / wall, 2) if wall else None,
            "heights_per_cpu_s": round(decided / cpu, 2) if cpu else None,
            "messages": sim.messages_sent, "messages_per_height": round(sim.messages_sent / max(1, decided), 1),
            "max_round": rounds, "violations": len(sim.checker.violations), "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validators", default="4,16")
    parser.add_argument("--heights", type=int, default=60)
    parser.add_argument("--budget-s", type=float, default=20.0, help="wall-time bound per validator-set size")
    args = parser.parse_args()
    results = [bench_one(int(n), args.heights, args.budget_s) for n in args.validators.split(",")]
    print(json.dumps({"benchmark": "consensus_core_happy_path", "signing": "ed25519", "results": results}))
    for r in results:
        print(f"consensus n={r['n']}: {r['heights_per_s']} heights/s ({r['heights_per_cpu_s']} per CPU-s), "
              f"{r['heights']} heights in {r['wall_s']} s, {r['messages_per_height']} messages/height, "
              f"max round {r['max_round']}, {r['violations']} violations")


if __name__ == "__main__":
    main()
