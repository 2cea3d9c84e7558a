"""Helpers for the event tests: commit a block on a node's own store (as the committer does), read SSE frames."""

from __future__ import annotations

import asyncio
import json

from ledger import chain as ledger_chain
from ledger.block import make_seal
from ledger.state import get_nonce
from ledger.tx import make_tx
from tests.strategies import CHAIN_ID, VALIDATORS


def commit(svc, *sent, after_ms: int = 1000) -> list:
    """Execute ``sent`` ((key, kind, payload), ...) as the next block and commit it through ``svc``'s committer
    (store, then every commit subscriber); return the results."""
    store = svc.store
    nonces: dict[bytes, int] = {}
    txs = []
    for key, kind, payload in sent:
        n = nonces[key.public_key] = nonces.get(key.public_key, get_nonce(store, key.public_key)) + 1
        txs.append(make_tx(CHAIN_ID, kind, key, n, payload))
    parent = store.get_header(store.head().height)
    ex = ledger_chain.execute_block(store, store, parent, txs, parent.timestamp_ms + after_ms,
                                    VALIDATORS[0].public_key, CHAIN_ID, svc.genesis.validator_set_hash)
    assert all(r.status == 0 for r in ex.results), ex.results
    seal = make_seal(VALIDATORS[0], CHAIN_ID, ex.header.height, ex.block.hash)
    svc.committer.commit(ex.block, (seal,), ex, source="sync")
    return ex.results


async def read_frames(resp, count: int, timeout_s: float = 5.0, until: str | None = None) -> list[dict]:
    """Read SSE frames (comments skipped) until ``count`` frames or a frame of event ``until``; each frame is
    {"id", "event", "data"} with ``data`` parsed as JSON."""
    frames: list[dict] = []
    frame: dict = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(frames) < count:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"{len(frames)} frames after {timeout_s} s; expected {count}: {frames}")
        try:
            line = await asyncio.wait_for(resp.content.readline(), left)
        except asyncio.TimeoutError:
            continue  # the deadline check above reports it
        if not line:
            break  # the stream ended
        text = line.decode().rstrip("\n")
        if not text:
            if frame:
                frames.append(frame)
                if until is not None and frame.get("event") == until:
                    break
            frame = {}
        elif not text.startswith(":"):
            name, _, value = text.partition(": ")
            frame[name] = json.loads(value) if name == "data" else value
    return frames
