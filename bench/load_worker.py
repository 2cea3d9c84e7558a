"""The load process of ``bench/throughput.py``: fund senders, pre-sign transfers, submit them, follow commits.

Theory of operation. Run as a separate process (``python -m bench.load_worker ...``) so the load's CPU is
not the bench's or a node's. Steps, every one bounded in count and time:

1. **Fund**: ``--senders`` fresh keys each get one ``mint`` from the issuer (batches below the mempool's
   per-sender cap, each waited for). Not measured.
2. **Pre-sign**: ``--max-txs`` transfers of amount 1, nonce-major (every sender's nonce n before any
   nonce n+1), so a sender's txs arrive in order. Sender ``s`` always goes to node ``s % nodes``
   (every node of ``--apis`` gets its share: there are at least as many posters as nodes).
3. **Submit** for ``--duration`` seconds: ``--concurrency`` keep-alive HTTP posters send batches of
   ``--batch`` txs to ``POST /v1/txs``; with ``--rate`` > 0 batches are released on an open-loop schedule.
   At most ``--window`` txs are in flight (submitted, not yet seen committed), so a closed-loop run
   measures latency at full throughput rather than the depth of a mempool backlog.
   A tx counts as *submitted* once a node answered ``pending`` (or ``duplicate_tx``); ``mempool_full``,
   ``sender_limit`` and ``nonce_gap_too_large`` (an earlier tx of the sender was sent back) refusals are
   retried after a short pause; any other refusal is counted by its code.
4. **Follow**: all along, one task polls node 0's head and reads every new block's tx hashes, stamping
   each hash with the time its block was first seen committed (submit→commit latency).
5. **Drain**: after the submit window, wait (``--drain-s``, bounded) until every submitted tx is committed;
   then ask the nodes about the rest (pending / evicted with reason / unknown).

Prints ONE JSON object on stdout (see ``run``); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.keys import KeyPair, load_key  # noqa: E402
from node.progress import ProgressBar  # noqa: E402
from node.vault import compute_request_headers  # noqa: E402
from ledger.tx import make_tx  # noqa: E402
from bench.mix import MIXES, WAVE  # noqa: E402
from bench.mix_load import node_of, read_outcomes, run_mix, submit_steps  # noqa: E402

MINT_AMOUNT = 1_000_000
MINT_BATCH = 200          # below the mempool's default per-sender cap (256)
RETRY_CODES = ("mempool_full", "sender_limit", "nonce_gap_too_large")  # "not now": sent again in order
FOLLOW_POLL_S = 0.02
MAX_STATUS_QUERIES = 5000


def eprint(*args: object) -> None:
    """Progress to stderr (stdout carries the one JSON result)."""
    print("[load]", *args, file=sys.stderr, flush=True)


_last_stamp = [0]


def read_headers(key: KeyPair, chain_id: str, path: str) -> dict[str, str]:
    """The signature headers of one read by ``key`` (blocks, accounts and tx status are signed reads)."""
    _last_stamp[0] = max(int(time.time() * 1000), _last_stamp[0] + 1)
    return compute_request_headers(key, chain_id, "GET", path, b"", _last_stamp[0])


class Follower:
    """Stamps every tx hash with the wall time its block was first seen on one node."""

    def __init__(self, session: aiohttp.ClientSession, api: str, start_height: int, reader: KeyPair,
                 chain_id: str) -> None:
        self.session, self.api, self.reader, self.chain_id = session, api, reader, chain_id
        self.next_height = start_height + 1
        self.commit_time: dict[str, float] = {}
        self.blocks: list[tuple[int, float, int]] = []  # (height, seen at, tx count)
        self.errors = 0

    async def poll_once(self) -> None:
        """Read the head and every block above what was seen."""
        async with self.session.get(f"{self.api}/v1/status") as resp:
            head = (await resp.json())["height"]
        while self.next_height <= head:
            path = f"/v1/blocks/{self.next_height}"
            async with self.session.get(self.api + path, headers=read_headers(self.reader, self.chain_id, path)) as resp:
                doc = await resp.json()
            now = time.time()
            for h in doc["txs"]:
                self.commit_time.setdefault(h, now)
            self.blocks.append((self.next_height, now, len(doc["txs"])))
            self.next_height += 1

    async def run(self, stop: asyncio.Event, deadline: float) -> None:
        """Poll until ``stop`` is set or the deadline passes."""
        while not stop.is_set() and time.time() < deadline:
            try:
                await self.poll_once()
            except (aiohttp.ClientError, asyncio.TimeoutError, KeyError, ValueError) as exc:
                self.errors += 1
                if self.errors <= 3:
                    eprint(f"following blocks: {exc!r}")
            try:
                await asyncio.wait_for(stop.wait(), FOLLOW_POLL_S)
            except asyncio.TimeoutError:
                pass


async def post_batch(session: aiohttp.ClientSession, api: str, raws: list[bytes]) -> list[dict]:
    """POST /v1/txs; return one result per tx ({"status": "pending"} or {"error": {"code", ...}})."""
    async with session.post(f"{api}/v1/txs", json={"txs": [r.hex() for r in raws]}) as resp:
        doc = await resp.json()
        if resp.status != 200:
            code = doc.get("error", {}).get("code", f"http_{resp.status}")
            return [{"error": {"code": code}}] * len(raws)
        return doc["results"]


async def fund(session, apis, chain_id, issuer: KeyPair, senders: list[KeyPair], follower: Follower,
               timeout_s: float) -> int:
    """Mint ``MINT_AMOUNT`` to every sender through node 0; wait until the mints commit. Returns issuer nonce."""
    path = f"/v1/accounts/{issuer.public_key.hex()}"
    async with session.get(apis[0] + path, headers=read_headers(issuer, chain_id, path)) as resp:
        nonce = (await resp.json())["next_nonce"] - 1
    deadline = time.time() + timeout_s
    for start in range(0, len(senders), MINT_BATCH):
        txs = []
        for s in senders[start:start + MINT_BATCH]:
            nonce += 1
            txs.append(make_tx(chain_id, "mint", issuer, nonce, [s.public_key, MINT_AMOUNT]))
        results = await post_batch(session, apis[0], [t.raw for t in txs])
        bad = [r for r in results if "error" in r and r["error"]["code"] != "duplicate_tx"]
        if bad:
            raise SystemExit(f"load: a mint was refused: {bad[0]}")
        last = txs[-1].tx_hash.hex()
        while last not in follower.commit_time:
            if time.time() > deadline:
                raise SystemExit(f"load: mints not committed within {timeout_s} s")
            await follower.poll_once()
            await asyncio.sleep(0.05)
    return nonce


def _sign_range(job: tuple[str, list[tuple[bytes, bytes]], int]) -> list[list[tuple[str, bytes]]]:
    """Sign ``per_sender`` transfers for each (seed, recipient) pair: one list per sender, nonce order."""
    chain_id, pairs, per_sender = job
    out = []
    for seed, to in pairs:
        key = KeyPair.from_seed(seed)
        txs = [make_tx(chain_id, "transfer", key, nonce, [to, 1, bytes(32)]) for nonce in range(1, per_sender + 1)]
        out.append([(tx.tx_hash.hex(), tx.raw) for tx in txs])
    return out


def presign(chain_id: str, senders: list[KeyPair], per_sender: int, nodes: int,
            workers: int = 1) -> list[list[tuple[str, bytes]]]:
    """Transfers of 1 coin to the next sender, nonce-major, split into one ordered queue per node.

    Signing runs in ``workers`` processes (the nodes are idle meanwhile: this is before the measurement).
    """
    n = len(senders)
    pairs = [(s.seed, senders[(i + 1) % n].public_key) for i, s in enumerate(senders)]
    step = -(-n // max(1, workers))
    jobs = [(chain_id, pairs[i:i + step], per_sender) for i in range(0, n, step)]
    if workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
            parts = pool.map(_sign_range, jobs)
    else:
        parts = [_sign_range(job) for job in jobs]
    by_sender = [txs for part in parts for txs in part]
    queues: list[list[tuple[str, bytes]]] = [[] for _ in range(nodes)]
    for nonce in range(per_sender):
        for i, txs in enumerate(by_sender):
            queues[i % nodes].append(txs[nonce])
    return queues


async def submit(session, apis, queues, args, stats, follower: Follower) -> None:
    """Submit the pre-signed queues for ``args.duration`` seconds (closed loop, or open loop at ``--rate``)."""
    t_start = time.time()
    t_end = t_start + args.duration
    cursors = [0] * len(queues)
    retry: list[list[tuple[str, bytes]]] = [[] for _ in queues]
    released = 0
    submit_time: dict[str, float] = stats["submit_time"]
    refused: Counter = stats["refused"]

    def take(node: int) -> list[tuple[str, bytes]]:
        batch = retry[node][:args.batch]
        del retry[node][:len(batch)]
        need = args.batch - len(batch)
        if need > 0:
            chunk = queues[node][cursors[node]:cursors[node] + need]
            batch.extend(chunk)
            cursors[node] += len(chunk)
        return batch

    async def poster(k: int) -> None:
        nonlocal released
        node = k % len(queues)
        while time.time() < t_end:
            if args.window > 0 and len(submit_time) - len(follower.commit_time) > args.window:
                await asyncio.sleep(0.01)  # closed loop on commits: at most --window txs in flight
                continue
            if args.rate > 0:
                due = t_start + released * args.batch / args.rate
                released += 1
                if due > time.time():
                    await asyncio.sleep(due - time.time())
                if time.time() >= t_end:
                    return
            batch = take(node)
            if not batch:
                if not retry[node] and cursors[node] >= len(queues[node]):
                    stats["exhausted"] = True
                    return
                await asyncio.sleep(0.05)
                continue
            t0 = time.time()
            try:
                results = await post_batch(session, apis[node], [raw for _, raw in batch])
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                stats["http_errors"] += 1
                eprint(f"post to node {node} failed: {exc!r}")
                retry[node].extend(batch)
                await asyncio.sleep(0.2)
                continue
            backoff = False
            for (h, raw), res in zip(batch, results):
                err = res.get("error")
                if err is None or err["code"] == "duplicate_tx":
                    submit_time.setdefault(h, t0)
                elif err["code"] in RETRY_CODES:
                    retry[node].append((h, raw))
                    backoff = True
                else:
                    refused[err["code"]] += 1
            if backoff:
                stats["backoffs"] += 1
                await asyncio.sleep(0.05)

    # poster k serves node k % nodes: at least one poster per node, or a node's queue would never be sent
    await asyncio.gather(*(poster(k) for k in range(max(args.concurrency, len(queues)))))
    stats["retry_left"] = sum(len(r) for r in retry)
    stats["submit_window_s"] = time.time() - t_start


async def classify(session, apis, missing: list[str], affinity: dict[str, int], reader: KeyPair,
                   chain_id: str) -> Counter:
    """Ask the nodes what became of txs not seen committed: pending / evicted:reason / committed / unknown."""
    out: Counter = Counter()
    for h in missing[:MAX_STATUS_QUERIES]:
        try:
            path = f"/v1/tx/{h}"
            async with session.get(apis[affinity.get(h, 0)] + path, headers=read_headers(reader, chain_id, path)) as resp:
                doc = await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            out["query_failed"] += 1
            continue
        status = doc.get("status", "unknown")
        out[f"evicted:{doc.get('reason', '?')}" if status == "evicted" else status] += 1
    if len(missing) > MAX_STATUS_QUERIES:
        out["not_queried"] += len(missing) - MAX_STATUS_QUERIES
    return out


async def show_progress(submitted: dict, committed: dict, duration_s: float) -> None:
    """A rich bar on stderr while the load runs (only at a terminal, never under CI): the submit window's time,
    then the drain (committed of submitted). Cancelled when the drain ends."""
    bar = ProgressBar("load", duration_s, unit="s")
    t0 = time.time()
    try:
        while True:
            done = sum(1 for h in list(submitted) if h in committed)
            elapsed = time.time() - t0
            if elapsed < duration_s:
                bar.update(elapsed, description=f"load: {len(submitted)} submitted, {done} committed")
            else:
                bar.update(done, total=max(len(submitted), 1), description=f"drain: {done} of {len(submitted)}")
            await asyncio.sleep(0.25)
    finally:
        bar.close()


async def run(args) -> dict:
    """The whole load run; returns the result document."""
    apis = args.apis.split(",")
    issuer = load_key(args.issuer_key)
    reader = load_key(args.reader_key)  # reads blocks and tx status: the company auditor
    senders = [KeyPair.generate() for _ in range(args.senders)]
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=max(args.concurrency, len(apis)) + 8, keepalive_timeout=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        async with session.get(f"{apis[0]}/v1/status") as resp:
            start_height = (await resp.json())["height"]
        follower = Follower(session, apis[0], start_height, reader, args.chain_id)
        mix = None
        if args.mix == "transfers":
            t0 = time.time()
            await fund(session, apis, args.chain_id, issuer, senders, follower, timeout_s=60)
            eprint(f"funded {len(senders)} senders in {time.time() - t0:.1f} s")
            t0 = time.time()
            per_sender = max(1, -(-args.max_txs // len(senders)))
            queues = presign(args.chain_id, senders, per_sender, len(apis), workers=os.cpu_count() or 1)
            affinity = {h: node for node, q in enumerate(queues) for h, _ in q}
            kind_of = {h: "transfer" for q in queues for h, _ in q}
            eprint(f"pre-signed {sum(len(q) for q in queues)} transfers in {time.time() - t0:.1f} s")
        else:
            mix = await run_mix(args, session, apis, follower, reader, read_headers, eprint)
            queues = [[] for _ in apis]
            affinity = {tx.tx_hash.hex(): node_of(step.sender, len(apis)) for step, tx in zip(mix["steps"], mix["txs"])}
            kind_of = {tx.tx_hash.hex(): step.kind for step, tx in zip(mix["steps"], mix["txs"])}
        measure_from = follower.next_height
        stats = {"submit_time": {}, "refused": Counter(), "http_errors": 0, "backoffs": 0, "exhausted": False}
        stop = asyncio.Event()
        follow_task = asyncio.create_task(
            follower.run(stop, time.time() + args.duration + args.drain_s + 30))
        bar = asyncio.create_task(show_progress(stats["submit_time"], follower.commit_time, args.duration))
        try:
            if mix is None:
                await submit(session, apis, queues, args, stats, follower)
            else:
                t_start = time.time()
                counts = await submit_steps(session, apis, mix["steps"], mix["txs"], args, follower,
                                            t_start + args.duration, stats["submit_time"], stats["refused"],
                                            rate=args.rate)
                stats.update(http_errors=counts.get("http_errors", 0), backoffs=counts.get("backoffs", 0),
                             retry_left=0, submit_window_s=time.time() - t_start,
                             exhausted=counts.get("unsent", 0) == 0)
            submitted = stats["submit_time"]
            eprint(f"submitted {len(submitted)} in {stats['submit_window_s']:.1f} s; draining")
            drain_end = time.time() + args.drain_s
            while time.time() < drain_end:
                if all(h in follower.commit_time for h in submitted):
                    break
                await asyncio.sleep(0.1)
        finally:
            bar.cancel()
        await asyncio.sleep(2 * FOLLOW_POLL_S)
        stop.set()
        await follow_task
        commits = follower.commit_time
        eprint(f"followed up to height {follower.next_height - 1} ({len(follower.blocks)} blocks, "
               f"{len(commits)} tx hashes, {follower.errors} errors)")
        committed = [h for h in submitted if h in commits]
        missing = [h for h in submitted if h not in commits]
        fates = await classify(session, apis, missing, affinity, reader, args.chain_id) if missing else Counter()
        lat = sorted((commits[h] - submitted[h]) * 1000 for h in committed)
        failed_by_rule, checked = await read_outcomes(session, apis, committed, affinity, reader, args.chain_id,
                                                      read_headers)
        per_kind: dict[str, dict[str, int]] = {}
        for h in submitted:
            row = per_kind.setdefault(kind_of.get(h, "?"), {"submitted": 0, "committed": 0})
            row["submitted"] += 1
            row["committed"] += h in commits
        first_submit = min(submitted.values()) if submitted else 0.0
        last_commit = max((commits[h] for h in committed), default=first_submit)
        window = [b for b in follower.blocks if b[0] >= measure_from and b[1] <= last_commit + 1e-3]
        return {
            "submitted": len(submitted), "committed": len(committed),
            "pending": fates.get("pending", 0), "late_committed": fates.get("committed", 0),
            "fates": dict(fates), "refused": dict(stats["refused"]),
            "retry_left": stats["retry_left"], "http_errors": stats["http_errors"],
            "backoffs": stats["backoffs"], "exhausted": stats["exhausted"],
            "submit_window_s": round(stats["submit_window_s"], 3),
            "elapsed_s": round(last_commit - first_submit, 3),
            "latencies_ms": _summary(lat),
            "blocks": len(window), "block_txs": sum(b[2] for b in window),
            "follow_errors": follower.errors,
            "presigned": sum(len(q) for q in queues) if mix is None else len(mix["txs"]),
            "mix": args.mix, "shares": {"transfer": 1.0} if mix is None else mix["shares"],
            "per_kind": dict(sorted(per_kind.items())), "failed_by_rule": dict(failed_by_rule),
            "outcomes_checked": checked,
        }


def _summary(lat: list[float]) -> dict:
    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else 0.0
    return {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": round(lat[-1], 1) if lat else 0.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The worker's command line (``bench/throughput.py`` fills it in)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--apis", required=True, help="comma-separated node API base URLs")
    p.add_argument("--chain-id", required=True)
    p.add_argument("--issuer-key", required=True)
    p.add_argument("--reader-key", required=True, help="key that signs block and tx-status reads (an auditor's)")
    p.add_argument("--senders", type=int, default=200)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--rate", type=float, default=0.0, help="open-loop tx/s (0: closed loop)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--window", type=int, default=1500, help="max txs submitted but not yet committed (0: none)")
    p.add_argument("--max-txs", type=int, default=60_000)
    p.add_argument("--drain-s", type=float, default=30.0)
    p.add_argument("--mix", choices=MIXES, default="transfers", help="the workload (bench/mix.py)")
    p.add_argument("--net-dir", default="", help="the network directory (keys of staff, admins, issuer)")
    p.add_argument("--wave", type=int, default=4 * WAVE, help="stories interleaved at once (mixes)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the load and print the result JSON."""
    args = parse_args(argv)
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
