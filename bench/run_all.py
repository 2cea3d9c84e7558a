"""`make bench`: run every benchmark (``--json``, several runs each) and write bench/RESULTS.md + results.json.

Theory of operation. A *plan* is a list of cases (one bench command, repeated ``--runs`` times; default 3,
1 with ``--quick``), run in this order: throughput closed loop per mix (a), the same mixes open loop at half
the median tx/s just measured (b), transfers on 7 and 10 validators (c), catch-up, storage, state size,
receipts ``--sweep`` (d–g), the micro benches (h), and the signature-check pool layout when throughput.py
accepts ``--verify-workers`` (i). Each run is one subprocess with a timeout; its stdout must carry one JSON
object (the bench output contract). A missing script, a non-zero exit, a timeout or an output that is not a
JSON object is recorded as the run's ``error`` and shown as "not measured: <why>"; the runner itself exits 0
whatever the benches do (benchmarks never fail CI). A time budget (``--budget-min``) skips the runs that would
pass it (recorded as not measured), and a case that timed out is not repeated. The expected duration is
printed first. bench/results.json keeps every raw run; bench/RESULTS.md is rendered from it by
``bench.results_md.render`` (no hand-typed numbers).

Usage: .venv/bin/python bench/run_all.py [--quick] [--runs 3] [--only throughput,catchup,...] [--budget-min 35]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results_md import MICRO, MIXES, good_results, render  # noqa: E402

GROUPS = ("throughput", "latency", "scaling", "catchup", "storage", "state_size", "receipt", "micro", "layout")
SCALING_NODES = (7, 10)  # 4 validators is section a's transfers
QUICK_SCALING_NODES = (10,)  # --quick: the largest only (the smoke run checks it starts and commits)
POOL_WORKERS = os.cpu_count() or 1  # the pool layout: one verify worker per core


@dataclass
class Case:
    """One command run ``runs`` times. ``extra`` makes the arguments from the runs so far (None: skip, with
    ``skip_reason``); ``est_s`` is a guess of one run's wall time, ``timeout_s`` its hard bound."""

    case: str
    group: str
    script: str
    args: list[str]
    est_s: float
    timeout_s: float
    extra: Callable[[list[dict]], list[str] | None] | None = None
    skip_reason: str = ""
    flags: list[str] = field(default_factory=lambda: ["--json"])
    quick_fallback: list[str] = field(default_factory=list)  # small sizes for a script without --quick
    round_robin: bool = False  # runs interleaved with the neighbouring round-robin cases (see ``schedule``)
    max_runs: int = 0  # at most this many runs of the case (0: ``--runs``); for benches measuring a curve of sizes


MICRO_EST_S = {"merkle": 15, "smt": 40, "consensus": 25, "admission": 8, "execute": 12}  # full sizes, quiet machine
# Small sizes of the micro benches that predate --quick (used by --quick only when the script lacks it).
MICRO_QUICK_FALLBACK = {
    "merkle": ["--leaves", "100000", "--appends", "20000", "--proofs", "200", "--smt-keys", "5000"],
    "smt": ["--keys", "10000", "--batches", "5"],
    "consensus": ["--heights", "20", "--budget-s", "5"],
    "admission": ["--txs", "1000", "--repeat", "1"],
    "execute": ["--blocks", "5"],
}


