"""The ``coin`` and ``service`` mixes of the load process: setup, scheduled submission, per-kind counts.

Theory of operation. Keys come from the network directory (each branch's staff members and admin, the
issuer; ``add_staff_keys`` gives each branch extra staff members in genesis before the nodes start);
customers are fresh keys. Every step of ``bench.mix`` is pre-signed before the measurement (nonces from each
key's ``next_nonce``), then ``submit_steps`` sends what the ``Scheduler`` releases: a sender's steps always to
the same node (staff and admin of branch b to node b, a customer to its branch's node), batches of up to
``--batch`` per node, all nodes at once; a step's commit (seen by the ``Follower``) releases the steps that
wait for it. At most ``--window`` txs are in flight. After the run, the outcome of every committed tx is read
back (``GET /v1/tx/{h}``, at most ``MAX_OUTCOME_QUERIES``): ``failed_by_rule`` counts them by reason.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path

import aiohttp

from bench.mix import Scheduler, Step, build_setup, build_stories, compute_shares, sign_steps
from ledger.genesis import load_genesis, save_genesis
from ledger.keys import KeyPair, load_key, save_key

RETRY_CODES = ("mempool_full", "sender_limit", "nonce_gap_too_large")  # "not now": sent again in order
MAX_OUTCOME_QUERIES = 5_000
STORY_TXS = {"coin": 11, "service": 9}


def add_staff_keys(net_dir: Path, per_branch: int) -> int:
    """Give every branch of a fresh (not yet started) network ``per_branch`` staff members in all: the extra
    ones are placed in genesis (role staff, the branch's placement) and saved as ``keys/staff-<k>.key``.
    Returns how many were added."""
    genesis = load_genesis(net_dir / "genesis.json")
    added: dict[bytes, str] = {}
    for validator in genesis.validators:
        for k in range(1, per_branch):
            key = KeyPair.generate()
            save_key(net_dir / validator.name / "keys" / f"staff-{k}.key", key, overwrite=True)
            added[key.public_key] = validator.name
    if added:
        roles = dict(genesis.roles)
        roles["staff"] = tuple(roles.get("staff", ())) + tuple(added)
        save_genesis(net_dir / "genesis.json", type(genesis)(
            chain_id=genesis.chain_id, genesis_time_ms=genesis.genesis_time_ms, validators=genesis.validators,
            roles=roles, policy=genesis.policy, extra=genesis.extra, branches={**genesis.branches, **added}))
    return len(added)


def load_network_keys(net_dir: Path) -> dict[str, KeyPair]:
    """issuer, staff:<b> (and staff:<b>.<k> for ``keys/staff-<k>.key``) and admin:<b> of every branch
    directory (in name order) of ``net_dir``."""
    branches = sorted(p.parent.parent.name for p in net_dir.glob("*/keys/staff.key"))
    keys = {"issuer": load_key(net_dir / branches[0] / "keys" / "issuer.key")}
    for b, name in enumerate(branches):
        keys[f"staff:{b}"] = load_key(net_dir / name / "keys" / "staff.key")
        keys[f"admin:{b}"] = load_key(net_dir / name / "keys" / "admin.key")
        for path in (net_dir / name / "keys").glob("staff-*.key"):
            keys[f"staff:{b}.{path.stem.partition('-')[2]}"] = load_key(path)
    return keys


def count_staff_per_branch(keys: dict[str, KeyPair], branches: int) -> int:
    """Staff members every branch has (the fewest of any branch; at least 1)."""
    counts = [sum(1 for name in keys if name == f"staff:{b}" or name.startswith(f"staff:{b}."))
              for b in range(branches)]
    return max(1, min(counts, default=1))


def node_of(sender: str, nodes: int) -> int:
    """The node a sender always submits to (its branch's node; the issuer's is node 0)."""
    _, _, index = sender.partition(":")
    return int(index.partition(".")[0]) % nodes if index else 0


async def submit_steps(session, apis: list[str], steps: list[Step], txs: list, args, follower, t_end: float,
                       submit_time: dict[str, float], refused: Counter, poll: bool = False,
                       rate: float = 0.0) -> dict:
    """Send the released steps until ``t_end`` (or all are sent); return counters. ``poll``: read new blocks
    here (before the measurement, when the follower's own task is not running yet).

    ``rate`` > 0 is an open loop: at most ``rate`` txs per second leave, a batch's worth (``args.batch``) at a
    time like the transfers' schedule; budget a dependency kept unused (a story's next step waits for its
    previous one to commit) is not saved up beyond two batches, so the schedule never bursts to catch up.
    0: as fast as the window allows (closed loop).
    """
    sched = Scheduler(steps)
    t_start = time.time()
    released = 0
    index = {tx.tx_hash.hex(): i for i, tx in enumerate(txs)}
    waiting: set[str] = set()  # accepted, not yet seen committed
    stats = Counter()
    from bench.load_worker import post_batch  # the worker's one HTTP poster

    async def post(node: int, items: list[int]) -> None:
        t0 = time.time()  # the client's submit time, as the transfers stamp it
        try:
            results = await post_batch(session, apis[node], [txs[i].raw for i in items])
        except (aiohttp.ClientError, asyncio.TimeoutError):
            stats["http_errors"] += 1
            for i in items:
                sched.retry(i)
            return
        for i, res in zip(items, results):
            err = res.get("error")
            h = txs[i].tx_hash.hex()
            if err is None or err["code"] == "duplicate_tx":
                submit_time.setdefault(h, t0)
                waiting.add(h)
                sched.accepted(i)
            elif err["code"] in RETRY_CODES:
                stats["backoffs"] += 1
                sched.retry(i)
            else:
                refused[err["code"]] += 1
                sched.accepted(i)  # a refusal is final: its sender goes on (its dependants never come)

    while time.time() < t_end and not sched.done():
        if poll:
            await follower.poll_once()
        for h in [h for h in waiting if h in follower.commit_time]:
            waiting.discard(h)
            sched.commit(index[h])
        room = args.window - len(waiting) if args.window > 0 else 10**9
        if rate > 0:
            allowed = int((time.time() - t_start) * rate) - released
            if allowed > 2 * args.batch:  # unused budget is not saved up: no catch-up burst
                released += allowed - 2 * args.batch
                allowed = 2 * args.batch
            if allowed < args.batch:
                await asyncio.sleep(min(0.005, (args.batch - allowed) / rate))
                continue
            room = min(room, allowed)
        ready = sched.take_ready(min(room, args.batch * len(apis))) if room > 0 else []
        released += len(ready)
        if not ready:
            await asyncio.sleep(0.005)
            continue
        by_node: dict[int, list[int]] = {}
        for i in ready:
            by_node.setdefault(node_of(steps[i].sender, len(apis)), []).append(i)
        await asyncio.gather(*(post(n, items) for n, items in by_node.items()))
    stats["unsent"] = sum(len(q) - sched.cursor[s] for s, q in sched.queues.items())
    return dict(stats)


async def read_nonces(session, apis, chain_id, keys: dict[str, KeyPair], read_headers) -> dict[str, int]:
    """Each network key's next nonce (signed reads by the key itself)."""
    out = {}
    for name, key in keys.items():
        path = f"/v1/accounts/{key.public_key.hex()}"
        async with session.get(apis[0] + path, headers=read_headers(key, chain_id, path)) as resp:
            doc = await resp.json()
        out[name] = doc.get("next_nonce", 1) if resp.status == 200 else 1
    return out


async def read_outcomes(session, apis, hashes: list[str], affinity: dict[str, int], reader, chain_id,
                        read_headers) -> tuple[Counter, int]:
    """Reasons of the committed txs that failed by a rule, and how many outcomes were read."""
    failed: Counter = Counter()
    checked = 0
    sem = asyncio.Semaphore(16)

    async def one(h: str) -> None:
        nonlocal checked
        path = f"/v1/tx/{h}"
        async with sem:
            try:
                async with session.get(apis[affinity.get(h, 0)] + path,
                                       headers=read_headers(reader, chain_id, path)) as resp:
                    doc = await resp.json()
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                return
        checked += 1
        if doc.get("outcome") == "failed":
            failed[doc.get("reason", "?")] += 1

    await asyncio.gather(*(one(h) for h in hashes[:MAX_OUTCOME_QUERIES]))
    return failed, checked


async def run_mix(args, session, apis: list[str], follower, reader, read_headers, eprint) -> dict:
    """Setup (waited for), then the measured stories; the result document's mix-specific part."""
    keys = load_network_keys(Path(args.net_dir))
    tag = os.urandom(3).hex()
    nonces = await read_nonces(session, apis, args.chain_id, keys, read_headers)
    setup = build_setup(args.mix, tag, int(time.time() * 1000))
    if setup:
        stxs = sign_steps(args.chain_id, setup, keys, nonces)
        sub: dict[str, float] = {}
        setup_refused: Counter = Counter()
        await submit_steps(session, apis, setup, stxs, args, follower, time.time() + 60, sub, setup_refused,
                           poll=True)
        if setup_refused:
            raise SystemExit(f"load: a setup tx was refused: {dict(setup_refused)} (nonces {nonces})")
        deadline = time.time() + 60
        while not all(tx.tx_hash.hex() in follower.commit_time for tx in stxs) and time.time() < deadline:
            await follower.poll_once()
            await asyncio.sleep(0.05)
        if not all(tx.tx_hash.hex() in follower.commit_time for tx in stxs):
            raise SystemExit("load: the setup txs were not committed within 60 s")
        failed, _ = await read_outcomes(session, apis, [t.tx_hash.hex() for t in stxs], {}, reader,
                                        args.chain_id, read_headers)
        if failed:
            raise SystemExit(f"load: a setup tx failed by a rule: {dict(failed)}")
        eprint(f"setup: {len(setup)} txs committed")
    stories = max(1, -(-args.max_txs // STORY_TXS[args.mix]))
    customers = [KeyPair.generate() for _ in range(stories)]
    keys.update({f"customer:{i}": k for i, k in enumerate(customers)})
    t0 = time.time()
    steps = build_stories(args.mix, stories, tag, len(apis), [k.public_key for k in customers],
                          wave=args.wave, staff_per_branch=count_staff_per_branch(keys, len(apis)))
    txs = sign_steps(args.chain_id, steps, keys, nonces)
    eprint(f"pre-signed {len(txs)} txs of {stories} {args.mix} stories in {time.time() - t0:.1f} s")
    return {"steps": steps, "txs": txs, "shares": compute_shares(steps)}
