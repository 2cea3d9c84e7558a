"""Workload mixes of ``bench/throughput.py --mix``: customer stories as txs that are VALID under the rules.

Theory of operation. A mix is a list of ``Step`` (sender name, kind, payload, and the steps of OTHER senders
that must be committed first). A sender's own steps keep their list order: nonces are assigned in that order
(``sign_steps``), and the load worker releases a sender's step once its previous step was accepted and every
step in ``after`` is committed. Stories are interleaved wave by wave (``WAVE`` stories, position-major) so
many stories progress at once while each one stays in order.

Senders: ``staff:<b>`` and ``staff:<b>.<k>`` (branch b's staff members, genesis role), ``issuer``,
``admin:<b>`` (governance at setup) and ``customer:<i>`` (a fresh key per story, of branch ``i % branches``).
Story i is served from start to end by ONE staff member of its branch, member ``(i // branches) % staff``:
a branch has several (``staff_per_branch``), because one key's nonces serialise its txs — a step waiting for
a commit holds back every later step of that key. Ids carry a per-run ``tag``, so they are unique. Texts are
commitments (32 bytes), never text.

``coin`` story (11 txs): register-customer, mint 1000, order A (create, redeem the run's coupon, pay 40 coins,
confirm), order B (create, pay 10 coins, request-refund inside the window), 2 transfers of 5 coins.
Shares: create-order 2/11, pay-order 2/11, transfer 2/11, and 1/11 each of register-customer, mint,
redeem-coupon, confirm-order, request-refund.
``service`` story (9 txs): register-customer, order (create, pay 0 coins, confirm), complaint ticket
(open-ticket priority 2 under the SLA clock, respond-ticket, compensate 50, resolve-ticket), submit-feedback:
1/9 each.
Setup of ``coin`` (not measured): a coupon campaign decided by governance (propose + 2 approvals) and one
coupon for anyone, redeemable once per customer.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from ledger.keys import KeyPair
from ledger.tx import SignedTx, make_tx

MIXES = ("transfers", "coin", "service")
WAVE = 50  # stories interleaved position-major
ANYONE = bytes(32)
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Step:
    """One tx to send: ``sender`` names a key; ``after`` lists steps (of other senders) committed first."""

    sender: str
    kind: str
    payload: tuple
    after: tuple[int, ...] = ()


def commit_of(*parts: object) -> bytes:
    """A 32-byte stand-in for a text commitment (unique per story and step)."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).digest()


def coupon_id(tag: str) -> str:
    return f"bench{tag}"


def build_setup(mix: str, tag: str, now_ms: int) -> list[Step]:
    """The unmeasured steps a mix needs first (``coin``: a coupon campaign and its coupon)."""
    if mix != "coin":
        return []
    campaign = f"bench{tag}"
    proposal = f"bench{tag}"
    propose = Step("admin:0", "propose-campaign",
                   (proposal, campaign, "registration", "coupon", 100, 10**12, 1, "", "", 0, "", 0, 0, "EUR",
                    3 * DAY_MS))
    return [propose,
            Step("admin:1", "approve-proposal", (proposal,), (0,)),
            Step("admin:2", "approve-proposal", (proposal,), (0,)),
            Step("issuer", "issue-coupon", (coupon_id(tag), campaign, 100, "EUR", now_ms + 2 * DAY_MS, ANYONE,
                                            1_000_000), (1, 2))]


