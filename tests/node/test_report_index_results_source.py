"""The report index can take recent blocks' results from memory instead of decoding them from the store."""

from __future__ import annotations

from node import queries
from tests.node.test_queries import LocalChain


def test_report_index_uses_in_memory_results_and_counts_the_same_as_from_the_store(tmp_path):
    c = LocalChain(tmp_path / "db")
    customer = c.admin.public_key  # any account: the issuer mints to it
    kept = {}
    for amount in (100, 250):
        height = c.store.head().height + 1
        kept[height] = c.block(c.tx(c.issuer, "mint", [customer, amount]))
    asked = []

    def results_of(height):
        asked.append(height)
        return kept.get(height)

    from_memory = queries.ReportIndex(c.store, results_of=results_of)
    from_store = queries.ReportIndex(c.store)
    calls = []
    real_get_results = c.store.get_results
    c.store.get_results = lambda h: calls.append(h) or real_get_results(h)  # type: ignore[method-assign]
    try:
        from_memory.catch_up()
        assert calls == [] and sorted(asked) == sorted(kept)
        from_store.catch_up()
        assert sorted(calls) == sorted(kept)
    finally:
        c.store.get_results = real_get_results  # type: ignore[method-assign]
        c.store.close()
    assert from_memory._counters == from_store._counters and from_memory._counters
