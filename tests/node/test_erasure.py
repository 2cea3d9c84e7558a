"""The erasure follower: a committed ``erase-customer-data`` reaches the vault callback, from the store or fed by
commits, without the analytics index."""

from __future__ import annotations

from node.erasure import ErasureFollower


def test_erasure_event_is_passed_to_the_vault_callback(story):
    c, s = story
    erased = []
    c.block(c.tx(s["clerk"], "erase-customer-data", [s["alice"].public_key]))
    ErasureFollower(c.store, erased.append).catch_up()
    assert erased == [s["alice"].public_key]


def test_a_follower_fed_by_commits_erases_without_reading_the_block_from_the_store(story):
    c, s = story
    erased = []
    follower = ErasureFollower(c.store, erased.append)
    assert follower.catch_up() == c.store.head().height and erased == []  # the story erases nobody
    height = c.store.head().height + 1
    follower.on_commit(height, c.block(c.tx(s["clerk"], "erase-customer-data", [s["alice"].public_key])))
    calls = []
    real_get_results = c.store.get_results
    c.store.get_results = lambda h: calls.append(h) or real_get_results(h)  # type: ignore[method-assign]
    try:
        assert follower.catch_up() == height
    finally:
        c.store.get_results = real_get_results  # type: ignore[method-assign]
    assert erased == [s["alice"].public_key] and calls == []