def build_plan(quick: bool, help_of: Callable[[str], str]) -> list[Case]:
    """The cases of a whole ``make bench`` (``--quick``: the contract's small sizes). Throughput cases run
    first, each case's runs in a row (section b needs a's medians); the other benches go round-robin."""
    q = ["--quick"] if quick else []
    tp_args = q + (["--seconds", "3"] if quick else ["--seconds", "10"])
    tp_est = 30.0 if quick else 40.0
    plan = [Case(f"throughput:{m}", "throughput", "throughput.py", tp_args + ["--mix", m], tp_est, 240)
            for m in MIXES]
    for m in MIXES:
        plan.append(Case(f"latency:{m}", "latency", "throughput.py", tp_args + ["--mix", m], tp_est, 240,
                         extra=half_peak_rate(m), skip_reason=f"no closed-loop {m} tx/s was measured (section a)"))
    for n in QUICK_SCALING_NODES if quick else SCALING_NODES:
        plan.append(Case(f"scaling:{n}", "scaling", "throughput.py",
                         tp_args + ["--mix", "transfers", "--nodes", str(n)], tp_est + 3 * n, 300))
    if "--verify-workers" in help_of("throughput.py"):
        plan.append(Case("layout:pool", "layout", "throughput.py",
                         tp_args + ["--mix", "transfers", "--verify-workers", str(POOL_WORKERS)], tp_est, 240))
    rr = {"round_robin": True}
    # Catch-up and state size measure a curve of sizes in one run (100,000 txs behind; up to 10^5 accounts, the
    # 10^6 state takes long to build: `bench/state_size.py --points 1000000`, cached afterwards): one run each.
    once = {"max_runs": 1}
    plan += [Case("catchup", "catchup", "catchup.py", q, 45 if quick else 420, 120 if quick else 1200, **rr, **once),
             # A node keeps the last 256 heights' state trees by default; a bench run of ~20,000 txs makes fewer
             # blocks than that, so nothing would be old enough to prune yet and the figure would be the journal
             # of a young chain, not the steady state: K = 16 shows the steady state within the run.
             Case("storage", "storage", "storage.py", q + ["--state-history", "16"], 40 if quick else 120,
                  120 if quick else 600, **rr, **once),
             Case("state_size", "state_size", "state_size.py",
                  q or ["--points", "1000,10000,100000"], 45 if quick else 150, 120 if quick else 1200, **rr, **once),
             Case("receipt", "receipt", "receipt.py", q + ["--sweep"], 30 if quick else 90, 120 if quick else 480,
                  **rr)]
    plan += [Case(f"micro:{m}", "micro", f"{m}.py", q, 8 if quick else MICRO_EST_S.get(m, 20), 120 if quick else 300,
                  quick_fallback=MICRO_QUICK_FALLBACK.get(m, []) if quick else [], **rr) for m in MICRO]
    return plan


def half_peak_rate(mix: str) -> Callable[[list[dict]], list[str] | None]:
    """``--rate`` = half the median closed-loop tx/s of ``mix`` in the runs so far (None when unmeasured)."""
    def extra(runs: list[dict]) -> list[str] | None:
        values = [r.get("tx_per_s") for r in good_results([x for x in runs if x.get("case") == f"throughput:{mix}"])]
        values = [v for v in values if isinstance(v, (int, float)) and v > 0]
        return ["--rate", f"{statistics.median(values) / 2:.0f}"] if values else None
    return extra


def parse_output(stdout: str) -> dict | None:
    """The bench's JSON object: the whole stdout, else the first object starting a line (a script that still
    prints a readable line after it); None when there is none."""
    text = stdout.strip()
    try:
        doc = json.loads(text)
        return doc if isinstance(doc, dict) else None
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    offset = 0
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("{"):
            try:
                doc, _ = decoder.raw_decode(text, offset + len(line) - len(line.lstrip()))
                if isinstance(doc, dict):
                    return doc
            except ValueError:
                pass
        offset += len(line)
    return None


def run_one(argv: list[str], timeout_s: float) -> dict:
    """Run one bench process; a record with ok/result or ok=False/error (never raises for the bench's sake)."""
    t0 = time.monotonic()
    env = {**os.environ, "CI": os.environ.get("CI", "true")}  # no progress bars in captured output
    try:
        out = subprocess.run(argv, cwd=str(ROOT), capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout_s:.0f} s", "seconds": time.monotonic() - t0,
                "timed_out": True}
    except OSError as exc:
        return {"ok": False, "error": f"could not start: {exc}", "seconds": time.monotonic() - t0}
    rec = {"seconds": round(time.monotonic() - t0, 1), "returncode": out.returncode,
           "stderr_tail": out.stderr[-1500:]}
    if out.returncode != 0:
        last = next((ln for ln in reversed(out.stderr.strip().splitlines()) if ln.strip()), "")
        return {**rec, "ok": False, "error": f"exit {out.returncode}: {last[:300]}"}
    doc = parse_output(out.stdout)
    if doc is None:
        return {**rec, "ok": False, "error": f"the output is not a JSON object: {out.stdout.strip()[:120]!r}"}
    return {**rec, "ok": True, "result": doc}


