"""Benchmark: committed tx/s and submit→commit latency of a real N-node network on 127.0.0.1 (default 4).

Theory of operation. Measures this machine's Ed25519 verify rate first (one core, pynacl, ``--verify-s``
seconds), then initialises a network of ``--nodes`` validators in a temp dir (free loopback ports below the
ephemeral range, short timeouts; each branch gets ``--staff-per-branch`` staff members in genesis), starts
one process per node, and runs ``bench/load_worker.py`` as a SEPARATE process: it funds ``--senders``
accounts, pre-signs transfers and submits them for ``--duration`` seconds through every node's batch API
(``POST /v1/txs``, keep-alive), then waits until everything submitted is committed (bounded by
``--drain-s``). Prints ONE JSON object, then a readable line, and stops the nodes. Never fails for being
slow; it exits non-zero only when the network cannot be started or the load process breaks.

    ratio = tx_per_s / (verify_per_s * cores / validators)

i.e. committed tx/s against the rate at which the machine's cores, shared by the nodes, could merely verify
one signature per tx. ``lost`` = submitted - committed - (still pending or evicted, with a reason).

Peer links are mutual TLS like every network ``network init`` makes; ``--no-tls`` runs them as plain ws://
(to measure what TLS costs). The client API stays plain HTTP either way.

``--mix`` picks the workload: ``transfers`` (1 coin between funded senders), or the ``coin`` / ``service``
customer stories of ``bench/mix.py`` (shares per kind in its docstring; the JSON prints them as ``shares``
with ``per_kind`` submitted/committed). ``failed_by_rule`` counts committed txs whose outcome is a rule's
failure (read back after the run, at most 5,000): it should be 0; otherwise the reasons go to stderr.

``--json`` prints only the one JSON object of the bench output contract (``bench``, ``params``, ``goal``
and the figures: tx_per_s, latency_ms, bound_tx_per_s, ratio, lost, validators, mix, rate, verify_per_s,
cores, verify_workers). ``goal``: closed loop, the ratio to the bound (transfers >= 0.55, a mix >= 0.45) and
zero lost; with ``--rate``, p50 <= 100 ms and p99 <= 500 ms at that offered rate (meant as half of the peak)
and zero lost. ``--quick``: a few seconds of load (the smoke test, ``make bench QUICK=1``).

Usage: .venv/bin/python bench/throughput.py [--seconds 20] [--mix transfers|coin|service] [--nodes 4] [--json]
           [--quick] [--senders 200] [--rate 0 | --concurrency 8] [--no-tls]
       CARECOIN_PROFILE=DIR makes every node write a cProfile dump to DIR/<node>.prof on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.ports import free_port_base  # noqa: E402
from cli.network import init_network  # noqa: E402
from bench.mix_load import add_staff_keys  # noqa: E402
from ledger.keys import KeyPair, verify  # noqa: E402
from node.progress import progress_enabled  # noqa: E402

NODES = 4  # default validators
STAFF_PER_BRANCH = 8  # staff members per branch in the mixes (one key's nonces serialise its stories)
GOAL_RATIO = {"transfers": 0.55, "coin": 0.45, "service": 0.45}
GOAL_P50_MS, GOAL_P99_MS = 100.0, 500.0
QUICK = {"duration": 5.0, "verify_s": 0.3, "drain_s": 20.0, "senders": 60}
PRESIGN_RATE_GUESS = 2000  # closed-loop runs pre-sign duration x this (x1.2); "presign_exhausted" says if short
BENCH_CONSENSUS = {"base_timeout_ms": 1000, "max_timeout_ms": 4000, "block_interval_ms": 50,
                   "max_future_ms": 2000}


def measure_verify_per_s(seconds: float) -> float:
    """Ed25519 verifications per second on one core (pynacl, through ``ledger.keys.verify``)."""
    key = KeyPair.generate()
    msgs = [os.urandom(32) for _ in range(64)]
    sigs = [key.sign(m) for m in msgs]
    pk = key.public_key
    count = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        for m, s in zip(msgs, sigs):
            verify(pk, m, s)
        count += len(msgs)
    return count / (time.perf_counter() - t0)


def http_json(url: str, timeout_s: float = 2.0) -> dict | None:
    """GET a JSON document; None when the node does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


