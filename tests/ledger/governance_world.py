"""A four-branch network state for the governance and separation-of-duties tests: one admin per branch (two in
branch-0), staff in branch-0 and branch-1, an issuer; steps run through the kinds' specs as a block would."""

from __future__ import annotations

from typing import Any

from ledger.chain import genesis_state
from ledger.genesis import Genesis, Validator
from ledger.process import get_kind
from ledger.process.common import TxContext
from ledger.reasons import TxFailure
from ledger.state import MemoryState, Overlay, get_balance
from tests.strategies import ALICE, BOB, CHAIN_ID, GENESIS_TIME_MS, ISSUER, VALIDATORS, key

ADMINS = (key(50), key(51), key(52), key(53))  # the admin of branch-0, branch-1, branch-2, branch-3
ADMIN_0B = key(54)  # a second admin of branch-0
STAFF_1 = key(55)  # staff of branch-1 (the rogue admin's staff in the stories)
STAFF_1B = key(56)  # another staff member of branch-1
STAFF_2 = key(57)  # staff of branch-2
BRANCHES = tuple(f"branch-{i}" for i in range(4))
ROGUE = ADMINS[1]  # the admin of branch-1 who tries to rule alone


def make_gov_genesis(policy: dict | None = None, branches: int = 4) -> Genesis:
    """Genesis of ``branches`` validators, each a branch with its admin, plus the cast above."""
    admins = ADMINS[:branches] + (ADMIN_0B,)
    placed = {a.public_key: BRANCHES[i] for i, a in enumerate(ADMINS[:branches])}
    placed[ADMIN_0B.public_key] = BRANCHES[0]
    staff = {STAFF_1: BRANCHES[1 % branches], STAFF_1B: BRANCHES[1 % branches], STAFF_2: BRANCHES[2 % branches]}
    placed.update({k.public_key: b for k, b in staff.items()})
    return Genesis(
        chain_id=CHAIN_ID, genesis_time_ms=GENESIS_TIME_MS,
        validators=tuple(Validator(BRANCHES[i], VALIDATORS[i].public_key) for i in range(branches)),
        roles={"branch-admin": tuple(a.public_key for a in admins), "staff": tuple(k.public_key for k in staff),
               "issuer": (ISSUER.public_key,)},
        policy=dict(policy or {}), branches=placed)


class Gov:
    """A state on ``make_gov_genesis`` and a block clock; ``run`` applies one tx's step or rolls it back."""

    def __init__(self, policy: dict | None = None, branches: int = 4) -> None:
        self.genesis = make_gov_genesis(policy, branches)
        self.state = Overlay(MemoryState(genesis_state(self.genesis)))
        self.now = GENESIS_TIME_MS + 1_000
        self.height = 1
        self.proposals = 0

    def tick(self, ms: int = 1_000) -> None:
        self.now += ms
        self.height += 1

    def run(self, sender, kind: str, payload: list[Any]) -> tuple[str, list]:
        """Run one tx of ``kind`` by ``sender``: ``("", events)`` if applied, ``(reason, [])`` if refused."""
        spec = get_kind(kind)
        ctx = TxContext(self.state, sender.public_key, (sender.public_key,), b"\x00" * 32, self.height, self.now)
        mark = self.state.checkpoint()
        try:
            return "", spec.process(ctx, spec.compute_payload(payload))
        except TxFailure as failure:
            self.state.rollback(mark)
            return failure.reason.name, []

    def ok(self, sender, kind: str, payload: list[Any]) -> list:
        reason, events = self.run(sender, kind, payload)
        if reason:
            raise AssertionError(f"{kind} by {sender.public_key.hex()[:8]} failed: {reason}")
        return events

    def refused(self, sender, kind: str, payload: list[Any]) -> str:
        reason, _ = self.run(sender, kind, payload)
        if not reason:
            raise AssertionError(f"{kind} was applied; expected a refusal")
        return reason

    def new_id(self) -> str:
        self.proposals += 1
        return f"p-{self.proposals}"

    def decide(self, action: str, args: list[Any], approvers=ADMINS[:3]) -> list:
        """Propose ``action`` by the first approver and approve by the others; return every event."""
        pid = self.new_id()
        events = self.ok(approvers[0], f"propose-{action}", [pid, *args])
        for admin in approvers[1:]:
            events += self.ok(admin, "approve-proposal", [pid])
        return events

    def balance(self, who) -> int:
        return get_balance(self.state, who.public_key)


__all__ = ["ADMINS", "ADMIN_0B", "ALICE", "BOB", "BRANCHES", "Gov", "ISSUER", "ROGUE", "STAFF_1", "STAFF_1B",
           "STAFF_2", "make_gov_genesis"]