def script_help(script: str) -> str:
    """A bench script's --help text ("" when it has none or fails)."""
    path = ROOT / "bench" / script
    if not path.is_file():
        return ""
    try:
        return subprocess.run([sys.executable, str(path), "--help"], cwd=str(ROOT), capture_output=True, text=True,
                              timeout=60).stdout
    except (subprocess.TimeoutExpired, OSError):
        return ""


def command_of(script: str, args: list[str], flags: list[str], helptext: str,
               quick_fallback: list[str] | None = None) -> list[str]:
    """The argv of one run: ``--json`` and ``--quick`` only when the script's --help names them (a script
    without them still runs: its output is searched for the JSON object); everything when it has no help."""
    python = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable
    wanted = [f for f in flags if f in helptext or not helptext]
    kept = [a for a in args if a != "--quick" or "--quick" in helptext or not helptext]
    if "--quick" in args and helptext and "--quick" not in helptext:
        pairs = zip(quick_fallback[::2], quick_fallback[1::2]) if quick_fallback else []
        kept += [x for flag, value in pairs if flag in helptext for x in (flag, value)]
    return [python, f"bench/{script}", *wanted, *kept]


def schedule(plan: list[Case], runs: int) -> list[tuple[Case, int]]:
    """(case, run number) in execution order: a case runs ``runs`` times in a row, except consecutive
    ``round_robin`` cases, which go pass by pass (each once, then each again), so a tight budget drops
    their last runs rather than whole benches."""
    order: list[tuple[Case, int]] = []
    i = 0
    while i < len(plan):
        if not plan[i].round_robin:
            order += [(plan[i], k) for k in range(1, (plan[i].max_runs or runs) + 1)]
            i += 1
            continue
        j = i
        while j < len(plan) and plan[j].round_robin:
            j += 1
        order += [(case, k) for k in range(1, runs + 1) for case in plan[i:j] if k <= (case.max_runs or runs)]
        i = j
    return order


def run_plan(plan: list[Case], runs: int, budget_s: float, run: Callable[[list[str], float], dict] = run_one,
             help_of: Callable[[str], str] = script_help, log: Callable[[str], None] = print) -> list[dict]:
    """Run every case ``runs`` times within the budget; every attempt or skip is one record. A case stops at
    its first skip (missing script, nothing to derive its arguments from, budget) or timeout. A run's expected
    time is the case's last run if any, else its ``est_s``."""
    records: list[dict] = []
    t_start = time.monotonic()
    order = schedule(plan, runs)
    stopped: set[str] = set()
    last_s: dict[str, float] = {}
    for k, (case, i) in enumerate(order, 1):
        if case.case in stopped:
            continue
        base = {"case": case.case, "group": case.group, "run": i, "command": None}
        extra = case.extra(records) if case.extra and (ROOT / "bench" / case.script).is_file() else []
        spent = time.monotonic() - t_start
        if not (ROOT / "bench" / case.script).is_file():
            error = f"bench/{case.script} does not exist"
        elif extra is None:
            error = case.skip_reason
        elif spent + last_s.get(case.case, case.est_s) > budget_s:
            error = f"skipped: the run would pass the {budget_s / 60:.0f}-minute budget ({spent / 60:.1f} min spent)"
        else:
            error = ""
        if error:
            records.append({**base, "ok": False, "error": error})
            stopped.add(case.case)
            continue
        argv = command_of(case.script, case.args + extra, case.flags, help_of(case.script), case.quick_fallback)
        log(f"[{k}/{len(order)}] {shlex.join(argv)}")
        rec = {**base, **run(argv, case.timeout_s), "command": shlex.join(argv)}
        records.append(rec)
        last_s[case.case] = float(rec.get("seconds", case.est_s))
        log(f"    {rec.get('seconds', 0):.0f} s: {'ok' if rec['ok'] else rec['error']}")
        if rec.get("timed_out"):
            stopped.add(case.case)  # a case that timed out is not repeated
    return records