def staff_name(i: int, branches: int, staff_per_branch: int = 1) -> str:
    """The staff member who serves story ``i``: ``staff:<b>`` (the branch's first) or ``staff:<b>.<k>``."""
    b, k = i % branches, (i // branches) % max(1, staff_per_branch)
    return f"staff:{b}" if k == 0 else f"staff:{b}.{k}"


def build_coin_story(i: int, tag: str, branches: int, customer: bytes, other: bytes,
                     staff_per_branch: int = 1) -> list[Step]:
    """Story ``i`` of the coin mix; ``after`` indexes are local to the story."""
    c, s = f"customer:{i}", staff_name(i, branches, staff_per_branch)
    a, b = f"{tag}c{i}a", f"{tag}c{i}b"
    return [
        Step(s, "register-customer", (customer, 2, commit_of(tag, i, "kyc"))),               # 0
        Step("issuer", "mint", (customer, 1000)),                                            # 1
        Step(s, "create-order", (a, customer, 10_000, "EUR", commit_of(tag, i, "a")), (0,)),  # 2
        Step(c, "redeem-coupon", (coupon_id(tag), a), (2,)),                                 # 3
        Step(c, "pay-order", (a, 40), (1, 2)),                                               # 4
        Step(s, "confirm-order", (a,), (4,)),                                                # 5
        Step(c, "transfer", (other, 5, commit_of(tag, i, "t1")), (1,)),                     # 6
        Step(s, "create-order", (b, customer, 2_000, "EUR", commit_of(tag, i, "b")), (0,)),   # 7
        Step(c, "pay-order", (b, 10), (7,)),                                                 # 8
        Step(c, "request-refund", (b, commit_of(tag, i, "why"))),                            # 9
        Step(c, "transfer", (other, 5, bytes(32))),                                          # 10
    ]


def build_service_story(i: int, tag: str, branches: int, customer: bytes,
                        staff_per_branch: int = 1) -> list[Step]:
    """Story ``i`` of the service mix; ``after`` indexes are local to the story."""
    c, s = f"customer:{i}", staff_name(i, branches, staff_per_branch)
    o, t = f"{tag}s{i}", f"{tag}t{i}"
    return [
        Step(s, "register-customer", (customer, 2, commit_of(tag, i, "kyc"))),               # 0
        Step(s, "create-order", (o, customer, 5_000, "EUR", commit_of(tag, i, "o")), (0,)),   # 1
        Step(c, "pay-order", (o, 0), (1,)),                                                  # 2
        Step(s, "confirm-order", (o,), (2,)),                                                # 3
        Step(c, "open-ticket", (t, "complaint", 2, o, commit_of(tag, i, "open"))),           # 4
        Step(s, "respond-ticket", (t, commit_of(tag, i, "resp")), (4,)),                     # 5
        Step(s, "compensate", (t, 50), (4,)),                                                # 6
        Step(s, "resolve-ticket", (t, commit_of(tag, i, "res")), (4,)),                      # 7
        Step(c, "submit-feedback", ("ticket", t, 5, commit_of(tag, i, "fb")), (7,)),         # 8
    ]


def build_stories(mix: str, count: int, tag: str, branches: int, customers: list[bytes],
                  wave: int = WAVE, staff_per_branch: int = 1) -> list[Step]:
    """``count`` stories interleaved wave by wave, with ``after`` rewritten to global indexes."""
    if mix not in ("coin", "service"):
        raise ValueError(f"mix {mix!r}: expected coin or service (transfers are pre-signed by the worker)")
    out: list[Step] = []
    for start in range(0, count, wave):
        ids = range(start, min(count, start + wave))
        stories = {i: (build_coin_story(i, tag, branches, customers[i], customers[i - 1 if i else count - 1],
                                        staff_per_branch)
                       if mix == "coin" else build_service_story(i, tag, branches, customers[i], staff_per_branch))
                   for i in ids}
        where: dict[tuple[int, int], int] = {}
        for pos in range(max(len(s) for s in stories.values())):
            for i, story in stories.items():
                if pos < len(story):
                    step = story[pos]
                    where[(i, pos)] = len(out)
                    out.append(Step(step.sender, step.kind, step.payload, tuple(where[(i, d)] for d in step.after)))
    return out


def compute_shares(steps: Iterable[Step]) -> dict[str, float]:
    """Each kind's share of ``steps`` (rounded to 3 places)."""
    counts = Counter(s.kind for s in steps)
    total = sum(counts.values()) or 1
    return {k: round(v / total, 3) for k, v in sorted(counts.items())}


def sign_steps(chain_id: str, steps: list[Step], keys: dict[str, KeyPair],
               next_nonce: dict[str, int]) -> list[SignedTx]:
    """Sign every step with its sender's next nonce (``next_nonce`` is advanced in place)."""
    out = []
    for step in steps:
        nonce = next_nonce.get(step.sender, 1)
        next_nonce[step.sender] = nonce + 1
        out.append(make_tx(chain_id, step.kind, keys[step.sender], nonce, list(step.payload)))
    return out


class Scheduler:
    """Which steps may be sent now. A sender's steps go out in order, several per call while each one's
    ``after`` steps are committed (one node gets them in nonce order); the sender's next call waits until the
    node answered. Pure bookkeeping (no IO), bounded by the step count."""

    def __init__(self, steps: list[Step], per_sender: int = 100) -> None:
        self.steps, self.per_sender = steps, per_sender
        self.queues: dict[str, list[int]] = {}
        self.position: list[int] = []
        for i, step in enumerate(steps):
            queue = self.queues.setdefault(step.sender, [])
            self.position.append(len(queue))
            queue.append(i)
        self.cursor = {sender: 0 for sender in self.queues}
        self.in_flight: set[str] = set()  # senders with released steps a node has not answered yet
        self.committed: set[int] = set()

    def take_ready(self, limit: int) -> list[int]:
        """Up to ``limit`` steps to send now, in each sender's order; those senders are in flight."""
        out: list[int] = []
        for sender, queue in self.queues.items():
            if sender in self.in_flight:
                continue
            k, taken = self.cursor[sender], 0
            while (k < len(queue) and taken < self.per_sender and len(out) < limit
                   and all(d in self.committed for d in self.steps[queue[k]].after)):
                out.append(queue[k])
                k, taken = k + 1, taken + 1
            if taken:
                self.cursor[sender] = k
                self.in_flight.add(sender)
            if len(out) >= limit:
                break
        return out

    def accepted(self, i: int) -> None:
        """A node answered for step ``i`` (accepted it): its sender may send more."""
        self.in_flight.discard(self.steps[i].sender)

    def retry(self, i: int) -> None:
        """Step ``i`` was refused for now (mempool full): it and its sender's later steps go again."""
        sender = self.steps[i].sender
        self.cursor[sender] = min(self.cursor[sender], self.position[i])
        self.in_flight.discard(sender)

    def commit(self, i: int) -> None:
        self.committed.add(i)

    def done(self) -> bool:
        return all(self.cursor[s] >= len(q) for s, q in self.queues.items())
