"""Memory and event-loop bounds of the commit followers at large blocks: the committer keeps a bounded number
of recent results, the erasure follower queues a bounded number, and analytics and erasure catch up in steps of
a bounded number of txs, reaching exactly what one unbounded pass reaches."""

from __future__ import annotations

from ledger.results import TxResult
from node import analytics, committer, erasure
from node.analytics import ReportIndex
from node.committer import Committer
from node.erasure import ErasureFollower


def _results(height: int, count: int) -> list[TxResult]:
    return [TxResult(height.to_bytes(16, "big") + i.to_bytes(16, "big"), 0, "ok", ()) for i in range(count)]


def test_the_committer_keeps_at_most_the_cap_of_recent_results_and_always_the_newest_block(monkeypatch):
    monkeypatch.setattr(committer, "MAX_CACHED_RESULT_TXS", 100)
    c = Committer(store=None, mempool=None, metrics=None)  # type: ignore[arg-type]
    for height, count in enumerate([30, 30, 30, 30, 150, 10, 10], start=1):
        c._cache_results(height, _results(height, count))
        held = [h for h in range(1, height + 1) if c.get_recent_results(h) is not None]
        assert height in held  # the newest block is always served from memory
        total = sum(len(c.get_recent_results(h)) for h in held)
        assert total <= 100 or held == [height]
        assert held == list(range(held[0], height + 1))  # the oldest go first
    assert [h for h in range(1, 8) if c.get_recent_results(h) is not None] == [6, 7]  # 150 + 10 > 100: 5 went


def test_the_erasure_feed_queues_at_most_its_cap_of_results_and_reads_the_rest_from_the_store(story, monkeypatch):
    c, s = story
    monkeypatch.setattr(erasure, "MAX_FED_TXS", 1)
    erased = []
    follower = ErasureFollower(c.store, erased.append)
    follower.catch_up()
    height = c.store.head().height + 1
    results = c.block(c.tx(s["clerk"], "erase-customer-data", [s["alice"].public_key]),
                      c.tx(c.issuer, "mint", [s["alice"].public_key, 5]))
    follower.on_commit(height, results)  # two results: over the cap, not queued
    assert follower._fed_txs == 0 and not follower._fed
    assert follower.catch_up() == height and erased == [s["alice"].public_key]  # read from the store instead


def test_catch_up_in_steps_of_a_few_txs_counts_what_one_pass_counts(story):
    c, _ = story
    whole = ReportIndex(c.store)
    whole.catch_up()
    stepped, steps = ReportIndex(c.store), 0
    while stepped.catch_up(max_txs=1) < c.store.head().height:
        steps += 1
        assert steps < 1000
    assert steps > 1 and stepped.report() == whole.report()
    erased_whole, erased_steps = [], []
    ErasureFollower(c.store, erased_whole.append).catch_up()
    follower, steps = ErasureFollower(c.store, erased_steps.append), 0
    while follower.catch_up(max_txs=1) < c.store.head().height:
        steps += 1
        assert steps < 1000
    assert steps > 1 and erased_steps == erased_whole


def test_the_report_follower_indexes_a_bounded_number_of_txs_per_step(monkeypatch):
    import asyncio

    calls = []

    class Index:
        height = 0

        def catch_up(self, max_blocks, max_txs):
            calls.append((max_blocks, max_txs))
            self.height += 1
            return self.height

    monkeypatch.setattr(analytics, "FOLLOW_PERIOD_S", 0.01)
    index = Index()

    async def run() -> None:
        task = asyncio.create_task(analytics.follow(index, lambda: False))
        while index.height < 3:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(asyncio.wait_for(run(), 5))
    assert calls[:3] == [(analytics.FOLLOW_BATCH, analytics.FOLLOW_TXS)] * 3
