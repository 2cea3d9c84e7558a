"""bench/RESULTS.md from the raw runs of ``bench/run_all.py``: medians, min–max, goals, one line per curve.

Theory of operation. Pure functions, no IO: a *run* is one bench process as ``run_all`` recorded it (a dict:
``case`` (the row it belongs to), ``group``, ``run``, ``command`` (None when it was skipped), ``seconds``,
``ok``, ``result`` (the bench's JSON object) or ``error`` (why there is none)). A *case* is the same command
repeated; its figure in a table is the median of its good runs, with the min–max of those runs after it. A
goal's median is the median of the runs' ``goal[name]["value"]``; it is met when the run(s) at the median met
it (so no comparison is re-derived here). A case without a good run is shown as "not measured: <why>".
Nothing here raises on a strange bench output: a missing key is a "–" cell.
"""

from __future__ import annotations

import statistics
from typing import Any, Iterable

DASH = "–"


def get_path(doc: Any, path: str) -> Any:
    """``doc["a"]["b"]`` for ``"a.b"``; None when any step is missing."""
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def good_results(runs: Iterable[dict]) -> list[dict]:
    """The JSON objects of the runs that measured something."""
    return [r["result"] for r in runs if r.get("ok") and isinstance(r.get("result"), dict)]


def summarise(values: list[Any]) -> dict | None:
    """{median, min, max, n} of the numeric values; None when there are none."""
    nums = [v for v in values if is_number(v)]
    if not nums:
        return None
    return {"median": statistics.median(nums), "min": min(nums), "max": max(nums), "n": len(nums)}


def format_number(value: Any) -> str:
    """A figure as a reader wants it: thousands separated, 3 significant decimals at most."""
    if not is_number(value):
        return DASH if value is None else str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 100:
        return f"{int(value):,}"
    mag = abs(value)
    if mag >= 100:
        return f"{value:,.0f}"
    if mag >= 10:
        return f"{value:.1f}"
    if mag >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_summary(summary: dict | None) -> str:
    """"median (min–max)", or the median alone when the runs agree or there is one run."""
    if summary is None:
        return DASH
    med = format_number(summary["median"])
    lo, hi = format_number(summary["min"]), format_number(summary["max"])
    return med if summary["n"] == 1 or lo == hi else f"{med} ({lo}–{hi})"


def figure(runs: list[dict], path: str) -> str:
    """One table cell: the summary of ``path`` over the good runs."""
    return format_summary(summarise([get_path(r, path) for r in good_results(runs)]))


def why_not_measured(runs: list[dict]) -> str:
    """The reason a case has no good run (the first run's error), or "" when it has one."""
    if good_results(runs):
        return ""
    if not runs:
        return "not run"
    return next((r.get("error") or "no result" for r in runs), "no result")


