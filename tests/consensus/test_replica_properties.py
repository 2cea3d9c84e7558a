"""Property: under any delivery order, duplicates and (bounded) drops, replicas never decide different
blocks, every decision carries a valid certificate, and once drops stop every replica decides."""

from hypothesis import given, settings, strategies as st

from ledger.block import verify_certificate
from tests.consensus.fakenet import CHAIN, FakeNet


def _check_safety(net):
    by_height = {}
    for ds in net.decided.values():
        for d in ds:
            verify_certificate(CHAIN, d.block.height, d.block.hash, d.seals, net.validators)
            by_height.setdefault(d.block.height, set()).add(d.block.hash)
    assert all(len(v) == 1 for v in by_height.values()), by_height


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([4, 5, 7]), st.data())
def test_any_order_with_drops_and_duplicates_stays_safe_and_live_after_drops_stop(n, data):
    net = FakeNet(n, base_timeout_ms=50, max_timeout_ms=800)
    net.start()
    for step in range(300):  # chaotic phase: reorder, drop, duplicate, fire timers early
        if net.queue and data.draw(st.integers(0, 9), label="timer?") != 0:
            k = data.draw(st.integers(0, len(net.queue) - 1), label="pick")
            net.queue.rotate(-k)
            i, ev = net.queue.popleft()
            net.queue.rotate(k)
            fate = data.draw(st.integers(0, 9), label="fate")
            if fate == 0:
                continue  # dropped
            if fate == 1:
                net.queue.append((i, ev))  # duplicated (delivered again later)
            net.deliver(i, ev)
        elif not net.advance(drain=False):
            break
        if step % 50 == 0:
            _check_safety(net)
    goal = max(r.height for r in net.replicas) + 1
    net.run_until_height(goal, max_timer_fires=600)
    _check_safety(net)
    assert all(r.buffered_count() <= n * net.config.max_buffered_per_signer for r in net.replicas)
