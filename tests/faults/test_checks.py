"""The campaign's checks, against a fake cluster: what they ask each node, and what they call lost."""

from __future__ import annotations

import asyncio

from tests.faults.checks import ChainView, check_forks, check_txs

TXS = [bytes([i]) * 32 for i in range(1, 7)]


class FakeCluster:
    """Two nodes holding the same chain: block h holds TXS[2h-2:2h]; counts every signed GET."""

    def __init__(self, height: int = 3) -> None:
        self.names = ["branch-1", "branch-2"]
        self.heights = [height, height]
        self.asked: list[tuple[int, str]] = []

    async def height(self, i: int) -> int:
        return self.heights[i]

    async def get(self, i: int, path: str) -> tuple[int, dict]:
        self.asked.append((i, path))
        if path.startswith("/v1/blocks/"):
            h = int(path.rsplit("/", 1)[1])
            if h > self.heights[i]:
                return 404, {}
            return 200, {"block_hash": f"b{h}", "txs": [t.hex() for t in TXS[2 * h - 2:2 * h]]}
        tx = bytes.fromhex(path.rsplit("/", 1)[1])
        index = TXS.index(tx)
        height, position = index // 2 + 1, index % 2
        if height > self.heights[i]:
            return 404, {"status": "unknown"}
        return 200, {"status": "committed", "height": height, "index": position}


def run(coro):
    return asyncio.run(coro)


def test_a_node_is_asked_for_a_tx_once_until_it_restarts_then_for_every_tx_again():
    c, view = FakeCluster(), ChainView()
    run(check_forks(c, view, [0, 1]))
    assert run(check_txs(c, view, [0, 1], TXS)) == {"lost": [], "misplaced": [], "duplicated": []}
    assert sum(p.startswith("/v1/tx/") for _, p in c.asked) == 12
    c.asked.clear()
    run(check_txs(c, view, [0, 1], TXS))
    assert c.asked == []  # nothing new: nothing asked (the signer's read quota is not spent again)
    view.forget_node(1)
    run(check_txs(c, view, [0, 1], TXS))
    assert sorted({i for i, _ in c.asked}) == [1] and len(c.asked) == 6


def test_a_node_that_went_back_is_checked_again_from_there_and_its_missing_txs_are_lost():
    c, view = FakeCluster(), ChainView()
    run(check_forks(c, view, [0, 1]))
    run(check_txs(c, view, [0, 1], TXS))
    c.heights[1] = 1  # a truncated store: blocks 2 and 3 are gone from node 2
    view.forget_node(1)
    run(check_forks(c, view, [0, 1]))
    assert view.checked[1] == 1
    result = run(check_txs(c, view, [0, 1], TXS))
    assert sorted(x["tx"] for x in result["lost"]) == sorted(t.hex()[:16] for t in TXS[2:])
    assert {x["node"] for x in result["lost"]} == {"branch-2"}
    c.heights[1] = 3  # caught up again: checked again block by block, the txs found
    run(check_forks(c, view, [0, 1]))
    assert view.checked[1] == 3
    assert run(check_txs(c, view, [0, 1], TXS))["lost"] == []


def test_a_tx_no_node_could_show_is_asked_again_at_the_next_check():
    c, view = FakeCluster(height=2), ChainView()
    run(check_forks(c, view, [0, 1]))
    result = run(check_txs(c, view, [0, 1], TXS))
    assert len(result["lost"]) == 4  # TXS[4:] are in no block yet, on either node
    c.heights = [3, 3]
    run(check_forks(c, view, [0, 1]))
    c.asked.clear()
    assert run(check_txs(c, view, [0, 1], TXS))["lost"] == []
    assert len(c.asked) == 4  # only the two that were missing, on each node
