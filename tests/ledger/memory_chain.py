"""A one-validator chain in memory for the ledger's state-machine tests.

``MemoryChain`` holds the head state, SMT nodes and header of a chain started from a genesis, queues signed txs
with per-sender nonces, and seals the queue into a block: built by the proposer, re-executed by a validator on
the same parent (which must agree on every byte), then committed. The parent state is left untouched, so a
test can compare the state before and after a block.
"""

from __future__ import annotations

from ledger.chain import BlockExecution, build_block, genesis_block, validate_block
from ledger.genesis import Genesis
from ledger.smt import MemoryNodes
from ledger.state import MemoryState
from ledger.tx import SignedTx, make_tx
from tests.strategies import CHAIN_ID, VALIDATORS


class MemoryChain:
    """Mixin for a ``RuleBasedStateMachine``: call ``start_chain`` in ``__init__``."""

    def start_chain(self, genesis: Genesis) -> None:
        """Commit ``genesis``'s block and start with an empty queue."""
        block, execution = genesis_block(genesis)
        self.genesis = genesis
        self.state = MemoryState(execution.state_writes)
        self.nodes = MemoryNodes(execution.smt_nodes)
        self.head = block.header
        self.nonces: dict[bytes, int] = {}
        self.queue: list[SignedTx] = []

    def queue_tx(self, sender, kind: str, payload: list, *extra) -> None:
        """Sign ``kind`` by ``sender`` with its next nonce and queue it for the next block."""
        nonce = self.nonces[sender.public_key] = self.nonces.get(sender.public_key, 0) + 1
        self.queue.append(make_tx(CHAIN_ID, kind, sender, nonce, payload, *extra))

    def seal_queue(self, ts: int) -> tuple[BlockExecution, MemoryState, list[SignedTx]]:
        """Build, re-validate and commit a block of the queue at ``ts``.

        Returns the validator's execution, the parent state and the txs the block was built from."""
        parent, txs = self.state, self.queue
        execution, rejected = build_block(parent, self.nodes, self.head, txs, ts, VALIDATORS[0].public_key)
        assert rejected == [], [(tx.body.kind, str(exc)) for tx, exc in rejected]
        # Another validator re-executing the block on the same parent agrees on every byte
        checked = validate_block(parent, self.nodes, self.head, execution.block, ts, 0,
                                 self.genesis.validator_set_hash)
        assert checked.header == execution.header and checked.state_writes == execution.state_writes
        assert [r.reason for r in checked.results] == [r.reason for r in execution.results]
        self.state = MemoryState(parent.data)
        self.state.apply(checked.state_writes)
        self.nodes.put_many(checked.smt_nodes)
        self.head = checked.header
        self.queue = []
        return checked, parent, txs
