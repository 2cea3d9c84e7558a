"""The validator set in force at each height: ``ValidatorSchedule.at(height) -> ValidatorSet``.

Theory of operation
-------------------
A validator-set change is a governance decision: decided in block H, the new set validates from H + 2 (header
H + 1 names it in ``next_validator_set_hash`` and is the last one the old set seals). The replica learns of it
from the node as ``ValidatorSetScheduled(effective_height, validators)`` and keeps the change points here:
V(h) is the set of the change point with the largest ``effective_height <= h`` (the genesis set, from
``ReplicaConfig.validators``, is the change point at height 0).

What the replica knows: while it decides height h, the node has told it every change decided in blocks up to
h - 1, so V(h) and V(h + 1) are final; V(h + 2) and later are *tentative* (block h may still decide a change)
and are only used to decide whether a future-height message is worth buffering. Every count, quorum, proposer
and certificate check uses ``at(msg.height)`` at the height itself, never the set of another height.

A change point for a height the replica has already started is refused unless it names the set already in
force there (``ReplicaMisuse``): the replica may have counted votes with it, so a late change is a contract
violation by the node, never something to paper over. Feeding the same set again is a no-op, so a node may
feed ``ValidatorSetScheduled(H + 2, V(H + 2))`` after every commit whether or not block H changed anything.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from consensus import rules
from consensus.errors import ReplicaMisuse
from ledger.block import validator_set_hash

MAX_CHANGE_POINTS = 64  # pending change points kept (the node feeds at most two per height)


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """One validator set and what follows from its size: n, Q = ceil(2n/3), f = (n-1)//3."""

    validators: tuple[bytes, ...]
    members: frozenset[bytes]
    n: int
    q: int
    f: int
    hash: bytes

    @classmethod
    def of(cls, validators: tuple[bytes, ...] | list[bytes]) -> "ValidatorSet":
        """Build a set; raise ``ReplicaMisuse`` when it is empty or lists a key twice."""
        vals = tuple(validators)
        if not vals:
            raise ReplicaMisuse("validator set is empty; expected at least one validator")
        if len(set(vals)) != len(vals):
            raise ReplicaMisuse("validator set lists a key twice; expected distinct keys")
        if any(type(v) is not bytes or len(v) != 32 for v in vals):
            raise ReplicaMisuse("validator set holds a key that is not 32 bytes; expected Ed25519 public keys")
        n = len(vals)
        return cls(vals, frozenset(vals), n, rules.compute_quorum(n), rules.compute_max_faulty(n),
                   validator_set_hash(vals))

    def proposer(self, height: int, round_: int) -> bytes:
        """proposer(h, r) = V[(h + r) mod n]."""
        return rules.get_proposer(self.validators, height, round_)


class ValidatorSchedule:
    """Change points ``effective_height -> ValidatorSet``; ``at(h)`` is the set in force at h."""

    def __init__(self, genesis: tuple[bytes, ...]) -> None:
        self._heights: list[int] = [0]
        self._sets: list[ValidatorSet] = [ValidatorSet.of(genesis)]

    def at(self, height: int) -> ValidatorSet:
        """The set in force at ``height`` (tentative beyond the current height + 1, see the module doc).

        Heights below the oldest change point kept (``prune``) answer with that point's set; the replica
        never asks about them (their messages are stale)."""
        return self._sets[max(0, bisect_right(self._heights, height) - 1)]

    def change_points(self) -> tuple[tuple[int, tuple[bytes, ...]], ...]:
        """(effective_height, validators) for every change point kept, in height order."""
        return tuple((h, s.validators) for h, s in zip(self._heights, self._sets))

    def schedule(self, effective_height: int, validators: tuple[bytes, ...], started_through: int) -> bool:
        """Record that ``validators`` is in force from ``effective_height`` on; return True iff V changed.

        ``started_through`` is the highest height the replica has already started (votes may have been
        counted with its set): a change point at or below it must name the set already in force there.
        """
        if type(effective_height) is not int or effective_height < 1:
            raise ReplicaMisuse(f"validator set scheduled for height {effective_height!r}; expected a height >= 1")
        new = ValidatorSet.of(validators)
        if effective_height <= started_through:
            current = self.at(effective_height)
            if current.validators != new.validators:
                raise ReplicaMisuse(
                    f"validator set {new.hash.hex()[:16]} ({new.n} validators) scheduled for height "
                    f"{effective_height}, which has already started with set {current.hash.hex()[:16]} "
                    f"({current.n} validators); expected the change before that height starts (H + 2 for a "
                    f"change decided in block H)")
            return False
        i = bisect_right(self._heights, effective_height) - 1
        if self._heights[i] == effective_height:
            if self._sets[i].validators == new.validators:
                return False
            self._sets[i] = new
        else:
            if self._sets[i].validators == new.validators:
                return False  # the same set as already in force there: nothing changes
            self._heights.insert(i + 1, effective_height)
            self._sets.insert(i + 1, new)
        if len(self._heights) > MAX_CHANGE_POINTS:
            raise ReplicaMisuse(f"{len(self._heights)} validator-set change points pending; expected at most "
                                f"{MAX_CHANGE_POINTS}")
        return True

    def prune(self, height: int) -> None:
        """Forget change points superseded before ``height`` (the one in force at ``height`` is kept)."""
        i = bisect_right(self._heights, height) - 1
        if i > 0:
            del self._heights[:i]
            del self._sets[:i]