class Nodes:
    """``count`` node processes from one ``network init`` directory; always stopped by ``close``."""

    def __init__(self, workdir: Path, log_level: str = "warning", base_timeout_ms: int = 1000,
                 peer_tls: bool = True, count: int = NODES, staff_per_branch: int = 1,
                 verify_workers: int = 0, storage: dict | None = None) -> None:
        self.workdir, self.count = workdir, count
        base = free_port_base(2 * count)
        self.summary = init_network(workdir / "net", count, base_port=base, chain_id="carecoin-bench",
                                    peer_tls=peer_tls)
        add_staff_keys(self.summary.dir, staff_per_branch)
        self.names = [b.name for b in self.summary.branches]
        self.apis = [f"http://{b.api.host}:{b.api.port}" for b in self.summary.branches]
        for name in self.names:
            path = self.summary.dir / name / "node.toml"
            doc = tomllib.loads(path.read_text())
            doc["consensus"].update(BENCH_CONSENSUS)
            doc["consensus"]["base_timeout_ms"] = base_timeout_ms
            doc["consensus"]["max_timeout_ms"] = max(4 * base_timeout_ms, BENCH_CONSENSUS["max_timeout_ms"])
            doc.setdefault("log", {})["level"] = log_level
            doc["node"]["verify_workers"] = verify_workers  # signature-check processes per node (0 = in the loop)
            if storage:  # [storage]: state pruning (default: the node's, 256 heights' trees) or archive
                doc["storage"] = dict(storage)
            path.write_text(tomli_w.dumps(doc))
        self.procs: list[subprocess.Popen] = []

    def start(self, timeout_s: float = 0.0) -> None:
        """Start every node and wait until each answers and sees all its peers (default bound: 30 s for 4
        nodes, longer for more: they start one after another on shared cores)."""
        timeout_s = timeout_s or 30.0 + 5.0 * max(0, self.count - NODES)
        for name in self.names:
            log = open(self.workdir / f"{name}.log", "wb")
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "cli.node", "start", "--config", str(self.summary.dir / name / "node.toml")],
                cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "CARECOIN_NODE_NAME": name}))
            log.close()
        deadline = time.monotonic() + timeout_s
        for i, api in enumerate(self.apis):
            while True:
                if self.procs[i].poll() is not None:
                    raise SystemExit(f"bench: node {self.names[i]} exited:\n{self.tail(i)}")
                doc = http_json(api + "/v1/status", 1.0)
                if doc is not None and doc.get("peers", 0) >= self.count - 1:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench: node {self.names[i]} not ready in {timeout_s} s:\n{self.tail(i)}")
                time.sleep(0.1)

    def tail(self, i: int, lines: int = 20) -> str:
        try:
            return "\n".join((self.workdir / f"{self.names[i]}.log").read_text(errors="replace")
                             .splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def get_cpu_seconds(self) -> list[float]:
        """User+system CPU seconds each node process has used so far (Linux /proc; 0.0 elsewhere)."""
        out = []
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        for p in self.procs:
            try:
                fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
                out.append(round((int(fields[11]) + int(fields[12])) / tick, 2))
            except (OSError, IndexError, ValueError):
                out.append(0.0)
        return out

    def close(self) -> list[int | None]:
        """SIGTERM every node, SIGKILL after 15 s; return the exit codes."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout=15))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait(timeout=10))
        return codes


def run_load(nodes: Nodes, args: argparse.Namespace) -> dict:
    """Run the load process and return its JSON result."""
    issuer = nodes.summary.dir / nodes.names[0] / "keys" / "issuer.key"
    max_txs = args.max_txs or int(args.duration * (args.rate or PRESIGN_RATE_GUESS) * 1.2) + 1000
    cmd = [sys.executable, "-m", "bench.load_worker", "--apis", ",".join(nodes.apis),
           "--chain-id", nodes.summary.chain_id, "--issuer-key", str(issuer),
           "--reader-key", str(nodes.summary.dir / "company" / "auditor.key"), "--senders", str(args.senders),
           "--duration", str(args.duration), "--rate", str(args.rate), "--concurrency", str(args.concurrency),
           "--batch", str(args.batch), "--window", str(args.window), "--max-txs", str(max_txs), "--drain-s", str(args.drain_s),
           "--mix", args.mix, "--net-dir", str(nodes.summary.dir)]
    if args.wave:
        cmd += ["--wave", str(args.wave)]
    budget = args.duration + args.drain_s + 180
    # at a terminal (not under CI) the load process's stderr is passed through: its rich progress bar shows
    passthrough = args.verbose or progress_enabled()
    out = subprocess.run(cmd, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=None if passthrough else
                         subprocess.PIPE, text=True, timeout=budget)
    if out.returncode != 0:
        raise SystemExit(f"bench: the load process failed ({out.returncode}):\n{(out.stderr or '')[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compute_report(load: dict, verify_per_s: float, cores: int, args: argparse.Namespace) -> dict:
    """The one JSON object the bench prints."""
    elapsed = load["elapsed_s"] or 1e-9
    tx_per_s = load["committed"] / elapsed if load["committed"] else 0.0
    explained = sum(v for k, v in load["fates"].items() if k == "pending" or k.startswith("evicted:")
                    or k == "committed")
    lost = load["submitted"] - load["committed"] - explained
    validators = getattr(args, "nodes", NODES)
    bound = verify_per_s * cores / validators
    ratio = tx_per_s / bound if bound else 0.0
    lat = load["latencies_ms"]
    return {
        "bench": "throughput", "params": compute_params(args), "mix": args.mix, "shares": load["shares"],
        "validators": validators, "nodes": validators, "rate": args.rate,
        "verify_workers": getattr(args, "verify_workers", 0) or 0,
        "duration_s": args.duration, "senders": args.senders if args.mix == "transfers" else None,
        "mode": f"open loop {args.rate:g} tx/s" if args.rate else
                f"closed loop, concurrency {args.concurrency}, window {args.window}",
        "batch": args.batch, "base_timeout_ms": args.base_timeout_ms, "peer_tls": args.tls,
        "tx_per_s": round(tx_per_s, 1), "submitted": load["submitted"], "committed": load["committed"],
        "lost": lost, "pending_or_evicted": load["fates"], "refused": load["refused"],
        "latency_ms": {"p50": load["latencies_ms"]["p50"], "p99": load["latencies_ms"]["p99"],
                       "p90": load["latencies_ms"]["p90"], "max": load["latencies_ms"]["max"]},
        "blocks": load["blocks"],
        "mean_txs_per_block": round(load["block_txs"] / load["blocks"], 1) if load["blocks"] else 0.0,
        "elapsed_s": load["elapsed_s"], "submit_window_s": load["submit_window_s"],
        "presign_exhausted": load["exhausted"],
        "verify_per_s": round(verify_per_s), "cores": cores, "bound_tx_per_s": round(bound, 1),
        "ratio": round(ratio, 3),
        "goal": compute_goal(args, round(ratio, 3), lost, lat),
        "failed_by_rule": sum(load["failed_by_rule"].values()), "failed_by_reason": load["failed_by_rule"],
        "outcomes_checked": load["outcomes_checked"], "per_kind": load["per_kind"],
    }


def compute_params(args: argparse.Namespace) -> dict:
    """The sizes and flags of this run (the contract's ``params``)."""
    return {"seconds": args.duration, "mix": args.mix, "nodes": getattr(args, "nodes", NODES), "rate": args.rate,
            "senders": args.senders, "concurrency": args.concurrency, "batch": args.batch, "window": args.window,
            "drain_s": args.drain_s, "verify_s": args.verify_s, "base_timeout_ms": args.base_timeout_ms,
            "peer_tls": args.tls, "staff_per_branch": getattr(args, "staff_per_branch", 1),
            "wave": getattr(args, "wave", 0), "quick": getattr(args, "quick", False)}


def compute_goal(args: argparse.Namespace, ratio: float, lost: int, lat: dict) -> dict:
    """The issue's goals this run measures: closed loop, the ratio to the bound; with ``--rate``, the latency
    percentiles at that offered rate; zero lost either way. Each: target, comparison, value, met."""
    goal = {"lost": {"target": 0, "op": "<=", "value": lost, "met": lost <= 0}}
    if args.rate:
        goal["latency_p50_ms"] = {"target": GOAL_P50_MS, "op": "<=", "value": lat["p50"],
                                  "met": lat["p50"] <= GOAL_P50_MS}
        goal["latency_p99_ms"] = {"target": GOAL_P99_MS, "op": "<=", "value": lat["p99"],
                                  "met": lat["p99"] <= GOAL_P99_MS}
    else:
        target = GOAL_RATIO[args.mix]
        goal["ratio"] = {"target": target, "op": ">=", "value": ratio, "met": ratio >= target}
    return goal


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", "--duration", dest="duration", type=float, default=20.0,
                   help="seconds of submission (default 20; --duration is the old name)")
    p.add_argument("--mix", choices=("transfers", "coin", "service"), default="transfers",
                   help="the workload: transfers, or coin / service customer stories (bench/mix.py)")
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    p.add_argument("--quick", action="store_true",
                   help=f"small sizes for a smoke run ({QUICK['duration']:g} s of load, {QUICK['senders']} senders)")
    p.add_argument("--nodes", type=int, default=NODES, help=f"validators (default {NODES}; 4, 7, 10 on loopback)")
    p.add_argument("--staff-per-branch", type=int, default=STAFF_PER_BRANCH,
                   help=f"staff members per branch serving the mixes' stories (default {STAFF_PER_BRANCH})")
    p.add_argument("--wave", type=int, default=0, help="stories interleaved at once in a mix (0: the worker's default)")
    p.add_argument("--senders", type=int, default=200, help="funded sender accounts (default 200)")
    p.add_argument("--rate", type=float, default=0.0, help="open-loop tx/s; 0 = closed loop (default)")
    p.add_argument("--concurrency", type=int, default=8, help="concurrent batch posters (default 8)")
    p.add_argument("--batch", type=int, default=100, help="txs per POST /v1/txs (default 100)")
    p.add_argument("--window", type=int, default=1500, help="max txs in flight, 0 = unbounded (default 1500)")
    p.add_argument("--max-txs", type=int, default=0, help="transfers to pre-sign (default from duration)")
    p.add_argument("--drain-s", type=float, default=30.0, help="bound on waiting for commits after the window")
    p.add_argument("--verify-workers", type=int, default=0,
                   help="[node] verify_workers of every node: signature-check processes (default 0 = in the loop)")
    p.add_argument("--verify-s", type=float, default=1.0, help="seconds of the verify-rate measurement")
    p.add_argument("--state-history", type=int, default=0,
                   help="[storage] state_history_blocks of every node (default 0: the node's default, 256)")
    p.add_argument("--archive", action="store_true", help="[storage] archive = true: every height's state tree kept")
    p.add_argument("--base-timeout-ms", type=int, default=1000,
                   help="round-0 timeout of the nodes (node default 1000); blocks are sized to fit it")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"),
                   help="the nodes' log level (logs are in the temp dir; see --keep)")
    p.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True,
                   help="mutual TLS on the peer links (default; --no-tls: plain ws:// links)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (node logs, data)")
    p.add_argument("--verbose", action="store_true", help="show the load process's progress")
    args = p.parse_args(argv)
    if args.nodes < 1:
        p.error(f"--nodes must be at least 1, got {args.nodes}")
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)
    return args


