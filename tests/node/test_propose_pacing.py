"""When the proposer cuts the next block: QBFT R0's block interval counts from the parent block.

The driver's PROPOSE timer of a new height waits what is left of the block interval since the parent's
timestamp when runnable txs wait, nothing when a full block waits, and the idle pace when none waits. A parent
whose consensus outlasted the interval is followed at once (no idle interval on top of the round).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from consensus.events import StartTimer
from consensus.replica import TIMER_PROPOSE
from node.driver import Driver

INTERVAL_MS = 50
TARGET = 100


class Blocks:
    """The driver's view of the pipeline: a chosen runnable count, parent age and due time of a sweep."""

    def __init__(self, pending: int = 0, parent_age_ms: float = 0.0, due_in_ms: float | None = None) -> None:
        self.pending, self.parent_age_ms, self.due_in_ms = pending, parent_age_ms, due_in_ms

    def pending_count(self) -> int:
        return self.pending

    def get_sweep_due_in_ms(self) -> float | None:
        return self.due_in_ms

    def get_block_target(self) -> int:
        return TARGET

    def get_last_commit_time(self) -> float:
        return time.monotonic()

    def get_parent_age_ms(self) -> float:
        return self.parent_age_ms


def make_driver(blocks: Blocks) -> Driver:
    return Driver(wal=None, net=None, post=lambda event: None, blocks=blocks, empty_block_interval_ms=10_000)


@pytest.mark.parametrize("pending, parent_age_ms, expected_ms", [
    (5, 0.0, 50),            # the parent was just made: the whole interval
    (5, 30.0, 20),           # 30 ms of the interval went by since the parent: 20 ms left
    (5, 49.0, 1),
    (5, 400.0, 0),           # the parent's consensus outlasted the interval: cut the next block now
    (5, -500.0, 50),         # a parent stamped ahead of our clock: never more than the interval
    (TARGET, 0.0, 0),        # a full block waits: now, whatever the parent's age
    (0, 400.0, 10_000),      # nothing runnable: the idle pace, not the parent's age
])
def test_the_block_interval_counts_from_the_parent_block(pending, parent_age_ms, expected_ms):
    driver = make_driver(Blocks(pending, parent_age_ms))
    assert driver.compute_propose_delay(INTERVAL_MS) == pytest.approx(expected_ms, abs=1)


def _remaining_ms(driver: Driver) -> float:
    handle = driver._timers[TIMER_PROPOSE]
    return (handle.when() - asyncio.get_running_loop().time()) * 1000.0


@pytest.mark.asyncio
async def test_a_tx_that_wakes_a_held_timer_waits_only_what_is_left_of_the_interval_since_the_parent():
    blocks = Blocks(pending=0, parent_age_ms=20.0)
    driver = make_driver(blocks)
    try:
        driver.process_start_timer(StartTimer(7, 0, TIMER_PROPOSE, INTERVAL_MS))
        assert _remaining_ms(driver) > 5_000  # held at the idle pace
        blocks.pending = 2
        driver.on_txs_admitted()
        assert 0 <= _remaining_ms(driver) <= INTERVAL_MS - 20 + 2
        blocks.parent_age_ms = 10_000.0  # an older parent: the re-arm fires at once
        blocks.pending = 3
        driver.on_txs_admitted()
        assert _remaining_ms(driver) <= 1
    finally:
        driver.cancel_timers()


@pytest.mark.asyncio
async def test_a_tx_arriving_right_after_a_fresh_parent_does_not_cut_the_block_early():
    blocks = Blocks(pending=0, parent_age_ms=0.0)
    driver = make_driver(blocks)
    try:
        driver.process_start_timer(StartTimer(7, 0, TIMER_PROPOSE, INTERVAL_MS))
        blocks.pending = 1
        driver.on_txs_admitted()
        assert INTERVAL_MS - 5 <= _remaining_ms(driver) <= INTERVAL_MS + 1
    finally:
        driver.cancel_timers()


def test_the_pipeline_measures_the_parent_age_from_the_head_block_it_opened_with_and_each_commit(tmp_path):
    from ledger.storage import Store
    from node.clock import now_ms
    from node.service import NodeService
    from tests.ledger.governance_world import STAFF_1
    from tests.node.events_helpers import commit
    from tests.node.test_read_access import build_chain
    from tests.node.test_service import FAST
    from tests.strategies import ISSUER, VALIDATORS

    built = build_chain(tmp_path / "db")
    svc = NodeService(key=VALIDATORS[0], genesis=built["genesis"], store=Store.open(tmp_path / "db"), options=FAST)
    try:
        head = svc.store.get_header(svc.store.head().height)
        assert svc.pipeline.get_parent_age_ms() == pytest.approx(now_ms() - head.timestamp_ms, abs=50)
        # a block stamped 10 minutes ahead of the head: the age follows the committed block, not the open
        commit(svc, (ISSUER, "mint", [STAFF_1.public_key, 5]), after_ms=600_000)
        committed = svc.store.get_header(svc.store.head().height)
        assert committed.timestamp_ms == head.timestamp_ms + 600_000
        assert svc.pipeline.get_parent_age_ms() == pytest.approx(now_ms() - committed.timestamp_ms, abs=50)
    finally:
        svc.close()