def summarise_goals(runs: list[dict]) -> dict[str, dict]:
    """Per goal name: target, op, summary of the values, met (at the median), met_runs / runs."""
    by_name: dict[str, list[dict]] = {}
    for result in good_results(runs):
        goals = result.get("goal")
        if not isinstance(goals, dict):
            continue
        for name, entry in goals.items():
            if isinstance(entry, dict):
                by_name.setdefault(name, []).append(entry)
    out = {}
    for name, entries in by_name.items():
        with_value = sorted((e for e in entries if is_number(e.get("value"))), key=lambda e: e["value"])
        if with_value:
            k = len(with_value)
            middle = with_value[(k - 1) // 2: k // 2 + 1]  # one run (odd count) or the two middle ones
            met = all(bool(e.get("met")) for e in middle)
        elif all(e.get("met") is None for e in entries):
            met = None  # the size the goal names was not reached in these runs
        else:
            met = sum(bool(e.get("met")) for e in entries) * 2 > len(entries)
        if "target" not in entries[0]:
            continue  # a figure beside the goals, not a goal
        out[name] = {"target": entries[0].get("target"), "op": entries[0].get("op", ""),
                     "summary": summarise([e.get("value") for e in entries]), "met": met,
                     "met_runs": sum(bool(e.get("met")) for e in entries), "runs": len(entries)}
    return out


def format_target(goal: dict) -> str:
    target = goal["target"]
    shown = format_number(target) if is_number(target) else str(target)
    return f"{goal['op']} {shown}".strip()


def goal_rows(label: str, runs: list[dict]) -> list[list[str]]:
    """Rows of a goals table (goal, target, median (min–max), met) for one case."""
    rows = []
    for name, g in summarise_goals(runs).items():
        rows.append([f"{label}: {name}" if label else name, format_target(g), format_summary(g["summary"]),
                     "not measured at that size" if g["met"] is None
                     else f"{'yes' if g['met'] else 'NO'} ({g['met_runs']}/{g['runs']} runs)"])
    return rows


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table (pipes inside cells escaped)."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
    return [line(header), "|" + "|".join("---" for _ in header) + "|", *(line(r) for r in rows)]


def curve_rows(runs: list[dict], key: str, x: str, columns: list[str]) -> list[list[str]]:
    """A curve (``result[key]`` = [{x, ...}]) as rows: per x value, the median (min–max) of each column."""
    points: dict[Any, dict[str, list]] = {}
    for result in good_results(runs):
        for point in result.get(key) or []:
            if isinstance(point, dict) and x in point:
                row = points.setdefault(point[x], {c: [] for c in columns})
                for c in columns:
                    row[c].append(point.get(c))
    def order(value: Any) -> tuple:
        return (0, value) if is_number(value) else (1, str(value))
    return [[format_number(xv)] + [format_summary(summarise(vals[c])) for c in columns]
            for xv, vals in sorted(points.items(), key=lambda kv: order(kv[0]))]


def numeric_leaves(doc: Any, prefix: str = "", limit: int = 6) -> list[str]:
    """Paths of the first ``limit`` numeric figures of a bench's object (params, goal and bench skipped)."""
    out: list[str] = []

    def walk(node: Any, path: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(node, dict):
            for k, v in node.items():
                if not path and k in ("params", "goal", "bench"):
                    continue
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node[:4]):
                walk(v, f"{path}.{i}")
        elif is_number(node):
            out.append(path)

    walk(doc, prefix)
    return out


def get_any(doc: Any, path: str) -> Any:
    """``get_path`` that also steps into lists by index (``results.0.n``)."""
    for part in path.split("."):
        if isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        elif isinstance(doc, dict) and part in doc:
            doc = doc[part]
        else:
            return None
    return doc


def micro_rows(name: str, runs: list[dict], figures: list[str] | None = None) -> list[list[str]]:
    """Rows (bench, figure, median (min–max)) of one micro bench: its named figures, else its first few."""
    results = good_results(runs)
    if not results:
        return [[name, "not measured", why_not_measured(runs)]]
    paths = [p for p in (figures or []) if get_any(results[0], p) is not None] or numeric_leaves(results[0])
    return [[name, p, format_summary(summarise([get_any(r, p) for r in results]))] for p in paths]


# ---- the document ------------------------------------------------------------------------------------------

MIXES = ("transfers", "coin", "service")
THROUGHPUT_COLUMNS = [("tx/s", "tx_per_s"), ("ratio to bound", "ratio"), ("bound tx/s", "bound_tx_per_s"),
                      ("lost", "lost"), ("p50 ms", "latency_ms.p50"), ("p99 ms", "latency_ms.p99")]
MICRO = ("merkle", "smt", "consensus", "admission", "execute")
MICRO_FIGURES = {  # the figures shown per micro bench when its output has them (else its first few numbers)
    "merkle": ["root.leaves", "root.root_s", "proofs.proof_bytes_max", "proofs.proof_verify_us_median",
               "appends.appends_per_s", "smt.keys_per_s"],
    "smt": ["keys_per_s", "batches_per_s", "proof_bytes_mean", "verify_per_s"],
    "consensus": ["results.0.n", "results.0.heights_per_cpu_s", "results.0.messages_per_height",
                  "results.1.n", "results.1.heights_per_cpu_s", "results.1.messages_per_height"],
    "admission": ["decode_us_per_tx", "verify_us_per_tx", "rules_us_per_tx", "total_us_per_tx"],
    "execute": ["txs", "build_us_per_tx", "validate_us_per_tx", "validate_tx_per_s"],
}


def runs_of(doc: dict, case: str) -> list[dict]:
    return [r for r in doc.get("runs", []) if r.get("case") == case]


def measured_count(runs: list[dict]) -> str:
    """"good/attempted" runs, plus how many were skipped (budget, missing script) when any."""
    done = [r for r in runs if r.get("command")]
    skipped = len(runs) - len(done)
    return f"{len(good_results(runs))}/{len(done)}" + (f" ({skipped} skipped)" if skipped and done else "")


def case_row(label: str, runs: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    """One table row: the label, each column's median (min–max), the good/attempted runs; or not measured."""
    why = why_not_measured(runs)
    if why:
        return [label, f"not measured: {why}"] + [""] * (len(columns) - 1) + [measured_count(runs)]
    return [label] + [figure(runs, path) for _, path in columns] + [measured_count(runs)]


def median_of(runs: list[dict], path: str) -> float | None:
    s = summarise([get_path(r, path) for r in good_results(runs)])
    return s["median"] if s else None


def section_throughput(doc: dict) -> list[str]:
    out = ["## (a) Throughput, closed loop, 4 validators", "",
           "Closed loop: the load process keeps up to `--window` txs in flight on every node's API; tx/s is "
           "committed txs over first submit to last commit; the bound is verify_per_s × cores / validators (the "
           "rate at which the machine's cores, shared by every node, could merely check one signature per tx), "
           "and ratio = tx/s ÷ bound.", ""]
    header = ["mix"] + [c for c, _ in THROUGHPUT_COLUMNS] + ["runs ok"]
    out += table(header, [case_row(m, runs_of(doc, f"throughput:{m}"), THROUGHPUT_COLUMNS) for m in MIXES])
    return out + goals_block([(m, runs_of(doc, f"throughput:{m}")) for m in MIXES])


def section_latency(doc: dict) -> list[str]:
    cols = [("offered tx/s", "rate"), ("tx/s", "tx_per_s"), ("p50 ms", "latency_ms.p50"),
            ("p90 ms", "latency_ms.p90"), ("p99 ms", "latency_ms.p99"), ("lost", "lost")]
    out = ["## (b) Latency at half of peak", "",
           "Open loop at half the median closed-loop tx/s of the same mix measured just before (section a): "
           "submit→committed latency when the network is not saturated (goals p50 ≤ 100 ms, p99 ≤ 500 ms).", ""]
    out += table(["mix"] + [c for c, _ in cols] + ["runs ok"],
                 [case_row(m, runs_of(doc, f"latency:{m}"), cols) for m in MIXES])
    return out + goals_block([(m, runs_of(doc, f"latency:{m}")) for m in MIXES])


def section_scaling(doc: dict) -> list[str]:
    cols = [("tx/s", "tx_per_s"), ("ratio to bound", "ratio"), ("bound tx/s", "bound_tx_per_s"),
            ("p50 ms", "latency_ms.p50"), ("p99 ms", "latency_ms.p99"), ("lost", "lost")]
    cases = [(4, runs_of(doc, "throughput:transfers"))] + [
        (int(c.split(":")[1]), runs_of(doc, c)) for c in sorted({r["case"] for r in doc.get("runs", [])
                                                                if r.get("case", "").startswith("scaling:")},
                                                               key=lambda c: int(c.split(":")[1]))]
    out = ["## (c) Scaling: 4, 7 and 10 validators (transfers, closed loop)", "", scaling_line(cases), ""]
    return out + table(["validators"] + [c for c, _ in cols] + ["runs ok"],
                       [case_row(str(n), runs, cols) for n, runs in cases])


def scaling_line(cases: list[tuple[int, list[dict]]]) -> str:
    """The curve's one line: every validator checks and executes every tx on the same cores, so the bound
    falls as 1/validators; the measured fall is set beside it."""
    base = "Every validator verifies and executes every tx on the same cores, so the bound falls as 1/validators"
    first = next(((n, median_of(r, "tx_per_s")) for n, r in cases if median_of(r, "tx_per_s")), None)
    last = next(((n, median_of(r, "tx_per_s")) for n, r in reversed(cases) if median_of(r, "tx_per_s")), None)
    if not first or not last or first[0] == last[0]:
        return base + "; consensus messages grow with the square of the validators."
    return (base + f" ({first[0]}→{last[0]}: × {first[0] / last[0]:.2f}); measured tx/s × "
            f"{last[1] / first[1]:.2f} (consensus messages per block grow with the square of the validators).")


def section_single(doc: dict, case: str, title: str, line: str, figures: list[tuple[str, str]],
                   curve: tuple[str, str, list[str]] | None = None, extra: list[str] | None = None) -> list[str]:
    runs = runs_of(doc, case)
    out = [title, "", line, ""]
    why = why_not_measured(runs)
    if why:
        return out + [f"not measured: {why}"]
    out += table(["figure", "median (min–max)"], [[label, figure(runs, path)] for label, path in figures])
    if curve:
        key, x, columns = curve
        rows = curve_rows(runs, key, x, columns)
        out += ["", *table([x] + columns, rows)] if rows else ["", f"(no `{key}` curve in the output)"]
    out += extra or []
    out += goals_block([("", runs)])
    return out + ["", f"runs ok: {measured_count(runs)}"]


def prefix_rows(runs: list[dict]) -> list[str]:
    """Storage bytes per key prefix (median over runs)."""
    prefixes: dict[str, list] = {}
    for result in good_results(runs):
        for p, v in (result.get("by_prefix") or {}).items():
            prefixes.setdefault(str(p), []).append(v)
    if not prefixes:
        return []
    return ["", *table(["prefix", "bytes"], [[p, format_summary(summarise(v))] for p, v in sorted(prefixes.items())])]


def section_micro(doc: dict) -> list[str]:
    rows = []
    for name in MICRO:
        rows += micro_rows(name, runs_of(doc, f"micro:{name}"), MICRO_FIGURES.get(name))
    return ["## (h) Micro benches", "",
            "Single-process costs under the node: Merkle roots and proofs, the sparse Merkle tree, the consensus "
            "core, admission (decode, verify, rules per tx), block execution. Each bench's own figures.", "",
            *table(["bench", "figure", "median (min–max)"], rows)]


def section_layouts(doc: dict) -> list[str]:
    out = ["## (i) Signature-check layouts (transfers, 4 validators)", "",
           "In-loop: each node checks signatures on its event loop; pool: a node hands them to `--verify-workers` "
           "processes (a real branch machine has cores to spare; here every node shares the same cores).", ""]
    runs = runs_of(doc, "layout:pool")
    if not runs:
        return out + ["not measured: " + doc.get("notes", {}).get("layout:pool", "not run")]
    cols = [("verify workers", "verify_workers"), ("tx/s", "tx_per_s"), ("ratio to bound", "ratio"),
            ("p50 ms", "latency_ms.p50"), ("p99 ms", "latency_ms.p99"), ("lost", "lost")]
    return out + table(["layout"] + [c for c, _ in cols] + ["runs ok"],
                       [case_row("in-loop", runs_of(doc, "throughput:transfers"), cols),
                        case_row("pool", runs, cols)])


def goals_block(cases: list[tuple[str, list[dict]]]) -> list[str]:
    rows = [row for label, runs in cases for row in goal_rows(label, runs)]
    return ["", *table(["goal", "target", "median (min–max)", "met at the median"], rows)] if rows else []


def section_machine(doc: dict) -> list[str]:
    m = doc.get("machine", {})
    rows = [["CPU", m.get("cpu", DASH)], ["cores", str(m.get("cores", DASH))], ["RAM", m.get("ram", DASH)],
            ["Python", m.get("python", DASH)], ["OS", m.get("os", DASH)], ["git commit", doc.get("git_commit", DASH)],
            ["load average at start / end", f"{m.get('loadavg_start', DASH)} / {m.get('loadavg_end', DASH)}"]]
    return ["## Machine", "", *table(["", ""], rows)]


def section_commands(doc: dict) -> list[str]:
    out = ["## Commands", "", "Every run, in the order it ran (from the repository root):", ""]
    for r in doc.get("runs", []):
        if not r.get("command"):
            continue
        status = "ok" if r.get("ok") else f"not measured: {r.get('error', '?')}"
        out.append(f"- `{r['command']}` — {r.get('seconds', 0):.0f} s, {status}")
    return out


def render(doc: dict) -> str:
    """The whole of bench/RESULTS.md."""
    lines = ["# carecoin benchmark results", "",
             f"Generated by `{doc.get('invocation', 'make bench')}` (bench/run_all.py) on "
             f"{doc.get('generated_utc', DASH)} in {doc.get('duration_s', 0) / 60:.1f} min: "
             f"{doc.get('runs_per_case', '?')} run(s) per case{' (QUICK sizes)' if doc.get('quick') else ''}; "
             f"every figure is the median of the runs with their min–max in brackets. Raw runs: "
             f"bench/results.json. Generated, not edited by hand.", "",
             *section_machine(doc), "", "## Goals", "",
             *(goals_block([(f"throughput {m}", runs_of(doc, f"throughput:{m}")) for m in MIXES]
                           + [(f"half-peak latency {m}", runs_of(doc, f"latency:{m}")) for m in MIXES]
                           + [(c, runs_of(doc, c)) for c in ("catchup", "storage", "state_size", "receipt")])[1:]
               or ["no goal measured"]), "",
             *section_throughput(doc), "", *section_latency(doc), "", *section_scaling(doc), "",
             *section_single(doc, "catchup", "## (d) Catch-up", CATCHUP_LINE,
                             [("txs behind", "behind_txs"), ("blocks behind", "behind_blocks"),
                              ("catch-up s", "catchup_s"), ("catch-up tx/s", "catchup_tx_per_s"),
                              ("live tx/s", "live_tx_per_s"), ("catch-up ÷ live", "ratio")],
                             ("curve", "behind_txs", ["catchup_tx_per_s"])), "",
             *section_single(doc, "storage", "## (e) Storage", STORAGE_LINE,
                             [("txs", "txs"), ("bytes/tx after compaction", "bytes_per_tx"),
                              ("bytes/tx before compaction", "bytes_per_tx_before_compaction")],
                             extra=prefix_rows(runs_of(doc, "storage"))), "",
             *section_single(doc, "state_size", "## (f) State size", STATE_LINE,
                             [("accounts (max)", "accounts_max"), ("RSS MB at max", "rss_mb_at_max"),
                              ("own memory MB at max", "anon_mb_at_max"),
                              ("mapped table files MB at max", "file_mb_at_max")],
                             ("curve", "accounts", ["rss_mb", "anon_mb", "file_mb", "hwm_mb", "data_mb", "start_s"])),
             "",
             *section_single(doc, "receipt", "## (g) Receipts", RECEIPT_LINE, [],
                             ("curve", "txs", ["receipt_bytes", "compact_bytes", "verify_ms_p50", "verify_ms_p99"])),
             "", *section_micro(doc), "", *section_layouts(doc), "", *section_commands(doc), ""]
    return "\n".join(lines)


CATCHUP_LINE = ("A node that is behind replays committed blocks (no consensus rounds, no mempool), so its rate should "
                "stay flat as the chain grows; a falling curve means per-block cost grows with the state.")
STORAGE_LINE = ("Bytes on disk per committed tx of the mix after LevelDB compaction (blocks, receipts' indexes and "
                "state), by key prefix; before compaction the log and overwritten versions still count.")
STATE_LINE = ("Node memory and start time against accounts in state, after a load of mints, reads and proofs: every "
              "cache is capped, so the node's own memory (anon_mb) levels off as accounts grow; VmRSS (rss_mb) also "
              "counts LevelDB's table files mapped into the process (file_mb, reclaimable page cache), which follow "
              "the data dir (data_mb); start does not load the state, so start time stays flat.")
RECEIPT_LINE = ("A receipt carries a Merkle path of about log2(n) hashes for the n txs of its block's tree, so its size "
                "grows ~34 B per doubling and verify time stays flat (one signature check per seal dominates); blocks "
                "hold at most 10,000 txs, so points above 10^4 are trees no real block builds, and a chain's length "
                "does not enter a receipt at all.")
