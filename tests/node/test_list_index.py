"""The node-local ticket and order lists: built from state, kept up from commits, paged with stable cursors."""

from __future__ import annotations

import pytest

from node.list_index import BadCursor, ListIndex, decode_cursor, encode_cursor, order_lists, ticket_lists
from tests.node.list_world import H, ListWorld
from tests.ledger.governance_world import STAFF_1
from tests.strategies import ALICE, BOB


@pytest.fixture
def world(tmp_path):
    w = ListWorld(str(tmp_path / "db"))
    yield w
    w.store.close()


def all_pages(index: ListIndex, names, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    for _ in range(100):
        page = index.page(names, limit, None if cursor is None else decode_cursor(cursor))
        pages.append(list(page.ids))
        cursor = page.next_cursor
        if cursor is None:
            return pages
    raise AssertionError("paging did not end")


def built(world) -> ListIndex:
    index = ListIndex(world.store)
    assert index.build()
    return index


def test_a_branch_queue_lists_its_tickets_newest_first_and_no_other_branchs(world):
    index = built(world)
    page = index.page(ticket_lists("branch-1", None, ()), 50)
    assert page.ids == ("A-T5", "A-T4", "A-T3", "A-T2", "A-T1") and page.next_cursor is None and page.total == 5
    assert index.page(ticket_lists("branch-2", None, ()), 50).ids == ("B-T1",)
    assert index.page(ticket_lists("branch-3", None, ()), 50).ids == ()


def test_a_state_filter_shows_only_tickets_in_those_states(world):
    index = built(world)
    assert index.page(ticket_lists("branch-1", None, ("open",)), 50).ids == ("A-T5", "A-T4", "A-T1")
    both = index.page(ticket_lists("branch-1", None, ("in_progress", "resolved")), 50)
    assert both.ids == ("A-T3", "A-T2") and both.total == 2


def test_a_customers_lists_hold_their_own_tickets_and_orders_only(world):
    index = built(world)
    assert index.page(ticket_lists(None, BOB.public_key, ()), 50).ids == ("B-T1",)
    assert index.page(order_lists(ALICE.public_key), 50).ids == ("A-O3", "A-O2", "A-O1")
    assert index.page(order_lists(BOB.public_key), 50).ids == ("B-O1",)
    assert index.page(ticket_lists(None, None, ()), 50).total == 6  # every ticket


def test_paging_by_cursor_shows_every_ticket_once_in_order(world):
    index = built(world)
    pages = all_pages(index, ticket_lists("branch-1", None, ()), 2)
    assert pages == [["A-T5", "A-T4"], ["A-T3", "A-T2"], ["A-T1"]]


def test_a_cursor_keeps_its_place_when_tickets_are_opened_and_change_state_between_pages(world):
    index = built(world)
    names = ticket_lists(None, ALICE.public_key, ())
    first = index.page(names, 2)
    world.commit((ALICE, "open-ticket", ["A-T6", "inquiry", 1, "", H]),
                 (STAFF_1, "respond-ticket", ["A-T1", H]))
    assert index.catch_up() == world.store.head().height
    rest = index.page(names, 10, decode_cursor(first.next_cursor))
    assert first.ids + rest.ids == ("A-T5", "A-T4", "A-T3", "A-T2", "A-T1")  # nothing skipped or repeated
    assert index.page(names, 1).ids == ("A-T6",)  # a fresh first page shows the new one


def test_a_committed_state_change_moves_the_ticket_between_state_lists(world):
    index = built(world)
    world.commit((STAFF_1, "respond-ticket", ["A-T4", H]))
    index.catch_up()
    assert "A-T4" not in index.page(ticket_lists("branch-1", None, ("open",)), 50).ids
    assert "A-T4" in index.page(ticket_lists("branch-1", None, ("in_progress",)), 50).ids
    assert index.page(ticket_lists("branch-1", None, ()), 50).total == 5


def test_a_build_in_small_steps_with_commits_in_between_converges_to_the_head(world):
    index = ListIndex(world.store)
    assert not index.build(max_records=1) and index.height is None
    assert index.catch_up() is None  # not before the build is done
    world.commit((STAFF_1, "create-order", ["A-O4", ALICE.public_key, 4000, "EUR", H]),
                 (STAFF_1, "respond-ticket", ["A-T5", H]))
    for _ in range(100):
        if index.build(max_records=1):
            break
    index.catch_up()
    assert index.height == world.store.head().height
    assert index.page(order_lists(ALICE.public_key), 50).ids == ("A-O4", "A-O3", "A-O2", "A-O1")
    assert index.page(ticket_lists("branch-1", None, ("open",)), 50).ids == ("A-T4", "A-T1")


def test_a_rated_and_closed_ticket_is_listed_once_under_its_new_state(world):
    index = built(world)
    world.commit((ALICE, "submit-feedback", ["ticket", "A-T3", 4, H]))
    world.commit((ALICE, "close-ticket", ["A-T3"]))
    index.catch_up()
    assert index.page(ticket_lists(None, ALICE.public_key, ("closed",)), 50).ids == ("A-T3",)
    assert index.page(ticket_lists(None, ALICE.public_key, ()), 50).ids.count("A-T3") == 1
    assert "A-T3" not in index.page(ticket_lists(None, ALICE.public_key, ("resolved",)), 50).ids


@pytest.mark.parametrize("text", ["", "!!!", encode_cursor((1, "x"))[:-2] + "@@", "a" * 201,
                                  "MTIzOg", "eDpB"])  # "123:" (no id), "x:A" (no ms)
def test_a_cursor_no_page_handed_out_is_refused(text):
    with pytest.raises(BadCursor):
        decode_cursor(text)


def test_a_cursor_round_trips_any_id():
    for key in ((0, "a"), (1_700_000_000_000, "with:colon & space?#"), (2**62, "é" * 32)):
        assert decode_cursor(encode_cursor(key)) == key


@pytest.mark.asyncio
async def test_the_follower_builds_the_index_and_keeps_up_with_commits_on_its_own(world, monkeypatch):
    import asyncio

    from node import list_index
    monkeypatch.setattr(list_index, "FOLLOW_PERIOD_S", 0.01)
    index = ListIndex(world.store)
    task = asyncio.create_task(list_index.follow(index, lambda: False))
    try:
        for _ in range(200):  # bounded: 2 s
            if index.height is not None:
                break
            await asyncio.sleep(0.01)
        built_at = index.height
        world.commit((ALICE, "open-ticket", ["A-T7", "suggestion", 1, "", H]))
        assert built_at == world.store.head().height - 1
        for _ in range(200):  # bounded: 2 s
            if index.height == world.store.head().height:
                break
            await asyncio.sleep(0.01)
        assert index.height == world.store.head().height
        assert index.page(ticket_lists("branch-1", None, ()), 1).ids == ("A-T7",)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
