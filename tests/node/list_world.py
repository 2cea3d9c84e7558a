"""A chain for the list tests, committed straight to a store: four branches; Alice (registered by branch-1
staff) with orders A-O1..A-O3 and tickets A-T1..A-T5 in several states, Bob (branch-2) with B-O1 and B-T1;
an auditor and a compliance officer. ``ListWorld.commit`` appends blocks later (a test's new activity)."""

from __future__ import annotations

import dataclasses
import time

from ledger import chain as ledger_chain
from ledger.block import make_seal
from ledger.keys import KeyPair
from ledger.storage import Store
from ledger.tx import make_tx
from tests.ledger.governance_world import STAFF_1, STAFF_2, make_gov_genesis
from tests.strategies import ALICE, BOB, CHAIN_ID, VALIDATORS

AUDITOR, COMPLIANCE, STRANGER = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
H = b"\x07" * 32


class ListWorld:
    """A store with the chain above; ``commit(*(key, kind, payload))`` adds one block of successful txs."""

    def __init__(self, path) -> None:
        base = make_gov_genesis()
        self.genesis = dataclasses.replace(base, roles={**base.roles, "auditor": (AUDITOR.public_key,),
                                                        "compliance": (COMPLIANCE.public_key,)})
        self.store = Store.open(path)
        block, execution = ledger_chain.genesis_block(self.genesis)
        self.store.commit_block(block, (), execution.results, execution.state_writes, execution.smt_nodes)
        self.nonces: dict[bytes, int] = {}
        self.now = int(time.time() * 1000) - 600_000
        self.commit((STAFF_1, "register-customer", [ALICE.public_key, 1, H]),
                    (STAFF_2, "register-customer", [BOB.public_key, 1, H]))
        for n in (1, 2, 3):
            self.commit((STAFF_1, "create-order", [f"A-O{n}", ALICE.public_key, 1000 * n, "EUR", H]))
        self.commit((STAFF_2, "create-order", ["B-O1", BOB.public_key, 500, "EUR", H]))
        for n in (1, 2, 3, 4, 5):
            self.commit((ALICE, "open-ticket", [f"A-T{n}", "complaint", 2, "", H]))
        self.commit((BOB, "open-ticket", ["B-T1", "inquiry", 1, "", H]))
        self.commit((STAFF_1, "respond-ticket", ["A-T2", H]))  # in_progress
        self.commit((STAFF_1, "resolve-ticket", ["A-T3", H]))  # resolved

    def commit(self, *sent) -> None:
        txs = []
        for key, kind, payload in sent:
            n = self.nonces[key.public_key] = self.nonces.get(key.public_key, 0) + 1
            txs.append(make_tx(CHAIN_ID, kind, key, n, payload))
        self.now += 1000
        store = self.store
        parent = store.get_header(store.head().height)
        ex = ledger_chain.execute_block(store, store, parent, txs, self.now, VALIDATORS[0].public_key, CHAIN_ID,
                                        self.genesis.validator_set_hash)
        assert all(r.status == 0 for r in ex.results), ex.results
        seal = make_seal(VALIDATORS[0], CHAIN_ID, ex.header.height, ex.block.hash)
        store.commit_block(ex.block, (seal,), ex.results, ex.state_writes, ex.smt_nodes)
