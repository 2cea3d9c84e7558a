"""Validator-set changes in the simulator: the plan of a scenario's changes and the chain's truth V(h).

Theory of operation: a real chain decides a change by a governance transaction in block H, and the new set
validates from H + 2 (DESIGN "Consensus"). The simulator does not execute governance: a ``SetChangePlan``
says which blocks decide which sets (whatever those blocks contain, like a decision already in the chain's
state), and ``SetTruth`` answers V(h) for every height from it. Each simulated node
* builds and checks headers with ``validator_set_hash = H(V(h))`` and ``next_validator_set_hash = H(V(h + 1))``;
* after committing block H that decided a change (by consensus or catch-up), feeds its replica
  ``ValidatorSetScheduled(H + 2, V(H + 2))`` before any other event, and at every (re)start feeds
  ``Restarted(record, (V(h), V(h + 1)))`` — the contract a real node follows;
* verifies catch-up certificates with the set in force at each height.

Kinds: "add" (a new validator joins; its host starts as a follower from genesis, at time 0 or later by
catch-up, and votes from H + 2), "remove" (a validator leaves: it keeps following but never signs from H + 2)
and "add_remove" (both, e.g. 4 -> 5 -> 4; the removed one may be the new one). Faulty validators (byzantine
and crashed together) stay within min f over every set the scenario uses.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass

from ledger.block import max_faulty

SET_CHANGE = "set_change"
KINDS = ("add", "remove", "add_remove")


@dataclass(frozen=True, slots=True)
class SetChangePlan:
    """The validator-set changes of one scenario (key indices refer to ``get_keys(n, extra)``)."""

    kind: str
    changes: tuple[tuple[int, tuple[int, ...]], ...]  # (block H deciding it, key indices in force from H + 2)
    joiner: int | None                                # index of the added validator's host, or None
    joiner_start_ms: int                              # when the joiner's host starts (0: with everyone)

    @property
    def extra_hosts(self) -> int:
        """Hosts beyond the n genesis validators (the joiner)."""
        return 0 if self.joiner is None else 1

    @property
    def last_effective_height(self) -> int:
        """The height from which the last change is in force."""
        return max(h for h, _ in self.changes) + 2

    def get_sizes(self, n: int) -> list[int]:
        """The sizes of every set the scenario uses, genesis included."""
        return [n] + [len(s) for _, s in self.changes]

    def describe(self) -> str:
        """One line: kind, and each change as H->[indices]."""
        steps = ",".join(f"{h}->{'.'.join(map(str, s))}" for h, s in self.changes)
        joiner = f" joiner={self.joiner}@{self.joiner_start_ms}" if self.joiner is not None else ""
        return f"sets={self.kind}:{steps}{joiner}"


def compute_set_change_plan(n: int, seed: int, gst_ms: int) -> SetChangePlan | None:
    """Draw scenario (n, seed)'s changes from their own stream (the other faults' draws stay as they were);
    None for half of the scenarios. A removal needs n >= 5 (4 -> 3 would leave f = 0 for every fault)."""
    rng = random.Random(f"sets/{n}/{seed}")
    if rng.random() < 0.5:
        return None
    kinds = [k for k in KINDS if n >= 5 or k != "remove"] if n >= 2 else ["add"]
    kind = rng.choice(kinds)
    first = rng.randint(1, 3)
    genesis = tuple(range(n))
    joiner = n if kind in ("add", "add_remove") else None
    joiner_start = 0 if joiner is None or rng.random() < 0.5 else rng.randint(0, gst_ms + 500)
    if kind == "add":
        changes = ((first, (*genesis, n)),)
    elif kind == "remove":
        gone = rng.randrange(n)
        changes = ((first, tuple(i for i in genesis if i != gone)),)
    else:
        grown = (*genesis, n)
        gone = rng.choice(grown)
        second = first + rng.randint(1, 3)
        changes = ((first, grown), (second, tuple(i for i in grown if i != gone)))
    return SetChangePlan(kind, changes, joiner, joiner_start)


def compute_fault_budget(n: int, plan: SetChangePlan | None) -> int:
    """Faulty validators (byzantine plus crashed) a scenario may have: f of the smallest-f set it uses."""
    if plan is None:
        return max_faulty(n)
    return min(max_faulty(size) for size in plan.get_sizes(n))


class SetTruth:
    """The chain's validator sets: V(h) for every height, and the set block H decides (if any)."""

    def __init__(self, keys: tuple[bytes, ...], n: int, plan: SetChangePlan | None) -> None:
        self.genesis = keys[:n]
        self._heights = [0]
        self._sets = [self.genesis]
        self._decided: dict[int, tuple[bytes, ...]] = {}
        for h, idx in sorted(plan.changes if plan is not None else ()):
            vals = tuple(keys[i] for i in idx)
            self._decided[h] = vals
            self._heights.append(h + 2)
            self._sets.append(vals)
        self.all_keys = tuple(dict.fromkeys(k for s in self._sets for k in s))

    def at(self, height: int) -> tuple[bytes, ...]:
        """V(height)."""
        return self._sets[max(0, bisect_right(self._heights, height) - 1)]

    def decided_by(self, height: int) -> tuple[bytes, ...] | None:
        """The set block ``height`` decides (in force from height + 2), or None."""
        return self._decided.get(height)
