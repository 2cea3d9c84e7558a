"""Benchmark: how fast a node that was down catches up, against the network's live committed rate.

Theory of operation. Initialises a 4-branch network on 127.0.0.1 (``bench.throughput.Nodes``: free ports,
short timeouts, peer mTLS), starts branches 1-3 only (a quorum of 4) and keeps branch 4 stopped. For each
size in ``--sizes`` (ascending), it drives transfers through the three live nodes with the throughput
bench's load process (``bench/load_worker.py``, closed loop) until the chain holds about that many txs,
measuring the LIVE committed rate (committed / elapsed, as ``bench/throughput.py`` does). Then it wipes
branch 4's data directory, starts it, and times how long it takes until its height equals the others' head
(the network is idle meanwhile: only catch-up runs). Branch 4 is stopped again before the next size.

    catchup_tx_per_s = behind_txs / catchup_s        (catchup_s: from process launch to head reached)
    ratio            = catchup_tx_per_s / live_tx_per_s

``behind_txs`` is the number of txs in the chain the node had to fetch (node 1's
``carecoin_committed_txs``: it ran from genesis), ``behind_blocks`` the head height. ``apply_tx_per_s`` is
the rate once the node answers its API (startup excluded). The headline figures are those of the largest
size; ``curve`` has one point per size (catch-up rate against chain length). ``live_tx_per_s`` is the mean
over all load runs (total committed / total elapsed).

Output follows the bench contract: ``--json`` prints one JSON object on stdout; a readable summary goes to
stderr. The bench never fails because a goal is missed; it exits non-zero only when it cannot measure.

Usage: .venv/bin/python bench/catchup.py [--json] [--quick] [--sizes 10000,30000,100000]
       [--profile-dir DIR]   (cProfile of the catching-up node's event loop: DIR/<size>/branch-4.prof)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.throughput import Nodes, http_json  # noqa: E402

LIVE = (0, 1, 2)  # a quorum of 4 validators
LAGGER = 3
DEFAULT_SIZES = (10_000, 30_000, 100_000)
QUICK_SIZES = (2_000, 5_000)
GOAL_RATIO = 5.0
CATCHUP_TIMEOUT_S = 900.0
POLL_S = 0.05


def eprint(*args: object) -> None:
    """Progress and the summary go to stderr (stdout carries only the JSON object)."""
    print("[catchup]", *args, file=sys.stderr, flush=True)


def read_metric(api: str, name: str) -> float | None:
    """One unlabelled sample of ``name`` from ``/metrics`` (None when the node does not answer)."""
    try:
        with urllib.request.urlopen(api + "/metrics", timeout=2.0) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds process ``pid`` has used (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def start_node(nodes: Nodes, i: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start branch ``i`` (its log appended to ``<workdir>/<name>.log``); return the process."""
    name = nodes.names[i]
    with open(nodes.workdir / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.node", "start", "--config", str(nodes.summary.dir / name / "node.toml")],
            cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "CARECOIN_NODE_NAME": name, **(env or {})})
    return proc


def wait_ready(nodes: Nodes, procs: dict[int, subprocess.Popen], peers: int, timeout_s: float = 60.0) -> None:
    """Wait (bounded) until every started node answers and sees at least ``peers`` peers."""
    deadline = time.monotonic() + timeout_s
    for i, proc in procs.items():
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"bench: node {nodes.names[i]} exited:\n{nodes.tail(i)}")
            doc = http_json(nodes.apis[i] + "/v1/status", 1.0)
            if doc is not None and doc.get("peers", 0) >= peers:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: node {nodes.names[i]} not ready in {timeout_s} s:\n{nodes.tail(i)}")
            time.sleep(0.1)


