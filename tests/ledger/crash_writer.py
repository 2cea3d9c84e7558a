"""Subprocess for the crash test: commits synthetic blocks in a loop until it is killed (or a bound is hit).

Usage: python -m tests.ledger.crash_writer DATA_DIR [MAX_BLOCKS]

Each block changes a few state keys (deterministically from its height: inserts, updates and deletes over a
bounded key space), computes the new state root with SparseMerkleTree over the Store, and commits block,
certificate, results, tx index, state writes and SMT nodes in one batch. It resumes from whatever head the
store holds, prints "ready <height>" once open, and exits by itself after MAX_BLOCKS blocks.
"""

from __future__ import annotations

import random
import sys

from ledger.block import Block, CommitSeal, Header
from ledger.hashing import TAG_TX, H
from ledger.results import TxResult
from ledger.smt import EMPTY_ROOT, SparseMerkleTree
from ledger.storage import Store

CHAIN = "crash-chain"
KEY_SPACE = 400
SEALS = (CommitSeal(b"\x07" * 32, b"\x08" * 64),)


def block_changes(height: int) -> tuple[dict[bytes, bytes | None], tuple[bytes, ...]]:
    """The state writes and tx bytes of synthetic block ``height`` (same every time for the same height)."""
    rnd = random.Random(height)
    writes: dict[bytes, bytes | None] = {}
    for _ in range(rnd.randint(1, 12)):
        key = b"k/%04d" % rnd.randrange(KEY_SPACE)
        writes[key] = None if rnd.random() < 0.2 else rnd.randbytes(rnd.randint(1, 200))
    txs = tuple(b"tx/%d/%d" % (height, i) + rnd.randbytes(rnd.randint(0, 2000)) for i in range(rnd.randint(0, 6)))
    return writes, txs


def results_of(txs: tuple[bytes, ...]) -> list[TxResult]:
    """One result per tx, hashed from the tx bytes so the index is unique per tx."""
    return [TxResult(H(TAG_TX, tx), 0, "", (["synthetic", i],)) for i, tx in enumerate(txs)]


def main(argv: list[str]) -> int:
    path = argv[1]
    max_blocks = int(argv[2]) if len(argv) > 2 else 100_000
    with Store.open(path) as store:
        tree = SparseMerkleTree(store)
        head = store.head()
        print(f"ready {head.height if head else -1}", flush=True)
        for _ in range(max_blocks):
            head = store.head()
            height = 0 if head is None else head.height + 1
            prev = b"\x00" * 32 if head is None else head.block_hash
            root = EMPTY_ROOT if head is None else head.state_root
            writes, txs = block_changes(height)
            new_root, nodes = tree.update(root, writes)
            header = Header(CHAIN, height, prev, 1_000_000 + height, b"\x01" * 32, len(txs), b"\x02" * 32,
                            new_root, b"\x03" * 32)
            store.commit_block(Block(header, txs), SEALS, results_of(txs), writes, nodes)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
