"""Invariants the simulator checks after every step, and the violations it records.

Theory of operation: the checker sees every decision (by consensus or by sync), every vote an honest
replica sends, every evidence report and every replica's buffer size right after the step that changed
it. Safety is checked always, whatever the fault plan:
  * agreement — no two honest replicas decide different blocks at one height (a "fork"), and no block
    conflicting with a decided one ever gets a valid quorum certificate, even at a byzantine host;
  * certificate — every decided block carries at least a quorum of distinct valid seals
    (``ledger.block.verify_certificate``) and its header hashes to the decided hash;
  * chain — a decided block extends the deciding replica's own chain (height + 1, prev_hash);
  * no honest equivocation — an honest validator (across crashes and restarts) never signs two different
    PROPOSALs, PREPAREs or COMMITs for one (height, round): what the write-ahead record must guarantee;
  * membership — an honest replica signs a message only at a height whose set (V(h), the set in force there
    after validator-set changes) holds its key: a removed validator never seals, an added one starts at H + 2;
  * evidence — evidence is never reported against an honest validator;
  * buffers — ``buffered_count()`` stays within the configured per-signer bound times the signers;
  * wire — what goes through ``encode_message``/``decode_message`` comes back equal, and oversized input
    is refused at decode.
Liveness (every honest replica decides the target heights within a bound after the network heals) is
checked by the scenario runner, and only when at most f validators are faulty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consensus.messages import Commit, Message, Prepare, Proposal
from ledger.block import Block, CommitSeal, quorum, verify_certificate
from ledger.errors import LedgerError

FORK = "fork"
BAD_CERTIFICATE = "bad_certificate"
BAD_CHAIN = "bad_chain"
HONEST_EQUIVOCATION = "honest_equivocation"
NON_MEMBER_VOTE = "non_member_vote"
FALSE_EVIDENCE = "false_evidence"
BUFFER_BOUND = "buffer_bound"
WIRE = "wire"
LIVENESS = "liveness"
EXCEPTION = "exception"
SYNC = "sync"


@dataclass(frozen=True, slots=True)
class Violation:
    """One failed invariant: what, where (node index), when (virtual ms) and a readable detail."""

    kind: str
    node: int
    time_ms: int
    detail: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "node": self.node, "time_ms": self.time_ms, "detail": self.detail}


def _vote_slot(msg: Message) -> tuple | None:
    """(kind, height, round) a signed vote occupies, or None for messages that are not votes."""
    if isinstance(msg, Proposal):
        return ("PROPOSAL", msg.height, msg.round)
    if isinstance(msg, Prepare):
        return ("PREPARE", msg.height, msg.round)
    if isinstance(msg, Commit):
        return ("COMMIT", msg.height, msg.round)
    return None


def _vote_value(msg: Message) -> bytes:
    return msg.block.hash if isinstance(msg, Proposal) else msg.block_hash


class InvariantChecker:
    """Collects violations; ``decided`` maps height -> hash as first decided by an honest replica."""

    def __init__(self, chain_id: str, validators: tuple[bytes, ...], honest_keys: frozenset[bytes],
                 buffer_bound: int, sets_at: Callable[[int], tuple[bytes, ...]] | None = None) -> None:
        self.chain_id = chain_id
        self.validators = validators  # the genesis set
        self.sets_at = sets_at or (lambda height: validators)  # V(h): certificates are checked against it
        self.honest_keys = honest_keys
        self.buffer_bound = buffer_bound
        self.decided: dict[int, bytes] = {}
        self.violations: list[Violation] = []
        self.forks = 0
        self.max_buffered = 0
        self._votes: dict[tuple, bytes] = {}
        self._good_seals: set[tuple] = set()
        self._members: dict[tuple[bytes, ...], frozenset[bytes]] = {}

    def _members_at(self, height: int) -> tuple[tuple[bytes, ...], frozenset[bytes]]:
        vals = self.sets_at(height)
        if vals not in self._members:
            self._members[vals] = frozenset(vals)
        return vals, self._members[vals]

    def record(self, kind: str, node: int, time_ms: int, detail: str) -> None:
        """Record a violation (kept in order of discovery)."""
        self.violations.append(Violation(kind, node, time_ms, detail))

    def verify_decision(self, node: int, honest: bool, block: Block, seals: tuple[CommitSeal, ...],
                        expected_height: int, expected_prev: bytes, time_ms: int) -> bool:
        """Check one decision; return False (after recording why) when it must not enter the log."""
        ok = True
        if block.hash != block.header.hash():
            self.record(BAD_CERTIFICATE, node, time_ms, f"block at height {block.height}: hash field does "
                        "not match its header")
            return False
        if block.height != expected_height or block.header.prev_hash != expected_prev:
            self.record(BAD_CHAIN, node, time_ms, f"decided height {block.height} with prev "
                        f"{block.header.prev_hash.hex()[:12]}; expected height {expected_height} with prev "
                        f"{expected_prev.hex()[:12]}")
            ok = False
        seal_keys = [(block.height, block.hash, s.validator, s.signature) for s in seals]
        vals, members = self._members_at(block.height)
        if all(k in self._good_seals for k in seal_keys):
            # Every signature already passed verify_certificate in another replica's certificate: only the
            # set rules remain (members, distinct, a quorum) — same verdict, without re-verifying Ed25519.
            signers = [s.validator for s in seals]
            if (len(set(signers)) != len(signers) or not set(signers) <= members
                    or len(signers) < quorum(len(vals))):
                self.record(BAD_CERTIFICATE, node, time_ms, f"height {block.height}: {len(set(signers))} "
                            f"distinct member seals of {len(signers)}; a quorum needs "
                            f"{quorum(len(vals))}")
                ok = False
        else:
            try:
                verify_certificate(self.chain_id, block.height, block.hash, seals, vals)
                self._good_seals.update(seal_keys)
            except LedgerError as exc:
                self.record(BAD_CERTIFICATE, node, time_ms, f"height {block.height}: {exc}")
                ok = False
        if honest or ok:
            # Two quorum certificates for different blocks at one height are a fork whoever holds them: the
            # quorums intersect in an honest validator. Byzantine hosts' uncertified decisions are ignored.
            first = self.decided.setdefault(block.height, block.hash)
            if first != block.hash:
                self.forks += 1
                self.record(FORK, node, time_ms, f"height {block.height}: decided {block.hash.hex()[:12]}, "
                            f"another replica decided {first.hex()[:12]}")
                ok = False
        return ok

    def process_honest_vote(self, node: int, msg: Message, time_ms: int) -> None:
        """Remember an honest validator's signed vote; flag a second, different one for the same slot, and any
        message signed at a height whose set does not hold the signer."""
        if msg.signer not in self._members_at(msg.height)[1]:
            self.record(NON_MEMBER_VOTE, node, time_ms, f"honest replica {msg.signer.hex()[:12]} signed "
                        f"{type(msg).__name__} at height {msg.height} round {msg.round}; it is not in the "
                        f"{len(self.sets_at(msg.height))} validators in force there")
        slot = _vote_slot(msg)
        if slot is None:
            return
        key = (msg.signer, *slot)
        value = _vote_value(msg)
        first = self._votes.setdefault(key, value)
        if first != value:
            self.record(HONEST_EQUIVOCATION, node, time_ms, f"honest validator {msg.signer.hex()[:12]} signed "
                        f"{slot[0]} at height {slot[1]} round {slot[2]} for {value.hex()[:12]} after "
                        f"{first.hex()[:12]}")

    def process_evidence(self, node: int, first: Message, second: Message, time_ms: int) -> None:
        """Evidence must name one signer, two different messages, and never an honest validator."""
        if first.signer != second.signer or first == second:
            self.record(FALSE_EVIDENCE, node, time_ms, "evidence pair is not two different messages by one signer")
        elif first.signer in self.honest_keys:
            self.record(FALSE_EVIDENCE, node, time_ms, f"evidence against honest validator {first.signer.hex()[:12]}: "
                        f"{type(first).__name__} h={first.height} r={first.round}")

    def verify_buffers(self, node: int, count: int, time_ms: int) -> None:
        """Buffered messages must stay within the bound."""
        self.max_buffered = max(self.max_buffered, count)
        if count > self.buffer_bound:
            self.record(BUFFER_BOUND, node, time_ms, f"{count} buffered messages; bound is {self.buffer_bound}")