def stop_node(proc: subprocess.Popen) -> int | None:
    """SIGTERM, then SIGKILL after 15 s; return the exit code."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=10)


def run_load(nodes: Nodes, txs: int, senders: int, verbose: bool) -> dict:
    """Drive about ``txs`` transfers through the live nodes (closed loop); return the load process's JSON."""
    apis = [nodes.apis[i] for i in LIVE]
    issuer = nodes.summary.dir / nodes.names[0] / "keys" / "issuer.key"
    bound_s = txs / 100 + 120  # closed loop: it stops when the pre-signed txs are all submitted
    cmd = [sys.executable, "-m", "bench.load_worker", "--apis", ",".join(apis),
           "--chain-id", nodes.summary.chain_id, "--issuer-key", str(issuer),
           "--reader-key", str(nodes.summary.dir / "company" / "auditor.key"), "--senders", str(senders),
           "--duration", str(bound_s), "--max-txs", str(txs), "--drain-s", "60", "--mix", "transfers",
           "--net-dir", str(nodes.summary.dir)]
    out = subprocess.run(cmd, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=None if verbose else subprocess.PIPE,
                         text=True, timeout=bound_s + 300)
    if out.returncode != 0:
        raise SystemExit(f"bench: the load process failed ({out.returncode}):\n{(out.stderr or '')[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def data_dir(nodes: Nodes, i: int) -> Path:
    """Branch ``i``'s data directory (from its node.toml)."""
    path = nodes.summary.dir / nodes.names[i] / "node.toml"
    rel = tomllib.loads(path.read_text()).get("node", {}).get("data_dir", "data")
    return (path.parent / rel).resolve()


def measure_catchup(nodes: Nodes, profile_dir: str | None) -> dict:
    """Start the lagging branch on an empty data dir and time it to the live head; stop it again."""
    head_api = nodes.apis[LIVE[0]]
    head = http_json(head_api + "/v1/status")
    behind_txs = read_metric(head_api, "carecoin_committed_txs_total")
    if head is None or behind_txs is None:
        raise SystemExit(f"bench: node {nodes.names[0]} does not answer")
    shutil.rmtree(data_dir(nodes, LAGGER), ignore_errors=True)
    env = {"CARECOIN_PROFILE": profile_dir} if profile_dir else None
    api = nodes.apis[LAGGER]
    t0 = time.monotonic()
    proc = start_node(nodes, LAGGER, env)
    t_up = None
    try:
        deadline = t0 + CATCHUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"bench: node {nodes.names[LAGGER]} exited:\n{nodes.tail(LAGGER)}")
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: node {nodes.names[LAGGER]} not caught up in {CATCHUP_TIMEOUT_S} s")
            doc = http_json(api + "/v1/status", 1.0)
            if doc is not None:
                if t_up is None:
                    t_up, up_height = time.monotonic(), doc["height"]
                    up_txs = read_metric(api, "carecoin_committed_txs_total") or 0.0
                    up_cpu = cpu_seconds(proc.pid)
                if doc["height"] >= head["height"]:
                    break
            time.sleep(POLL_S)
        t_end = time.monotonic()
        applied = read_metric(api, "carecoin_committed_txs_total") or 0.0
        cpu = cpu_seconds(proc.pid) - up_cpu
    finally:
        stop_node(proc)
    catchup_s = t_end - t0
    apply_s = max(t_end - t_up, 1e-9)
    return {"behind_txs": int(behind_txs), "behind_blocks": head["height"], "catchup_s": round(catchup_s, 3),
            "catchup_tx_per_s": round(behind_txs / catchup_s, 1), "startup_s": round(t_up - t0, 3),
            "apply_tx_per_s": round((applied - up_txs) / apply_s, 1), "height_at_first_answer": up_height,
            "applied_txs": int(applied),
            "cpu_us_per_tx": round(cpu / (applied - up_txs) * 1e6, 1) if applied > up_txs else None}


