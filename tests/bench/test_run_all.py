"""`make bench` (bench/run_all.py, bench/results_md.py): RESULTS.md from canned runs, and the runner's handling of
benches that are missing, fail or print something other than a JSON object. No real bench runs here, except
the slow-marked smoke test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import run_all
from bench.results_md import render, summarise_goals

ROOT = Path(__file__).resolve().parents[2]


def tp_result(tx_per_s: float, ratio: float, p50: float, p99: float = 400.0, lost: int = 0, mix: str = "transfers",
              rate: float = 0.0, validators: int = 4) -> dict:
    goal = {"lost": {"target": 0, "op": "<=", "value": lost, "met": lost <= 0}}
    if rate:
        goal["latency_p50_ms"] = {"target": 100.0, "op": "<=", "value": p50, "met": p50 <= 100}
    else:
        goal["ratio"] = {"target": 0.55, "op": ">=", "value": ratio, "met": ratio >= 0.55}
    return {"bench": "throughput", "params": {"mix": mix}, "tx_per_s": tx_per_s, "ratio": ratio,
            "bound_tx_per_s": 4800.0, "lost": lost, "latency_ms": {"p50": p50, "p90": p50, "p99": p99, "max": p99},
            "validators": validators, "mix": mix, "rate": rate, "verify_per_s": 9600, "cores": 2,
            "verify_workers": 0, "goal": goal}


def ok_run(case: str, result: dict, k: int = 1) -> dict:
    return {"case": case, "group": case.split(":")[0], "run": k, "ok": True, "result": result,
            "command": f".venv/bin/python bench/x.py --json  # {case} {k}", "seconds": 30.0}


def failed_run(case: str, error: str) -> dict:
    return {"case": case, "group": case.split(":")[0], "run": 1, "ok": False, "error": error, "command": None}


def canned_doc(runs: list[dict]) -> dict:
    return {"generated_utc": "2026-12-01 07:00 UTC", "quick": False, "runs_per_case": 3, "duration_s": 600,
            "machine": {"cpu": "Test CPU 3000", "cores": 2, "ram": "8.0 GiB", "python": "3.11.7", "os": "Linux"},
            "git_commit": "abc123", "notes": {}, "runs": runs}


def table_row(md: str, first_cell: str, section: str) -> str:
    """The first table row starting with ``first_cell`` after the heading containing ``section``."""
    after = md.split(section, 1)[1]
    return next(line for line in after.splitlines() if line.startswith(f"| {first_cell} |"))


def test_a_figure_is_the_median_of_the_runs_with_their_min_max():
    runs = [ok_run("throughput:transfers", tp_result(t, r, p, 900.0), k)
            for k, (t, r, p) in enumerate([(2000.0, 0.41, 300.0), (2600.0, 0.56, 250.0), (2300.0, 0.48, 280.0)], 1)]
    md = render(canned_doc(runs))
    row = table_row(md, "transfers", "## (a)")
    assert "2,300 (2,000–2,600)" in row and "0.48 (0.41–0.56)" in row and "280 (250–300)" in row
    assert row.endswith("| 3/3 |")


def test_a_goal_is_met_only_when_the_run_at_the_median_met_it():
    runs = [ok_run("throughput:transfers", tp_result(2000.0, r, 300.0), k) for k, r in enumerate([0.4, 0.5, 0.6], 1)]
    goals = summarise_goals(runs)
    assert goals["ratio"]["met"] is False and goals["ratio"]["met_runs"] == 1
    assert goals["ratio"]["summary"]["median"] == 0.5
    md = render(canned_doc(runs))
    assert "| transfers: ratio | >= 0.55 | 0.5 (0.4–0.6) | NO (1/3 runs) |" in md
    assert "| transfers: lost | <= 0 | 0 | yes (3/3 runs) |" in md
    summary = md.split("## Goals", 1)[1].split("## (a)")[0]  # every goal once more at the top, under a header
    assert "| goal | target | median (min–max) | met at the median |" in summary
    assert "| throughput transfers: ratio | >= 0.55 | 0.5 (0.4–0.6) | NO (1/3 runs) |" in summary


def test_a_goal_met_at_the_median_shows_yes():
    runs = [ok_run("throughput:transfers", tp_result(2000.0, r, 300.0), k) for k, r in enumerate([0.5, 0.6, 0.7], 1)]
    assert "| transfers: ratio | >= 0.55 | 0.6 (0.5–0.7) | yes (2/3 runs) |" in render(canned_doc(runs))


def test_a_missing_bench_is_shown_as_not_measured_with_the_reason():
    md = render(canned_doc([failed_run("catchup", "bench/catchup.py does not exist"),
                            failed_run("throughput:coin", "exit 1: bench: node branch-1 exited")]))
    assert "not measured: bench/catchup.py does not exist" in md.split("## (d)", 1)[1].split("## (e)")[0]
    assert "not measured: exit 1: bench: node branch-1 exited" in table_row(md, "coin", "## (a)")
    assert "not measured: not run" in md.split("## (e)", 1)[1].split("## (f)")[0]


def test_curves_are_tabled_per_point_with_medians():
    receipts = [{"bench": "receipt", "curve": [{"txs": 1000, "receipt_bytes": b, "compact_bytes": 500,
                                                "verify_ms_p50": 0.2, "verify_ms_p99": 0.4},
                                               {"txs": 1_000_000, "receipt_bytes": b + 400, "compact_bytes": 900,
                                                "verify_ms_p50": 0.5, "verify_ms_p99": 0.9}]} for b in (800, 820, 840)]
    md = render(canned_doc([ok_run("receipt", r, k) for k, r in enumerate(receipts, 1)]))
    section = md.split("## (g)", 1)[1]
    assert "| 1,000 | 820 (800–840) | 500 | 0.2 | 0.4 |" in section
    assert "| 1,000,000 | 1,220 (1,200–1,240) | 900 | 0.5 | 0.9 |" in section


def test_the_scaling_table_sets_4_7_and_10_validators_side_by_side():
    runs = [ok_run("throughput:transfers", tp_result(2400.0, 0.5, 300.0)),
            ok_run("scaling:7", tp_result(1300.0, 0.47, 500.0, validators=7)),
            ok_run("scaling:10", tp_result(900.0, 0.46, 700.0, validators=10))]
    md = render(canned_doc(runs))
    section = md.split("## (c)", 1)[1].split("## (d)")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "tx/s" not in line]
    assert [line.split("|")[1].strip() for line in rows] == ["4", "7", "10"]
    assert "4→10: × 0.40" in section and "measured tx/s × 0.38" in section


def test_the_layout_section_says_not_measured_without_the_flag():
    doc = canned_doc([])
    doc["notes"]["layout:pool"] = "bench/throughput.py has no --verify-workers flag"
    assert "not measured: bench/throughput.py has no --verify-workers flag" in render(doc).split("## (i)", 1)[1]


def test_the_machine_and_every_command_are_in_the_document():
    md = render(canned_doc([ok_run("throughput:transfers", tp_result(2000.0, 0.5, 80.0))]))
    assert "| CPU | Test CPU 3000 |" in md and "| git commit | abc123 |" in md
    assert "- `.venv/bin/python bench/x.py --json  # throughput:transfers 1` — 30 s, ok" in md


def test_output_after_the_json_object_is_tolerated_and_a_non_json_output_is_not_a_result():
    assert run_all.parse_output('{"bench": "x", "a": 1}') == {"bench": "x", "a": 1}
    assert run_all.parse_output('{\n  "a": {"b": 2}\n}\nroot of 10 leaves in 1 s') == {"a": {"b": 2}}
    assert run_all.parse_output("memory : built 10 keys\nproof : 5/s") is None
    assert run_all.parse_output("[1, 2]") is None


def fake_bench(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_the_runner_records_a_crash_a_non_json_output_and_a_timeout_without_raising(tmp_path):
    crash = fake_bench(tmp_path, "crash.py", "import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n")
    text = fake_bench(tmp_path, "text.py", "print('42 tx/s')\n")
    slow = fake_bench(tmp_path, "slow.py", "import time\ntime.sleep(30)\n")
    good = fake_bench(tmp_path, "good.py", "import json\nprint(json.dumps({'bench': 'good', 'x': 1}))\n")
    assert run_all.run_one([sys.executable, str(crash)], 30)["error"] == "exit 3: boom"
    assert run_all.run_one([sys.executable, str(text)], 30)["error"].startswith("the output is not a JSON object")
    timed = run_all.run_one([sys.executable, str(slow)], 0.5)
    assert timed["ok"] is False and timed["timed_out"] and "timed out" in timed["error"]
    assert run_all.run_one([sys.executable, str(good)], 30)["result"] == {"bench": "good", "x": 1}


def test_the_plan_runs_each_case_n_times_skips_missing_scripts_and_feeds_half_peak_to_latency():
    calls: list[list[str]] = []

    def fake_run(argv: list[str], timeout_s: float) -> dict:
        calls.append(argv)
        rate = float(argv[argv.index("--rate") + 1]) if "--rate" in argv else 0.0
        return {"ok": True, "result": tp_result(1000.0 + 100 * len(calls), 0.5, 50.0, rate=rate), "seconds": 1.0}

    plan = [run_all.Case("throughput:coin", "throughput", "throughput.py", ["--mix", "coin"], 1, 10),
            run_all.Case("latency:coin", "latency", "throughput.py", ["--mix", "coin"], 1, 10,
                         extra=run_all.half_peak_rate("coin")),
            run_all.Case("latency:service", "latency", "throughput.py", ["--mix", "service"], 1, 10,
                         extra=run_all.half_peak_rate("service"), skip_reason="no closed-loop service tx/s"),
            run_all.Case("catchup", "catchup", "no_such_bench.py", [], 1, 10)]
    records = run_all.run_plan(plan, 3, 3600, run=fake_run, help_of=lambda s: "--json --quick",
                               log=lambda s: None)
    assert [r["case"] for r in records if r["ok"]] == ["throughput:coin"] * 3 + ["latency:coin"] * 3
    # the closed-loop runs measured 1100, 1200, 1300 tx/s: the open loop is offered half the median
    assert calls[3][-2:] == ["--rate", "600"] and all("--json" in c for c in calls)
    assert [r["error"] for r in records if not r["ok"]] == ["no closed-loop service tx/s",
                                                            "bench/no_such_bench.py does not exist"]


def test_a_run_that_would_pass_the_budget_is_skipped_and_recorded():
    plan = [run_all.Case("throughput:coin", "throughput", "throughput.py", [], est_s=120, timeout_s=10)]
    records = run_all.run_plan(plan, 3, 60, run=lambda a, t: pytest.fail("ran"), help_of=lambda s: "--json",
                               log=lambda s: None)
    assert len(records) == 1 and "budget" in records[0]["error"]


def test_quick_drops_flags_a_script_lacks_and_uses_its_small_sizes():
    argv = run_all.command_of("merkle.py", ["--quick"], ["--json"], "usage: --leaves N --appends N",
                              ["--leaves", "1000", "--seeds", "3"])
    assert argv[1:] == ["bench/merkle.py", "--leaves", "1000"]
    assert run_all.command_of("catchup.py", ["--quick"], ["--json"], "--json --quick")[1:] == \
        ["bench/catchup.py", "--json", "--quick"]


@pytest.mark.slow
def test_make_bench_quick_on_throughput_writes_a_results_document(tmp_path):
    out = subprocess.run([sys.executable, "bench/run_all.py", "--quick", "--only", "throughput", "--runs", "1",
                          "--out", str(tmp_path)], cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert {r["case"] for r in doc["runs"]} == {"throughput:transfers", "throughput:coin", "throughput:service"}
    md = (tmp_path / "RESULTS.md").read_text()
    assert "## (a) Throughput" in md and "not measured" in md.split("## (d)", 1)[1]


def test_a_case_capped_at_one_run_runs_once_while_its_round_robin_neighbours_run_every_pass():
    once = run_all.Case("catchup", "catchup", "catchup.py", [], 1, 1, round_robin=True, max_runs=1)
    other = run_all.Case("receipt", "receipt", "receipt.py", [], 1, 1, round_robin=True)
    solo = run_all.Case("throughput:coin", "throughput", "throughput.py", [], 1, 1, max_runs=2)
    order = [(c.case, k) for c, k in run_all.schedule([solo, once, other], 3)]
    assert order == [("throughput:coin", 1), ("throughput:coin", 2), ("catchup", 1), ("receipt", 1),
                     ("receipt", 2), ("receipt", 3)]


def test_render_only_writes_the_document_again_from_the_recorded_runs_and_runs_nothing(tmp_path):
    doc = {"generated_utc": "2026-12-01 08:05 UTC", "runs_per_case": 3, "machine": {}, "runs": [], "notes": {}}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    assert run_all.main(["--render-only", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.startswith("# carecoin benchmark results") and "2026-12-01 08:05 UTC" in text
