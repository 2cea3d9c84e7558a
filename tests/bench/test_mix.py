"""The throughput bench's coin and service mixes: every tx the scheduler releases commits with status 0."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.mix import Scheduler, Step, build_setup, build_stories, compute_shares, sign_steps
from bench.mix_load import add_staff_keys, count_staff_per_branch, load_network_keys, node_of
from cli.network import init_network
from ledger.chain import build_block, genesis_block
from ledger.genesis import load_genesis
from ledger.keys import KeyPair, load_key
from ledger.smt import MemoryNodes
from ledger.state import MemoryState

BRANCHES = 4


def network_keys(net: Path, names: list[str]) -> dict[str, KeyPair]:
    keys = {"issuer": load_key(net / names[0] / "keys" / "issuer.key")}
    for b, name in enumerate(names):
        keys[f"staff:{b}"] = load_key(net / name / "keys" / "staff.key")
        keys[f"admin:{b}"] = load_key(net / name / "keys" / "admin.key")
    return keys


def run_on_memory_chain(tmp_path: Path, mix: str, stories: int, staff_per_branch: int = 1) -> tuple[Counter, list]:
    """Play setup then stories through ``Scheduler`` on a one-proposer chain; return kinds and failures."""
    now_ms = 1_700_000_000_000
    summary = init_network(tmp_path / "net", BRANCHES, base_port=27900, chain_id="carecoin-bench", now_ms=now_ms)
    add_staff_keys(summary.dir, staff_per_branch)
    genesis = load_genesis(summary.dir / "genesis.json")
    block, execution = genesis_block(genesis)
    state, nodes, head = MemoryState(execution.state_writes), MemoryNodes(execution.smt_nodes), block.header
    keys = network_keys(summary.dir, [b.name for b in summary.branches]) if staff_per_branch == 1 \
        else load_network_keys(summary.dir)
    customers = [KeyPair.generate() for _ in range(stories)]
    keys.update({f"customer:{i}": k for i, k in enumerate(customers)})
    nonces: dict[str, int] = {}
    kinds: Counter = Counter()
    failed = []
    ts = max(now_ms, head.timestamp_ms) + 1000
    for steps in (build_setup(mix, "t1", ts), build_stories(mix, stories, "t1", BRANCHES,
                                                             [k.public_key for k in customers],
                                                             staff_per_branch=staff_per_branch)):
        txs = sign_steps(summary.chain_id, steps, keys, nonces)
        sched = Scheduler(steps)
        for _ in range(len(steps) + 1):  # one block per round: bounded by the step count
            if sched.done():
                break
            ready = []
            while batch := sched.take_ready(10_000):  # a sender's later steps follow once accepted
                for i in batch:
                    sched.accepted(i)
                ready += batch
            assert ready, "the scheduler is stuck"
            ts += 500
            execution, rejected = build_block(state, nodes, head, [txs[i] for i in ready], ts,
                                              genesis.validators[0].public_key)
            assert rejected == [], [(tx.body.kind, str(exc)) for tx, exc in rejected]
            for i, result in zip(ready, execution.results):
                kinds[steps[i].kind] += 1
                if result.status != 0:
                    failed.append((steps[i].kind, result.reason))
                sched.commit(i)
            state = MemoryState(state.data)
            state.apply(execution.state_writes)
            nodes.put_many(execution.smt_nodes)
            head = execution.header
        assert sched.done()
    return kinds, failed


@pytest.mark.parametrize("mix", ["coin", "service"])
def test_every_tx_of_the_mix_commits_valid(tmp_path, mix):
    stories = 60  # more than one wave (50), every branch
    kinds, failed = run_on_memory_chain(tmp_path, mix, stories)
    assert failed == []
    per_story = 11 if mix == "coin" else 9
    assert sum(kinds.values()) == stories * per_story + (4 if mix == "coin" else 0)


def test_shares_are_those_the_docstring_states():
    customers = [bytes([i]) * 32 for i in range(1, 11)]
    coin = compute_shares(build_stories("coin", 10, "x", BRANCHES, customers))
    assert coin["transfer"] == coin["create-order"] == round(2 / 11, 3) and coin["mint"] == round(1 / 11, 3)
    service = compute_shares(build_stories("service", 10, "x", BRANCHES, customers))
    assert set(service.values()) == {round(1 / 9, 3)} and len(service) == 9


def test_a_step_waits_for_the_steps_of_other_senders_it_needs():
    steps = build_stories("service", 1, "x", BRANCHES, [bytes(32)])
    sched = Scheduler(steps)
    first = sched.take_ready(100)
    assert [steps[i].kind for i in first] == ["register-customer"]  # the customer's pay waits for the order
    assert sched.take_ready(100) == []  # the staff's next step waits for the node's answer
    sched.accepted(first[0])
    assert sched.take_ready(100) == []  # create-order waits for the registration to commit
    sched.commit(first[0])
    assert [steps[i].kind for i in sched.take_ready(100)] == ["create-order"]


@pytest.mark.parametrize("mix", ["coin", "service"])
def test_stories_served_by_several_staff_members_per_branch_commit_valid(tmp_path, mix):
    kinds, failed = run_on_memory_chain(tmp_path, mix, stories=24, staff_per_branch=3)
    assert failed == []
    assert sum(kinds.values()) == 24 * (11 if mix == "coin" else 9) + (4 if mix == "coin" else 0)


def test_extra_staff_members_are_placed_in_their_branch_and_submit_to_its_node(tmp_path):
    summary = init_network(tmp_path / "net", BRANCHES, base_port=27900, chain_id="carecoin-bench")
    assert add_staff_keys(summary.dir, 3) == 2 * BRANCHES
    keys = load_network_keys(summary.dir)
    genesis = load_genesis(summary.dir / "genesis.json")
    assert count_staff_per_branch(keys, BRANCHES) == 3
    for b, branch in enumerate(summary.branches):
        for name in (f"staff:{b}", f"staff:{b}.1", f"staff:{b}.2"):
            assert keys[name].public_key in genesis.roles["staff"]
            assert genesis.get_branch_of(keys[name].public_key) == branch.name
            assert node_of(name, BRANCHES) == b
    steps = build_stories("service", 12, "t", BRANCHES, [KeyPair.generate().public_key for _ in range(12)],
                          staff_per_branch=3)
    assert {s.sender for s in steps if s.sender.startswith("staff:")} == {
        f"staff:{b}{suffix}" for b in range(BRANCHES) for suffix in ("", ".1", ".2")}


class _InstantFollower:
    """Every posted tx counts as committed at once: only the release schedule limits the sender."""

    def __init__(self) -> None:
        self.commit_time: dict[str, float] = {}


@pytest.mark.parametrize("rate, low, high", [(400.0, 300, 520), (0.0, 1500, 10**9)])
def test_an_open_loop_mix_sends_at_the_offered_rate_not_as_fast_as_the_window_allows(monkeypatch, rate, low, high):
    import asyncio
    import time
    from collections import Counter
    from types import SimpleNamespace

    import bench.load_worker
    from bench.mix_load import submit_steps

    steps = [Step(f"s{i % 50}", "transfer", (i,)) for i in range(4000)]
    txs = [SimpleNamespace(tx_hash=i.to_bytes(32, "big"), raw=b"x") for i in range(4000)]
    follower = _InstantFollower()
    posted: list[int] = []

    async def fake_post(session, api, raws):
        posted.append(len(raws))
        await asyncio.sleep(0.001)
        return [{"status": "pending"} for _ in raws]

    monkeypatch.setattr(bench.load_worker, "post_batch", fake_post)
    submit_time: dict[str, float] = {}

    async def run():
        async def commit_all():
            while True:  # the "chain" commits whatever was submitted, every 10 ms
                for h in list(submit_time):
                    follower.commit_time.setdefault(h, time.time())
                await asyncio.sleep(0.01)
        committer = asyncio.create_task(commit_all())
        try:
            return await submit_steps(None, ["a", "b"], steps, txs, SimpleNamespace(window=1500, batch=50),
                                      follower, time.time() + 1.0, submit_time, Counter(), rate=rate)
        finally:
            committer.cancel()

    asyncio.run(run())
    assert low <= len(submit_time) <= high, (len(submit_time), rate)
    if rate:
        assert max(posted) <= 2 * 50  # a batch at a time (two when a dependency held one back), never a burst