def measure_apply_cpu(blocks: int, per_block: int, senders: int = 100) -> dict:
    """In-process CPU per tx of applying certified blocks (``commit_synced``, the catch-up path), against the
    same blocks applied with every signature checked (no certificate check: what catch-up did before)."""
    from ledger import chain
    from ledger.block import make_seal
    from ledger.genesis import Genesis, Validator
    from ledger.keys import KeyPair
    from ledger.storage import Store
    from ledger.tx import make_tx
    from node.options import ServiceOptions
    from node.service import NodeService

    chain_id, node, issuer = "carecoin-apply", KeyPair.generate(), KeyPair.generate()
    genesis = Genesis(chain_id, 1_700_000_000_000, (Validator("branch-1", node.public_key),),
                      roles={"issuer": (issuer.public_key,)}, policy={})
    options = ServiceOptions(name="branch-1")
    keys = [KeyPair.generate() for _ in range(senders)]
    work = Path(tempfile.mkdtemp(prefix="carecoin-apply-"))
    try:
        leader = NodeService(key=node, genesis=genesis, store=Store.open(work / "leader"), options=options)
        txs = [make_tx(chain_id, "mint", issuer, i + 1, [k.public_key, 10**9]) for i, k in enumerate(keys)]
        txs += [make_tx(chain_id, "transfer", keys[i % senders], i // senders + 1,
                        [keys[(i + 1) % senders].public_key, 1, bytes(32)]) for i in range(blocks * per_block)]
        made = []
        for start in range(0, len(txs), per_block):
            parent = leader.pipeline.head_header()
            ex, _ = chain.build_block(leader.store, leader.store, parent, txs[start:start + per_block],
                                      parent.timestamp_ms + 1, node.public_key, signatures_checked=True)
            seals = (make_seal(node, chain_id, ex.block.height, ex.block.hash),)
            leader.committer.commit(ex.block, seals, ex, source="bench")
            made.append((ex.block, seals))
        leader.close()
        out: dict[str, float] = {}
        for rnd in range(2):
            for mode in ("certified", "all_signatures_checked"):
                follower = NodeService(key=KeyPair.generate(), genesis=genesis,
                                       store=Store.open(work / f"{mode}-{rnd}"), options=options)
                t0 = time.process_time()
                follower.pipeline.commit_synced(made, follower.syncer.verify if mode == "certified" else None)
                us = (time.process_time() - t0) / len(txs) * 1e6
                follower.close()
                out[mode] = round(min(out.get(mode, us), us), 1)
        return {**out, "txs": len(txs), "blocks": len(made)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true",
                   help="the JSON object alone on stdout (it is anyway: the summary goes to stderr)")
    p.add_argument("--quick", action="store_true", help=f"small sizes {QUICK_SIZES} (ends in < 60 s)")
    p.add_argument("--sizes", default="", help="comma-separated chain lengths in txs (default "
                   f"{','.join(map(str, DEFAULT_SIZES))}; the largest is the headline)")
    p.add_argument("--senders", type=int, default=200, help="funded sender accounts per load run (default 200)")
    p.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True, help="mutual TLS on peer links")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    p.add_argument("--profile-dir", default="", help="cProfile the catching-up node into this directory")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (node logs, data)")
    p.add_argument("--verbose", action="store_true", help="show the load process's progress")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the bench; print the JSON object (stdout) and a summary (stderr)."""
    args = parse_args(argv)
    if args.sizes:
        sizes = tuple(sorted(int(s) for s in args.sizes.split(",")))
    else:
        sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    senders = min(args.senders, 50) if args.quick else args.senders
    apply_cpu = measure_apply_cpu(*((8, 200) if args.quick else (20, 250)))
    eprint(f"apply CPU per tx (in-process, best of 2): certified {apply_cpu['certified']} us, every signature "
           f"checked {apply_cpu['all_signatures_checked']} us ({apply_cpu['txs']} txs)")
    workdir = Path(tempfile.mkdtemp(prefix="carecoin-catchup-"))
    nodes = Nodes(workdir, args.log_level, peer_tls=args.tls)
    procs: dict[int, subprocess.Popen] = {}
    curve, committed, elapsed, live_cpu = [], 0, 0.0, 0.0
    try:
        for i in LIVE:
            procs[i] = start_node(nodes, i)
        wait_ready(nodes, procs, peers=len(LIVE) - 1)
        for size in sizes:
            have = int(read_metric(nodes.apis[LIVE[0]], "carecoin_committed_txs_total") or 0)
            need = size - have - senders  # the load run mints once to each sender first
            if need > 0:
                eprint(f"driving {need} transfers through {len(LIVE)} live nodes (chain at {have} txs)")
                cpu0 = sum(cpu_seconds(procs[i].pid) for i in LIVE)
                load = run_load(nodes, need, senders, args.verbose)
                live_cpu += sum(cpu_seconds(procs[i].pid) for i in LIVE) - cpu0
                committed += load["committed"]
                elapsed += load["elapsed_s"]
                eprint(f"live: {load['committed']} committed in {load['elapsed_s']:.1f} s "
                       f"({load['committed'] / max(load['elapsed_s'], 1e-9):.0f} tx/s)")
            profile = os.path.join(os.path.abspath(args.profile_dir), str(size)) if args.profile_dir else None
            point = measure_catchup(nodes, profile)
            curve.append(point)
            eprint(f"catch-up of {point['behind_txs']} txs ({point['behind_blocks']} blocks): "
                   f"{point['catchup_s']:.1f} s, {point['catchup_tx_per_s']:.0f} tx/s "
                   f"(startup {point['startup_s']:.1f} s, then {point['apply_tx_per_s']:.0f} tx/s, "
                   f"{point['cpu_us_per_tx']} us CPU/tx)")
    finally:
        codes = [stop_node(p) for p in procs.values()]
        if args.keep:
            eprint(f"files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    live = committed / elapsed if elapsed else 0.0
    top = curve[-1]
    ratio = top["catchup_tx_per_s"] / live if live else 0.0
    report = {
        "bench": "catchup",
        "params": {"sizes": list(sizes), "senders": senders, "quick": args.quick, "peer_tls": args.tls,
                   "live_nodes": len(LIVE), "validators": len(nodes.names), "mix": "transfers",
                   "profile": bool(args.profile_dir)},
        "behind_txs": top["behind_txs"], "behind_blocks": top["behind_blocks"], "catchup_s": top["catchup_s"],
        "catchup_tx_per_s": top["catchup_tx_per_s"], "apply_tx_per_s": top["apply_tx_per_s"],
        "startup_s": top["startup_s"], "live_tx_per_s": round(live, 1), "live_committed": committed,
        "live_elapsed_s": round(elapsed, 3), "ratio": round(ratio, 3),
        # CPU per tx is far less sensitive to a shared machine than wall time: one catching-up node's CPU per
        # applied tx (startup excluded) against the CPU of the whole live network per committed tx (funding
        # and load-process reads included), and per live node
        "catchup_cpu_us_per_tx": top["cpu_us_per_tx"],
        "live_network_cpu_us_per_tx": round(live_cpu / committed * 1e6, 1) if committed else None,
        "live_node_cpu_us_per_tx": round(live_cpu / committed / len(LIVE) * 1e6, 1) if committed else None,
        "apply_cpu_us_per_tx": apply_cpu,
        "curve": [{"behind_txs": p["behind_txs"], "behind_blocks": p["behind_blocks"],
                   "catchup_s": p["catchup_s"], "catchup_tx_per_s": p["catchup_tx_per_s"],
                   "apply_tx_per_s": p["apply_tx_per_s"], "cpu_us_per_tx": p["cpu_us_per_tx"]} for p in curve],
        "goal": {"catchup_vs_live": {"target": GOAL_RATIO, "value": round(ratio, 3), "met": ratio >= GOAL_RATIO,
                                     "at_behind_txs": top["behind_txs"]}},
        "node_exit_codes": codes,
    }
    print(json.dumps(report))
    met = "met" if report["goal"]["catchup_vs_live"]["met"] else "not met"
    eprint(f"catch-up {report['behind_txs']} txs behind ({report['behind_blocks']} blocks): "
           f"{report['catchup_tx_per_s']:.0f} tx/s vs live {report['live_tx_per_s']:.0f} tx/s -> ratio "
           f"{report['ratio']:.2f} (goal >= {GOAL_RATIO:g}: {met})")
    eprint(f"CPU per tx: catch-up {report['catchup_cpu_us_per_tx']} us; live, per node "
           f"{report['live_node_cpu_us_per_tx']} us ({report['live_network_cpu_us_per_tx']} us for the network)")
    for p in report["curve"]:
        eprint(f"  {p['behind_txs']:>8} txs behind: {p['catchup_tx_per_s']:>8.0f} tx/s "
               f"({p['catchup_s']:.1f} s; {p['apply_tx_per_s']:.0f} tx/s after startup)")


if __name__ == "__main__":
    main()
