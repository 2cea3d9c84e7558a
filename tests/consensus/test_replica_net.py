"""Several replicas over the fake link: decisions, certificates, crashed proposers, round-change storms."""

import pytest

from consensus.events import TIMER_ROUND, Restarted, TimerExpired
from consensus.replica import Replica
from ledger.block import quorum, verify_certificate
from tests.consensus.fakenet import CHAIN, FakeNet


def _assert_agreement(net, heights):
    live = [i for i in range(len(net.replicas)) if i not in net.silent]
    for h in heights:
        blocks = set()
        for i in live:
            d = next((d for d in net.decided[i] if d.block.height == h), None)
            assert d is not None, f"replica {i} did not decide height {h}"
            verify_certificate(CHAIN, h, d.block.hash, d.seals, net.validators)
            assert len(d.seals) == quorum(len(net.validators))
            blocks.add(d.block.hash)
        assert len(blocks) == 1, f"height {h}: replicas decided {len(blocks)} different blocks"


@pytest.mark.parametrize("n", [4, 5, 7, 10])
def test_happy_path_decides_several_heights_in_round_zero(n):
    net = FakeNet(n)
    net.start()
    net.run_until_height(6)
    _assert_agreement(net, range(1, 6))
    assert all(d.round == 0 for ds in net.decided.values() for d in ds)
    assert all(not r.evidence and not r.fault_counts for r in net.replicas)


def test_decided_chain_links_each_block_to_its_parent():
    net = FakeNet(4)
    net.start()
    net.run_until_height(4)
    chain = [d.block for d in net.decided[0]]
    assert [b.height for b in chain] == [1, 2, 3]
    assert all(chain[k].header.prev_hash == chain[k - 1].hash for k in range(1, 3))


@pytest.mark.parametrize("n", [4, 7])
def test_crashed_proposers_are_skipped_by_round_change(n):
    net = FakeNet(n)
    f = (n - 1) // 3
    net.silent = {(1 + k) % n for k in range(f)}  # proposer(1, 0) and the next f-1
    net.start()
    net.run_until_height(4)
    _assert_agreement(net, range(1, 4))
    assert max(d.round for d in net.decided[next(iter(set(range(n)) - net.silent))]) >= 1


@pytest.mark.parametrize("n", [4, 7, 10])
def test_round_change_storm_with_f_silent_replicas_converges(n):
    net = FakeNet(n, base_timeout_ms=100)
    f = (n - 1) // 3
    net.silent = set(range(n - f, n))
    net.start()
    # Drive live replicas into different rounds while they cannot hear each other.
    net.connected = [False] * n
    net.fire_propose(list(range(n - f)))
    for i in range(n - f):
        for r in range(i % 4):
            net.deliver(i, TimerExpired(1, r, TIMER_ROUND))
    net.queue.clear()
    net.connected = [True] * n
    for ts in net.deadlines.values():
        ts.clear()
    for i in range(n - f):
        r = net.replicas[i]
        net.deliver(i, TimerExpired(1, r.round, TIMER_ROUND))  # each one times out once more, now heard
    fires = net.run_until_height(3, max_timer_fires=400)
    _assert_agreement(net, [1, 2])
    assert fires < 400


def test_prepared_block_survives_round_change_and_is_decided():
    net = FakeNet(4)
    net.start()
    net.fire_propose()
    # Let PREPAREs flow but cut everyone off before COMMITs are delivered.
    for _ in range(200):
        if all(r.prepared_round == 0 for r in net.replicas):
            break
        i, ev = net.queue.popleft()
        net.deliver(i, ev)
    prepared = {r.prepared_block.hash for r in net.replicas}
    assert len(prepared) == 1
    net.queue.clear()
    for ts in net.deadlines.values():
        ts.pop("propose", None)
    net.run_until_height(2)
    assert {d.block.hash for ds in net.decided.values() for d in ds} == prepared
    assert all(ds[0].round >= 1 for ds in net.decided.values())


def test_replica_restarted_from_its_wal_rejoins_and_decides():
    net = FakeNet(4)
    net.start()
    net.run_until_height(3)
    wal = net.wal[2]
    r = net.replicas[2]
    net.replicas[2] = Replica(net.config, net.keys[2], r.height, r._prev_hash)
    net.deadlines[2].clear()
    net.deliver(2, Restarted(wal))
    net.run_until_height(6)
    _assert_agreement(net, range(3, 6))
