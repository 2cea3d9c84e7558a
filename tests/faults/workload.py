"""A mixed customer-service workload that remembers every transaction a node acknowledged.

Actors: each branch's genesis ``issuer``, ``staff`` and ``admin`` keys, and fresh customers registered by the
staff of their branch. Flows, drawn from a seeded ``random.Random`` and run by a few concurrent workers:
mint, transfer between customers, order (create -> pay partly in coins -> confirm), ticket (open ->
respond -> resolve -> feedback). Each step waits (bounded) for its tx to commit before the next, so the
flows make sense; a step refused by a rule still commits (a failed result), which is fine here.

Submission: txs of one sender are signed and submitted under that sender's lock, in nonce order, to a
random running node (``POST /v1/tx``). A tx is *acknowledged* when a node answers 202 ``pending`` (or
``duplicate_tx`` for the same bytes). A POST that fails is retried with the **same bytes** on other nodes
(bounded); a client keeps an acknowledged tx until it sees it committed, so ``drain`` re-posts any
acknowledged tx not yet committed (a node killed right after acknowledging loses its mempool: that is not
a lost tx while some client still holds it). ``lost`` = acknowledged and never committed by the end.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field

from ledger.commitments import compute_text_commitment
from ledger.keys import KeyPair
from ledger.tx import SignedTx, make_tx
from tests.faults.cluster import Cluster

SUBMIT_ATTEMPTS = 8
COMMIT_WAIT_S = 12.0
ACK_CODES = ("duplicate_tx",)
COMMITTED_CODES = ("nonce_too_low",)  # the same bytes resent after they committed


def _commit(text: str) -> bytes:
    """A text commitment under a fixed salt (the workload keeps no texts; only the shape matters)."""
    return compute_text_commitment(bytes(32), text)


@dataclass
class Actor:
    name: str
    key: KeyPair
    branch: int
    nonce: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Workload:
    """Actors, their nonces, and every tx hash submitted and acknowledged."""

    def __init__(self, cluster: Cluster, rng: random.Random, customers: int = 6) -> None:
        self.c, self.rng = cluster, rng
        n = cluster.n
        self.issuers = [Actor(f"issuer{i}", cluster.key(i, "issuer"), i) for i in range(n)]
        self.staff = [Actor(f"staff{i}", cluster.key(i, "staff"), i) for i in range(n)]
        self.customers = [Actor(f"cust{k}", KeyPair.generate(), k % n) for k in range(customers)]
        self.acked: dict[bytes, SignedTx] = {}
        self.submitted: dict[bytes, SignedTx] = {}
        self.unacked: list[bytes] = []  # signed, never acknowledged by any node (not counted as lost)
        self.counts: dict[str, int] = defaultdict(int)
        self.seq = 0
        self.stuck: set[str] = set()  # senders whose tx was never acknowledged: later nonces would gap

    def accounts(self) -> list[bytes]:
        return [a.key.public_key for a in (*self.issuers, *self.staff, *self.customers)]

    def _live_nodes(self) -> list[int]:
        return [i for i in range(self.c.n) if self.c.running(i) and i not in self.c.paused] or list(range(self.c.n))

    async def submit(self, actor: Actor, kind: str, payload: list) -> bytes | None:
        """Sign the sender's next nonce and submit until a node acknowledges; the hash, or None."""
        if actor.name in self.stuck:
            return None
        async with actor.lock:
            actor.nonce += 1
            tx = make_tx(self.c.chain_id, kind, actor.key, actor.nonce, payload)
            self.submitted[tx.tx_hash] = tx
            self.counts[kind] += 1
            if await self._post_until_acked(tx):
                self.acked[tx.tx_hash] = tx
                return tx.tx_hash
            self.unacked.append(tx.tx_hash)
            self.stuck.add(actor.name)
            return None

    async def _post_until_acked(self, tx: SignedTx, attempts: int = SUBMIT_ATTEMPTS) -> bool:
        body = {"tx": tx.raw.hex()}
        for attempt in range(attempts):
            node = self.rng.choice(self._live_nodes())
            code, doc = await self.c.post(node, "/v1/tx", body)
            err = doc.get("error", {}).get("code") if isinstance(doc.get("error"), dict) else None
            if code == 202 or err in ACK_CODES:
                return True
            if err in COMMITTED_CODES:
                return True
            await asyncio.sleep(0.1 * (attempt + 1))
        return False

    async def wait_committed(self, tx_hash: bytes | None, deadline: float) -> dict | None:
        if tx_hash is None:
            return None
        path = f"/v1/tx/{tx_hash.hex()}"
        while time.monotonic() < deadline:
            code, doc = await self.c.get(self.rng.choice(self._live_nodes()), path)
            if code == 200 and doc.get("status") == "committed":
                return doc
            await asyncio.sleep(0.1)
        return None

    async def step(self, actor: Actor, kind: str, payload: list, deadline: float) -> bool:
        """Submit one tx and wait for its commit; True if it committed before the deadline."""
        h = await self.submit(actor, kind, payload)
        doc = await self.wait_committed(h, min(deadline, time.monotonic() + COMMIT_WAIT_S))
        return doc is not None

    def _next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq}"

    # ---- setup and flows ----

    async def setup(self, timeout_s: float = 30.0) -> None:
        """Register every customer (staff of its branch) and mint it a starting balance."""
        deadline = time.monotonic() + timeout_s
        hashes = []
        for cust in self.customers:
            hashes.append(await self.submit(self.staff[cust.branch], "register-customer",
                                            [cust.key.public_key, 1, self.rng.randbytes(32)]))
            hashes.append(await self.submit(self.issuers[cust.branch], "mint", [cust.key.public_key, 1000]))
        for h in hashes:
            if await self.wait_committed(h, deadline) is None:
                raise AssertionError("workload setup did not commit in time")

    async def flow_mint(self, deadline: float) -> None:
        issuer = self.rng.choice(self.issuers)
        cust = self.rng.choice(self.customers)
        await self.step(issuer, "mint", [cust.key.public_key, self.rng.randint(10, 200)], deadline)

    async def flow_transfer(self, deadline: float) -> None:
        a, b = self.rng.sample(self.customers, 2)
        await self.step(a, "transfer", [b.key.public_key, self.rng.randint(1, 20), _commit("faults")], deadline)

    async def flow_order(self, deadline: float) -> None:
        cust = self.rng.choice(self.customers)
        staff = self.staff[cust.branch]
        oid = self._next_id("O")
        if not await self.step(staff, "create-order", [oid, cust.key.public_key, self.rng.randint(500, 5000), "EUR",
                                                       _commit("items")], deadline):
            return
        if not await self.step(cust, "pay-order", [oid, self.rng.randint(0, 30)], deadline):
            return
        await self.step(staff, "confirm-order", [oid], deadline)

    async def flow_ticket(self, deadline: float) -> None:
        cust = self.rng.choice(self.customers)
        staff = self.staff[cust.branch]
        tid = self._next_id("T")
        steps = [(cust, "open-ticket", [tid, "complaint", 2, "", _commit("broken")]),
                 (staff, "respond-ticket", [tid, _commit("sorry")]),
                 (staff, "compensate", [tid, self.rng.randint(1, 50)]),
                 (staff, "resolve-ticket", [tid, _commit("fixed")]),
                 (cust, "submit-feedback", ["ticket", tid, self.rng.randint(1, 5), _commit("ok")])]
        for actor, kind, payload in steps:
            if not await self.step(actor, kind, payload, deadline):
                return

    async def worker(self, stop: asyncio.Event, deadline: float) -> None:
        flows = (self.flow_mint, self.flow_transfer, self.flow_transfer, self.flow_order, self.flow_ticket)
        for _ in range(10_000):
            if stop.is_set() or time.monotonic() >= deadline:
                return
            await self.rng.choice(flows)(deadline)

    # ---- drain ----

    async def drain(self, timeout_s: float) -> list[bytes]:
        """Wait until every acknowledged tx is committed on some node, re-posting stragglers; the missing."""
        deadline = time.monotonic() + timeout_s
        missing = set(self.acked)
        rounds = 0
        while missing and time.monotonic() < deadline:
            node = self.rng.choice(self._live_nodes())
            for h in list(missing):
                code, doc = await self.c.get(node, f"/v1/tx/{h.hex()}")
                if code == 200 and doc.get("status") == "committed":
                    missing.discard(h)
            if missing and rounds % 5 == 4:  # a client re-posts what it still holds (same bytes)
                for h in sorted(missing, key=lambda x: self.acked[x].body.nonce):
                    await self._post_until_acked(self.acked[h], attempts=1)
                    self.counts["reposted"] += 1
            rounds += 1
            if missing:
                await asyncio.sleep(0.3)
        return sorted(missing)
