"""Run many seeded fault scenarios: ``python -m consensus.sim --validators 4,5,7,10 --seeds 100 --json``.

Scenario i (0 <= i < --seeds) uses seed ``start_seed + i`` and n = ``validators[i % len(validators)]``, so
``--validators N --seeds 1 --start-seed SEED`` replays exactly one failing scenario. Prints one JSON object
(--json) or a short summary, and a ``replay:`` line per failing scenario; exits 1 when any invariant failed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time

from consensus.sim.scenarios import ALL_FAULTS, parse_faults, run_scenario

MAX_LISTED_VIOLATIONS = 50


def _run_one(job: tuple) -> dict:
    n, seed, faults, heights, node_sync = job
    return run_scenario(n, seed, faults, target_heights=heights, node_sync=node_sync).to_dict()


def get_replay_command(n: int, seed: int, faults_text: str, heights: int, node_sync: bool = False) -> str:
    """The command that replays scenario (n, seed) alone."""
    extra = (f" --heights {heights}" if heights != 3 else "") + (" --node-sync" if node_sync else "")
    return f"python -m consensus.sim --validators {n} --seeds 1 --start-seed {seed} --faults {faults_text}{extra}"


def run_many(validators: list[int], seeds: int, start_seed: int, faults: tuple[str, ...], heights: int,
             jobs: int, faults_text: str, node_sync: bool = False, progress_every: int | None = None) -> dict:
    """Run the scenarios (in ``jobs`` processes) and fold their results into one summary dict."""
    work = [(validators[i % len(validators)], start_seed + i, faults, heights, node_sync) for i in range(seeds)]
    started = time.perf_counter()
    every = progress_every if progress_every is not None else (len(work) // 20 if len(work) >= 1000 else 0)
    results: list[dict] = []

    def collect(it) -> None:
        bad = 0
        for r in it:
            results.append(r)
            bad += len(r["violations"])
            if every and len(results) % every == 0:  # long sweeps show progress on stderr (stdout stays JSON)
                print(f"progress: {len(results)}/{len(work)} scenarios, {bad} violations, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    if jobs > 1 and len(work) > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs) as pool:
            collect(pool.imap(_run_one, work, chunksize=max(1, min(8, len(work) // (jobs * 8) or 1))))
    else:
        collect(_run_one(w) for w in work)
    elapsed = time.perf_counter() - started
    per_n: dict[str, dict] = {}
    failing = []
    summary = {"scenarios": len(results), "validators": validators, "faults": faults_text,
               "start_seed": start_seed, "target_heights": heights, "heights_decided": 0, "decisions": 0,
               "forks": 0, "invariant_violations": 0, "stalls": 0, "elapsed_s": 0.0,
               "max_buffered": 0, "evidence_reports": 0, "max_round": 0, "steps": 0, "messages": 0,
               "watchdog_syncs": 0, "node_sync": node_sync, "fault_activity": {}}
    for r in results:
        row = per_n.setdefault(str(r["n"]), {"scenarios": 0, "heights_decided": 0, "violations": 0,
                                             "stalls": 0, "max_round": 0, "max_virtual_ms": 0})
        row["scenarios"] += 1
        row["heights_decided"] += r["heights"]
        row["violations"] += len(r["violations"])
        row["stalls"] += int(r["stalled"])
        row["max_round"] = max(row["max_round"], r["max_round"])
        row["max_virtual_ms"] = max(row["max_virtual_ms"], r["virtual_ms"])
        summary["heights_decided"] += r["heights"]
        summary["decisions"] += r["decisions"]
        summary["forks"] += r["forks"]
        summary["invariant_violations"] += len(r["violations"])
        summary["stalls"] += int(r["stalled"])
        summary["max_buffered"] = max(summary["max_buffered"], r["max_buffered"])
        summary["evidence_reports"] += r["evidence"]
        summary["max_round"] = max(summary["max_round"], r["max_round"])
        summary["steps"] += r["steps"]
        summary["messages"] += r["messages"]
        summary["watchdog_syncs"] += r["watchdog_syncs"]
        for k, v in r["activity"].items():
            summary["fault_activity"][k] = summary["fault_activity"].get(k, 0) + v
        for v in r["violations"]:
            failing.append({"n": r["n"], "seed": r["seed"], "plan": r["plan"], **v,
                            "replay": get_replay_command(r["n"], r["seed"], faults_text, heights, node_sync)})
    summary["elapsed_s"] = round(elapsed, 3)
    summary["scenarios_per_s"] = round(len(results) / elapsed, 2) if elapsed > 0 else None
    summary["per_n"] = per_n
    summary["violations"] = failing[:MAX_LISTED_VIOLATIONS]
    summary["violations_omitted"] = max(0, len(failing) - MAX_LISTED_VIOLATIONS)
    summary["jobs"] = jobs
    return summary


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print; return the exit status (1 when any invariant failed)."""
    parser = argparse.ArgumentParser(prog="python -m consensus.sim", description=__doc__.splitlines()[0])
    parser.add_argument("--validators", default="4,5,7,10", help="comma list of validator-set sizes")
    parser.add_argument("--seeds", type=int, default=100, help="number of scenarios")
    parser.add_argument("--start-seed", type=int, default=0, help="seed of the first scenario")
    parser.add_argument("--faults", default="all", help=f"all | none | comma list of {','.join(ALL_FAULTS)}")
    parser.add_argument("--heights", type=int, default=3, help="heights every honest replica must decide")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="worker processes")
    parser.add_argument("--node-sync", action="store_true",
                        help="add the node's stall watchdog sync (default: liveness from the core's RequestSync alone)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        validators = [int(x) for x in args.validators.split(",") if x.strip()]
        faults = parse_faults(args.faults)
    except ValueError as exc:
        parser.error(str(exc))
    if not validators or min(validators) < 1 or args.seeds < 0 or args.heights < 1:
        parser.error("expected --validators >= 1, --seeds >= 0 and --heights >= 1")
    summary = run_many(validators, args.seeds, args.start_seed, faults, args.heights, max(1, args.jobs),
                       args.faults, node_sync=args.node_sync)
    replays = sorted({v["replay"] for v in summary["violations"]})
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        for line in replays:
            print(f"replay: {line}", file=sys.stderr)
    else:
        print(f"{summary['scenarios']} scenarios (n={args.validators}, faults={args.faults}) in "
              f"{summary['elapsed_s']} s: {summary['heights_decided']} heights decided, {summary['forks']} forks, "
              f"{summary['invariant_violations']} invariant violations, {summary['stalls']} stalls, "
              f"max round {summary['max_round']}, max buffered {summary['max_buffered']}, "
              f"watchdog syncs {summary['watchdog_syncs']}")
        for v in summary["violations"][:10]:
            print(f"  n={v['n']} seed={v['seed']} {v['kind']}: {v['detail']}")
        for line in replays:
            print(f"replay: {line}")
    return 1 if summary["invariant_violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
