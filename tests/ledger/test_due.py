"""Due queues (``ledger.due``) and the range reads under them (``scan`` on every state reader)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from ledger import due
from ledger.state import MemoryState, Overlay, merge_scan
from ledger.storage import P_STATE, Store
from node.pipeline import PendingState


def _queue(reader) -> list[tuple[int, bytes]]:
    return due.get_due(reader, due.QUEUE_EXPIRY, 2**64 - 1, 1000)


def test_entries_come_due_in_time_order_and_only_up_to_the_block_time():
    overlay = Overlay(MemoryState())
    for at, subject in [(5, b"b"), (3, b"z"), (9, b"c"), (3, b"a")]:
        due.schedule(overlay, due.QUEUE_EXPIRY, at, subject)
    due.schedule(overlay, due.QUEUE_SLA, 1, b"t1")

    assert due.get_due(overlay, due.QUEUE_EXPIRY, 5, 10) == [(3, b"a"), (3, b"z"), (5, b"b")]
    assert due.get_due(overlay, due.QUEUE_EXPIRY, 2, 10) == []
    assert due.get_due(overlay, due.QUEUE_EXPIRY, 9, 2) == [(3, b"a"), (3, b"z")]  # bounded
    assert due.get_next_due(overlay, due.QUEUE_EXPIRY) == 3
    assert due.get_next_due(overlay, due.QUEUE_SLA) == 1  # queues never mix


def test_unscheduled_and_rescheduled_entries_are_seen_through_every_layer(tmp_path):
    base = MemoryState()
    first = Overlay(base)
    due.schedule(first, due.QUEUE_EXPIRY, 3, b"a")
    due.schedule(first, due.QUEUE_EXPIRY, 4, b"b")
    base.apply(first.get_changes())
    pending = Overlay(base)
    due.unschedule(pending, due.QUEUE_EXPIRY, 3, b"a")
    due.schedule(pending, due.QUEUE_EXPIRY, 3, b"a")  # idempotent: one entry
    due.schedule(pending, due.QUEUE_EXPIRY, 2, b"c")
    due.unschedule(pending, due.QUEUE_EXPIRY, 4, b"b")

    store = Store.open(tmp_path / "db")
    try:
        for key, value in base.data.items():
            store._db.put(P_STATE + key, value)  # committed state, as a block commit leaves it
        layered = Overlay(PendingState(store, pending.get_changes()))
        assert _queue(layered) == [(2, b"c"), (3, b"a")]
        assert _queue(Overlay(store)) == [(3, b"a"), (4, b"b")]
    finally:
        store.close()


def test_an_entry_due_at_the_last_representable_time_is_still_read():
    overlay = Overlay(MemoryState())
    due.schedule(overlay, due.QUEUE_EXPIRY, 2**64 - 1, b"\xff\xff")
    due.schedule(overlay, due.QUEUE_SLA, 0, b"x")
    assert _queue(overlay) == [(2**64 - 1, b"\xff\xff")]


_KEYS = st.binary(min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(base=st.dictionaries(_KEYS, st.binary(min_size=1, max_size=2), max_size=12),
       writes=st.dictionaries(_KEYS, st.none() | st.binary(min_size=1, max_size=2), max_size=12),
       start=_KEYS, stop=_KEYS, limit=st.integers(0, 14))
def test_merge_scan_equals_applying_the_writes_then_scanning(base, writes, start, stop, limit):
    expected = MemoryState(base)
    expected.apply(writes)
    assert merge_scan(MemoryState(base), writes, start, stop, limit) == expected.scan(start, stop, limit)