def storage_table(args: argparse.Namespace) -> dict | None:
    """The node.toml ``[storage]`` table of ``--archive``/``--state-history`` (None: the node's default)."""
    if getattr(args, "archive", False):
        return {"archive": True}
    history = getattr(args, "state_history", 0)
    return {"state_history_blocks": history} if history else None


def main(argv: list[str] | None = None) -> None:
    """Run the bench and print the JSON report and a readable line."""
    args = parse_args(argv)
    cores = os.cpu_count() or 1
    verify_per_s = measure_verify_per_s(args.verify_s)
    workdir = Path(tempfile.mkdtemp(prefix="carecoin-bench-"))
    nodes = Nodes(workdir, args.log_level, args.base_timeout_ms, peer_tls=args.tls, count=args.nodes,
                  staff_per_branch=args.staff_per_branch if args.mix != "transfers" else 1,
                  verify_workers=args.verify_workers, storage=storage_table(args))
    try:
        nodes.start()
        cpu0 = nodes.get_cpu_seconds()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = run_load(nodes, args)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_cpu = round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 2)
        cpu = [round(b - a, 2) for a, b in zip(cpu0, nodes.get_cpu_seconds())]
    finally:
        codes = nodes.close()
        if args.keep:
            print(f"bench: files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report = compute_report(load, verify_per_s, cores, args)
    report["load_cpu_s"] = load_cpu  # CPU of the load process (signing, HTTP, following blocks)
    report["node_cpu_s"] = cpu  # CPU each node used during the load run (funding + submit + drain)
    report["node_exit_codes"] = codes
    print(json.dumps(report))
    if report["failed_by_rule"]:
        print(f"workload bug: {report['failed_by_rule']} txs failed by a rule: {report['failed_by_reason']}",
              file=sys.stderr)
    if args.json:
        return
    lat = report["latency_ms"]
    print(f"throughput {args.mix} ({'peer mTLS' if args.tls else 'plain peer links'}): {report['tx_per_s']:.0f} tx/s committed ({report['committed']}/{report['submitted']}, "
          f"lost {report['lost']}), latency p50 {lat['p50']:.0f} ms p99 {lat['p99']:.0f} ms, "
          f"{report['blocks']} blocks ({report['mean_txs_per_block']:.0f} tx/block); verify "
          f"{report['verify_per_s']}/s x {cores} cores / {args.nodes} = bound {report['bound_tx_per_s']:.0f} tx/s -> ratio "
          f"{report['ratio']:.3f}; failed by rule {report['failed_by_rule']} of {report['outcomes_checked']} checked")


if __name__ == "__main__":
    main()