def read_machine() -> dict:
    """CPU model, cores, RAM, Python, OS (from /proc and platform), load average."""
    cpu = platform.processor() or platform.machine()
    ram = "?"
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), cpu)
        kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                  if ln.startswith("MemTotal"))
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "ram": ram, "python": platform.python_version(),
            "os": platform.platform(), "loadavg_start": read_loadavg()}


def read_loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def read_git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=str(ROOT), capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=str(ROOT),
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return f"{head}{' (with uncommitted changes)' if dirty else ''}" if head else "?"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the benches' --quick sizes, 1 run each (about 6 min)")
    p.add_argument("--runs", type=int, default=0, help="runs per case (default 3; 1 with --quick)")
    p.add_argument("--only", default="", help=f"comma-separated groups of {', '.join(GROUPS)} (default all)")
    p.add_argument("--budget-min", type=float, default=0.0, help="wall-time budget (default 35; 6 with --quick)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the expected duration, run nothing")
    p.add_argument("--out", default=str(ROOT / "bench"), help="directory of RESULTS.md and results.json")
    p.add_argument("--render-only", action="store_true",
                   help="run nothing: write RESULTS.md again from the runs recorded in results.json")
    args = p.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.budget_min = args.budget_min or (6.0 if args.quick else 35.0)
    unknown = set(filter(None, args.only.split(","))) - set(GROUPS)
    if unknown:
        p.error(f"--only: unknown group(s) {', '.join(sorted(unknown))}; expected {', '.join(GROUPS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        out = Path(args.out)
        (out / "RESULTS.md").write_text(render(json.loads((out / "results.json").read_text())))
        print(f"bench: wrote {out / 'RESULTS.md'} from {out / 'results.json'}")
        return 0
    only = set(filter(None, args.only.split(",")))
    helps: dict[str, str] = {}

    def help_of(script: str) -> str:
        if script not in helps:
            helps[script] = script_help(script)
        return helps[script]

    plan = [c for c in build_plan(args.quick, help_of) if not only or c.group in only]
    expected = sum(c.est_s * (c.max_runs or args.runs) for c in plan)
    print(f"bench: {len(plan)} cases x {args.runs} run(s); expected about {expected / 60:.0f} min on a quiet machine "
          f"(a guess for the benches not timed here); runs that would pass the {args.budget_min:.0f}-minute "
          f"budget are skipped and say so", flush=True)
    if args.dry_run:
        for c in plan:
            print(f"  {c.case}: bench/{c.script} {shlex.join(c.args)}{' + derived args' if c.extra else ''} "
                  f"(~{c.est_s:.0f} s, timeout {c.timeout_s:.0f} s)")
        return 0
    doc = {"generated_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "invocation": "make bench QUICK=1" if args.quick else "make bench", "quick": args.quick,
           "runs_per_case": args.runs, "machine": read_machine(), "git_commit": read_git_commit(), "notes": {}}
    if "--verify-workers" not in help_of("throughput.py"):
        doc["notes"]["layout:pool"] = "bench/throughput.py has no --verify-workers flag"
    t0 = time.monotonic()
    doc["runs"] = run_plan(plan, args.runs, args.budget_min * 60, help_of=help_of,
                           log=lambda s: print(s, flush=True))
    doc["duration_s"] = round(time.monotonic() - t0, 1)
    doc["machine"]["loadavg_end"] = read_loadavg()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "RESULTS.md").write_text(render(doc))
    measured = sum(1 for r in doc["runs"] if r.get("ok"))
    print(f"bench: {measured} of {len(doc['runs'])} runs measured in {doc['duration_s'] / 60:.1f} min; wrote "
          f"{out / 'RESULTS.md'} and {out / 'results.json'}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
