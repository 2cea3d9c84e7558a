"""Benchmark: resident memory (RSS) of a real node process against the number of accounts in its state.

Theory of operation. A one-validator network (``network init --branches 1``) is grown offline to hold N funded
accounts: its issuer mints ``AMOUNT`` coins to each of N account ids, in blocks of ``--block-txs`` txs built
with the project's own proposer path (``ledger.chain.build_block``, signatures trusted as after admission: we
signed them a moment ago), sealed by the validator's own key (``ledger.block.make_seal``, quorum of one) and
committed with ``Store.commit_block`` into the node's data dir: exactly the bytes a node that proposed those
blocks would hold (one mint = the account, its lot and its expiry entry in the due queue: 3 state keys).
Points are grown in order and cached under ``--cache-dir`` keyed by the build parameters: the state of 10^k
accounts is a copy of the state of 10^(k-1) accounts, extended (``build_s`` is the time of that extension).

Each point is then measured on a real process, ``python -m cli.node start --config ...``: ``start_s`` is the
time from spawn to ``/v1/status`` answering, ``rss_start_mb`` its VmRSS (``/proc/<pid>/status``) once it is up,
then it serves a workload touching many accounts (``--txs`` mints of 1 coin to random odd-numbered accounts,
in batches through ``POST /v1/txs``, all waited for; ``--reads`` signed ``GET /v1/accounts/{id}`` of random
accounts, and ``--proofs`` state proofs), and ``rss_mb`` is VmRSS after it (caches exercised), ``hwm_mb``
the peak (VmHWM). The bench asserts what the node serves: every even-numbered account read holds exactly
``AMOUNT`` coins and nonce 0 (the workload never touches them) and every proof verifies offline against the
genesis (``ledger.state_proof.verify_state_proof``: sealed header, SMT membership of the account's keys),
so a state the node did not accept as its own chain would fail the run, not print a figure. The node runs on
the cached data dir itself: it commits its own blocks on top (the workload's mints, empty blocks), which leaves
the number of accounts unchanged and is where the next extension starts from.

Prints ONE JSON object (with ``--json`` nothing else on stdout):

    {"bench": "state_size", "params", "curve": [{"accounts", "rss_mb", "start_s", "rss_start_mb", "hwm_mb",
     "build_s", "height", "data_mb", ...}], "accounts_max", "rss_mb_at_max", "hwm_mb_at_max", "goal"}

Goal: ``rss_mb`` <= 300 at 10^6 accounts (measured only when the curve reaches 10^6; ``met`` is None below).
Never exits non-zero for a missed goal; only when it could not measure (the reason on stderr).

Usage: .venv/bin/python bench/state_size.py [--json] [--quick] [--points 1000,10000,100000,1000000]
       [--txs 20000] [--reads 1000] [--proofs 50] [--cache-dir DIR] [--no-cache] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import tomli_w

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.throughput import http_json  # noqa: E402
from carecoin import Client  # noqa: E402
from cli.network import init_network  # noqa: E402
from cli.ports import free_port_base  # noqa: E402
from ledger.block import make_seal  # noqa: E402
from ledger.chain import build_block  # noqa: E402
from ledger.genesis import load_genesis  # noqa: E402
from ledger.keys import load_key  # noqa: E402
from ledger.state import get_nonce  # noqa: E402
from ledger.state_proof import verify_state_proof  # noqa: E402
from ledger.storage import Store  # noqa: E402
from ledger.tx import make_tx  # noqa: E402
from node.service import ensure_genesis  # noqa: E402

FORMAT = 1  # bump when the way states are built changes (invalidates the cache)
AMOUNT = 1000
CHAIN_ID = "carecoin-state-size"
POINTS = (1_000, 10_000, 100_000, 1_000_000)
QUICK_POINTS = (1_000, 10_000)
GOAL_ACCOUNTS = 1_000_000
GOAL_RSS_MB = 300.0
# Only what the workload needs: one issuer submits every mint (the per-sender cap would refuse most). Blocks keep
# the node's default size: a block's execution (its SMT batch, its new nodes) is the largest transient in memory.
BENCH_NODE = {"mempool": {"max_per_sender": 50_000, "max_count": 60_000}}


def log(msg: str) -> None:
    print(f"state_size: {msg}", file=sys.stderr, flush=True)


def account_id(i: int) -> bytes:
    """The i-th account of the bench state (a fixed 32-byte id; nobody holds its key)."""
    return hashlib.sha256(b"carecoin/bench/state-size/%d" % i).digest()


# --- building states offline -----------------------------------------------------------------------------


class StateCache:
    """Cached states of one lineage: ``<dir>/net`` (keys, genesis, node.toml) and ``<dir>/points/<n>/data``."""

    def __init__(self, root: Path, block_txs: int) -> None:
        self.dir = root / f"v{FORMAT}-block{block_txs}"
        self.block_txs = block_txs
        self.net = self.dir / "net"
        self.points = self.dir / "points"

    def ensure_network(self) -> None:
        if (self.net / "genesis.json").is_file():
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        init_network(self.net, 1, base_port=free_port_base(2), chain_id=CHAIN_ID)
        self.points.mkdir(parents=True, exist_ok=True)

    @property
    def branch(self) -> Path:
        return next(p.parent for p in self.net.glob("*/node.toml"))

    def cached(self) -> list[int]:
        return sorted(int(p.name) for p in self.points.glob("*") if (p / "meta.json").is_file())

    def meta(self, n: int) -> dict:
        return json.loads((self.points / str(n) / "meta.json").read_text())

    def get(self, n: int) -> tuple[Path, dict]:
        """The data dir holding ``n`` accounts (built now from the largest smaller cached point if absent)."""
        self.ensure_network()
        if n in self.cached():
            return self.points / str(n) / "data", self.meta(n)
        below = [m for m in self.cached() if m < n]
        start = max(below) if below else 0
        work = self.points / f"{n}.building"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        if start:
            shutil.copytree(self.points / str(start) / "data", work / "data")
        log(f"building {n:,} accounts from {start:,} (blocks of {self.block_txs:,} mints)")
        t0 = time.perf_counter()
        height = extend_state(self.net, self.branch, work / "data", start, n, self.block_txs)
        build_s = time.perf_counter() - t0
        meta = {"accounts": n, "from": start, "build_s": round(build_s, 1), "height": height,
                "built_with": f"{self.block_txs} mints per block, build_block + make_seal + Store.commit_block"}
        (work / "meta.json").write_text(json.dumps(meta))
        work.rename(self.points / str(n))
        log(f"built {n:,} accounts in {build_s:.1f} s (height {height})")
        return self.points / str(n) / "data", meta


def extend_state(net: Path, branch: Path, data: Path, start: int, stop: int, block_txs: int) -> int:
    """Mint ``AMOUNT`` to accounts ``start..stop-1`` in sealed blocks committed to the store at ``data``."""
    genesis = load_genesis(net / "genesis.json")
    validator = load_key(branch / "node.key")
    issuer = load_key(branch / "keys" / "issuer.key")
    store = Store.open(data)
    try:
        ensure_genesis(store, genesis)
        nonce = get_nonce(store, issuer.public_key)
        i = start
        while i < stop:
            count = min(block_txs, stop - i)
            txs = [make_tx(genesis.chain_id, "mint", issuer, nonce + k + 1, [account_id(i + k), AMOUNT])
                   for k in range(count)]
            head = store.head()
            parent = store.get_header(head.height)
            now = int(time.time() * 1000)
            execution, rejected = build_block(store, store, parent, txs, max(parent.timestamp_ms + 1, now),
                                              validator.public_key, chain_id=genesis.chain_id,
                                              signatures_checked=True)
            failed = [r.reason for r in execution.results if r.status != 0]
            if rejected or failed or len(execution.results) != count:
                raise SystemExit(f"state_size: building block {parent.height + 1}: {len(rejected)} rejected "
                                 f"({rejected[:1]}), failed {failed[:3]}; expected {count} applied mints")
            header = execution.header
            seal = make_seal(validator, genesis.chain_id, header.height, execution.block.hash)
            store.commit_block(execution.block, (seal,), execution.results, execution.state_writes,
                               execution.smt_nodes)
            nonce += count
            i += count
            if (i - start) % (10 * block_txs) == 0 or i == stop:
                log(f"  {i:,} / {stop:,} accounts (height {header.height})")
        return store.head().height
    finally:
        store.close()


# --- measuring a real node --------------------------------------------------------------------------------


def read_status_kb(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile (kB) of a process from /proc/<pid>/status. RssFile is file-backed pages
    mapped into the process (LevelDB reads its table files through mmap): page cache the kernel reclaims under
    pressure, shared with every reader of those files; RssAnon is the process's own memory."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[name] = int(rest.split()[0])
    return out


def dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 1)


def write_config(cache: StateCache, data: Path, run: Path) -> Path:
    """A node.toml for the cached branch on free ports, pointing at ``data``."""
    src = cache.branch / "node.toml"
    doc = tomllib.loads(src.read_text())
    base = free_port_base(2)
    doc["api"]["port"], doc["peer"]["port"] = base, base + 1
    doc["node"]["data_dir"] = str(data)  # the other paths stay relative to the branch dir, where this file goes
    for section, values in BENCH_NODE.items():
        doc.setdefault(section, {}).update(values)
    doc.setdefault("log", {})["level"] = "warning"
    path = cache.branch / f"bench-{os.getpid()}.toml"
    path.write_text(tomli_w.dumps(doc))
    run.mkdir(parents=True, exist_ok=True)
    return path


def measure(cache: StateCache, n: int, data: Path, meta: dict, args: argparse.Namespace, run: Path) -> dict:
    """Start a node on the state of ``n`` accounts, load it, and return its curve point."""
    config = write_config(cache, data, run)
    # The cached state serves run after run, and the bench signs thousands of reads with one key: the replay
    # guard's per-signer cap (its log survives restarts) would refuse the next run's reads for ten minutes. This
    # data dir is the bench's own, so it starts each run with an empty log.
    (data / "vault" / "seen-requests").unlink(missing_ok=True)
    doc = tomllib.loads(config.read_text())
    api = f"http://{doc['api']['host']}:{doc['api']['port']}"
    logf = open(run / f"node-{n}.log", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cli.node", "start", "--config", str(config)], cwd=str(ROOT),
                            stdout=logf, stderr=subprocess.STDOUT)
    logf.close()
    try:
        status = wait_ready(proc, api, run / f"node-{n}.log", args.start_timeout_s)
        start_s = time.perf_counter() - t0
        time.sleep(1.0)
        rss_start = read_status_kb(proc.pid)
        log(f"{n:,} accounts: node up in {start_s:.2f} s at height {status['height']}, "
            f"RSS {rss_start['VmRSS'] / 1024:.1f} MB")
        rnd = random.Random(n)
        genesis = load_genesis(cache.net / "genesis.json")
        reader = Client(api, key=cache.net / "company" / "auditor.key", timeout_s=120.0)
        issuer = load_key(cache.branch / "keys" / "issuer.key")
        t1 = time.perf_counter()
        committed = run_txs(api, issuer, reader, genesis.chain_id, n, args.txs, rnd)
        txs_s = time.perf_counter() - t1
        rss_txs = read_status_kb(proc.pid)
        t2 = time.perf_counter()
        check_reads(reader, genesis, n, args.reads, args.proofs, rnd)
        reads_s = time.perf_counter() - t2
        rss_after = read_status_kb(proc.pid)
        log(f"{n:,} accounts: {committed} mints in {txs_s:.1f} s, {args.reads} reads + {args.proofs} proofs in "
            f"{reads_s:.1f} s; RSS {rss_after['VmRSS'] / 1024:.1f} MB (own {rss_after.get('RssAnon', 0) / 1024:.1f} MB, "
            f"mapped files {rss_after.get('RssFile', 0) / 1024:.1f} MB), peak {rss_after['VmHWM'] / 1024:.1f} MB")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(timeout=10)
        config.unlink(missing_ok=True)
    return {
        "accounts": n, "rss_mb": round(rss_after["VmRSS"] / 1024, 1), "start_s": round(start_s, 2),
        "rss_start_mb": round(rss_start["VmRSS"] / 1024, 1), "rss_after_txs_mb": round(rss_txs["VmRSS"] / 1024, 1),
        "hwm_mb": round(rss_after["VmHWM"] / 1024, 1),
        "anon_mb": round(rss_after.get("RssAnon", 0) / 1024, 1), "file_mb": round(rss_after.get("RssFile", 0) / 1024, 1),
        "txs": committed, "txs_s": round(txs_s, 1),
        "reads": args.reads, "proofs": args.proofs, "reads_s": round(reads_s, 1),
        "build_s": meta["build_s"], "built_from": meta["from"], "height": status["height"],
        "data_mb": dir_mb(data), "node_exit_code": code,
    }


def wait_ready(proc: subprocess.Popen, api: str, logfile: Path, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace").splitlines()[-20:]
            raise SystemExit("state_size: the node exited:\n" + "\n".join(tail))
        doc = http_json(api + "/v1/status", 1.0)
        if doc is not None and "height" in doc:
            return doc
        time.sleep(0.05)
    raise SystemExit(f"state_size: the node did not answer /v1/status within {timeout_s} s")


def run_txs(api: str, issuer, reader: Client, chain_id: str, n: int, count: int, rnd: random.Random) -> int:
    """Mint 1 coin to ``count`` random odd-numbered accounts (batches of 1000); wait for all to commit."""
    submitter = Client(api, timeout_s=120.0)
    nonce = reader.account(issuer.public_key.hex())["nonce"]
    targets = [account_id(rnd.randrange(1, n, 2)) for _ in range(count)]
    txs = [make_tx(chain_id, "mint", issuer, nonce + k + 1, [to, 1]) for k, to in enumerate(targets)]
    for lo in range(0, len(txs), 1000):
        results = submitter.submit_batch(txs[lo:lo + 1000])
        refused = [r for r in results if r.get("error")]
        if refused:
            raise SystemExit(f"state_size: {len(refused)} mints refused, first: {refused[0]}")
    want = nonce + count
    deadline = time.monotonic() + 60 + count / 100
    while time.monotonic() < deadline:
        got = reader.account(issuer.public_key.hex())["nonce"]
        if got >= want:
            return count
        time.sleep(0.2)
    raise SystemExit(f"state_size: only {got - nonce} of {count} mints committed in time")


def check_reads(reader: Client, genesis, n: int, reads: int, proofs: int, rnd: random.Random) -> None:
    """Signed account reads of random accounts (even ones hold exactly AMOUNT, nonce 0) and verified proofs."""
    for _ in range(reads):
        i = rnd.randrange(n)
        doc = reader.account(account_id(i).hex())
        if doc["balance"] < AMOUNT or (i % 2 == 0 and (doc["balance"], doc["nonce"]) != (AMOUNT, 0)):
            raise SystemExit(f"state_size: account {i} reads balance {doc['balance']} nonce {doc['nonce']}; "
                             f"expected {AMOUNT} and 0" + ("" if i % 2 == 0 else " (at least the balance)"))
    for _ in range(proofs):
        i = rnd.randrange(0, n, 2)
        proof = verify_state_proof(reader.proof(account_id(i).hex()), genesis)
        if (proof.balance, proof.nonce) != (AMOUNT, 0):
            raise SystemExit(f"state_size: the proof of account {i} shows {proof.balance}/{proof.nonce}; "
                             f"expected {AMOUNT}/0")


# --- the report -------------------------------------------------------------------------------------------


def compute_report(curve: list[dict], params: dict) -> dict:
    top = curve[-1] if curve else None
    at_goal = next((p for p in curve if p["accounts"] >= GOAL_ACCOUNTS), None)
    return {
        "bench": "state_size", "params": params, "curve": curve,
        "accounts_max": top["accounts"] if top else 0,
        "rss_mb_at_max": top["rss_mb"] if top else None,
        "hwm_mb_at_max": top["hwm_mb"] if top else None,
        "anon_mb_at_max": top.get("anon_mb") if top else None,
        "file_mb_at_max": top.get("file_mb") if top else None,
        "goal": {"rss_mb_at_1m_accounts": {
            "target": GOAL_RSS_MB, "accounts": GOAL_ACCOUNTS,
            "value": at_goal["rss_mb"] if at_goal else None,
            "peak": at_goal["hwm_mb"] if at_goal else None,
            "met": (at_goal["rss_mb"] <= GOAL_RSS_MB) if at_goal else None},
            # the process's own memory (VmRSS less LevelDB's mapped table pages, which are reclaimable page cache)
            "own_mb_at_1m_accounts": {
            "target": GOAL_RSS_MB, "accounts": GOAL_ACCOUNTS,
            "value": at_goal.get("anon_mb") if at_goal else None,
            "met": (at_goal.get("anon_mb", GOAL_RSS_MB + 1) <= GOAL_RSS_MB) if at_goal else None}},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    p.add_argument("--quick", action="store_true", help="10^3 and 10^4 accounts, a lighter workload (< 60 s)")
    p.add_argument("--points", default=None, help="comma-separated account counts (default 10^3..10^6)")
    p.add_argument("--txs", type=int, default=None, help="mints served per point (default 20000; quick 2000)")
    p.add_argument("--reads", type=int, default=None, help="signed account reads per point (default 1000; quick 200)")
    p.add_argument("--proofs", type=int, default=None, help="verified state proofs per point (default 50; quick 10)")
    p.add_argument("--block-txs", type=int, default=10_000, help="mints per block when building (default 10000)")
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "carecoin-state-size",
                   help="where built states are cached (default $TMPDIR/carecoin-state-size)")
    p.add_argument("--no-cache", action="store_true", help="build every state afresh in a temp dir")
    p.add_argument("--start-timeout-s", type=float, default=300.0, help="bound on a node's start")
    p.add_argument("--keep", action="store_true", help="keep the run dir (node logs)")
    args = p.parse_args(argv)
    points = QUICK_POINTS if args.quick else POINTS
    args.points = tuple(int(x) for x in args.points.split(",")) if args.points else points
    args.txs = args.txs if args.txs is not None else (2000 if args.quick else 20_000)
    args.reads = args.reads if args.reads is not None else (200 if args.quick else 1000)
    args.proofs = args.proofs if args.proofs is not None else (10 if args.quick else 50)
    if sorted(args.points) != list(args.points) or min(args.points) < 2:
        p.error("--points must be ascending counts >= 2")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run = Path(tempfile.mkdtemp(prefix="carecoin-state-size-run-"))
    cache_root = Path(tempfile.mkdtemp(prefix="carecoin-state-size-")) if args.no_cache else args.cache_dir
    cache = StateCache(cache_root, args.block_txs)
    params = {"points": list(args.points), "txs": args.txs, "reads": args.reads, "proofs": args.proofs,
              "block_txs": args.block_txs, "amount": AMOUNT, "validators": 1, "quick": args.quick,
              "cached": not args.no_cache, "node": BENCH_NODE}
    curve = []
    try:
        for n in args.points:
            data, meta = cache.get(n)
            curve.append(measure(cache, n, data, meta, args, run))
    finally:
        if args.keep:
            log(f"node logs kept in {run}")
        else:
            shutil.rmtree(run, ignore_errors=True)
        if args.no_cache:
            shutil.rmtree(cache_root, ignore_errors=True)
    report = compute_report(curve, params)
    print(json.dumps(report))
    if not args.json:
        for p in curve:
            print(f"{p['accounts']:>9,} accounts: RSS {p['rss_mb']:.1f} MB after load "
                  f"({p['rss_start_mb']:.1f} MB at start, peak {p['hwm_mb']:.1f} MB), start {p['start_s']:.2f} s, "
                  f"data {p['data_mb']:.0f} MB, built in {p['build_s']:.0f} s")


if __name__ == "__main__":
    main()
