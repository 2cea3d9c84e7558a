"""A one-validator chain in a temp store, filled block by block with chosen timestamps, and a customer story."""

from __future__ import annotations

import time

from ledger import chain
from ledger.block import make_seal
from ledger.genesis import Genesis, Validator
from ledger.hashing import sha256
from ledger.keys import KeyPair
from ledger.storage import Store
from ledger.tx import make_tx

CHAIN = "carecoin-queries"
MIN = 60_000


class LocalChain:
    """One validator's store, filled block by block with chosen timestamps (sealed by that validator)."""

    def __init__(self, path, genesis_time_ms: int | None = None) -> None:
        self.node, self.admin, self.staff, self.issuer, self.compliance, self.auditor = (
            KeyPair.generate() for _ in range(6))
        self.genesis = Genesis(
            CHAIN, genesis_time_ms if genesis_time_ms is not None else int(time.time() * 1000) - 3_600_000,
            (Validator("north", self.node.public_key),),  # one branch: governance decides with one admin
            roles={"branch-admin": (self.admin.public_key,), "staff": (self.staff.public_key,),
                   "issuer": (self.issuer.public_key,), "compliance": (self.compliance.public_key,),
                   "auditor": (self.auditor.public_key,)}, policy={})
        self.store = Store.open(path)
        block, execution = chain.genesis_block(self.genesis)
        self.store.commit_block(block, (), execution.results, execution.state_writes, execution.smt_nodes)
        self.nonces: dict[bytes, int] = {}
        self.now = self.genesis.genesis_time_ms

    def tx(self, key: KeyPair, kind: str, payload: list, *extra: KeyPair):
        n = self.nonces[key.public_key] = self.nonces.get(key.public_key, 0) + 1
        return make_tx(CHAIN, kind, key, n, payload, *extra)

    def block(self, *txs, after_ms: int = 1000) -> list:
        """Commit ``txs`` as one block ``after_ms`` after the previous one; return the results."""
        self.now += after_ms
        parent = self.store.get_header(self.store.head().height)
        execution = chain.execute_block(self.store, self.store, parent, list(txs), self.now, self.node.public_key,
                                        CHAIN, self.genesis.validator_set_hash)
        seal = make_seal(self.node, CHAIN, execution.header.height, execution.block.hash)
        self.store.commit_block(execution.block, (seal,), execution.results, execution.state_writes,
                                execution.smt_nodes)
        return execution.results


def h(text: str) -> bytes:
    return sha256(text.encode())


def play_story(c: LocalChain) -> dict:
    """Grant a north-branch clerk, register Alice, an order paid partly in coins, a complaint ticket."""
    clerk, alice = KeyPair.generate(), KeyPair.generate()
    c.block(c.tx(c.admin, "propose-grant-role", ["clerk", clerk.public_key, "staff", "north"]))
    c.block(c.tx(clerk, "register-customer", [alice.public_key, 1, h("commitment")]),
            c.tx(c.issuer, "mint", [alice.public_key, 1000]))
    c.block(c.tx(clerk, "create-order", ["O1", alice.public_key, 10_000, "EUR", h("items")]))
    c.block(c.tx(alice, "pay-order", ["O1", 500]))
    c.block(c.tx(clerk, "confirm-order", ["O1"]))
    opened = c.now + 1000
    c.block(c.tx(alice, "open-ticket", ["T1", "complaint", 2, "O1", h("late delivery")]))
    c.block(c.tx(clerk, "respond-ticket", ["T1", h("sorry")]), after_ms=MIN)
    c.block(c.tx(clerk, "compensate", ["T1", 200]))
    c.block(c.tx(clerk, "resolve-ticket", ["T1", h("refunded shipping")]), after_ms=MIN)
    results = c.block(c.tx(alice, "submit-feedback", ["ticket", "T1", 4, h("ok")]))
    assert all(r.status == 0 for r in results), results
    return {"clerk": clerk, "alice": alice, "opened": opened}


