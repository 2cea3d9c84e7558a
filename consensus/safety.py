"""Safety rules: the only place this validator signs a consensus vote, and the owner of its write-ahead record.

Theory of operation
-------------------
``SafetyRules`` holds the write-ahead record (``WalRecord``: height, round, prepared round/block/proof and
the PROPOSAL, PREPARE and COMMIT votes signed in this height) and the validator's key. The replica asks it
to sign; it never signs itself. Every ``sign_*`` method

1. runs one guard (``_guard``) that applies the named rule functions below (each raises
   ``ConsensusSafetyError`` naming the observed and the expected value; one of them refuses any vote at a
   height whose validator set, given by ``set_members``, does not hold this key: a removed validator never
   seals, an added one only from the height its set is in force),
2. updates the record, and
3. returns a ``SignedVote``: the ``Persist`` of the record that covers the vote followed by the ``Broadcast``
   of the vote, as one frozen value. The replica extends its action list with ``vote.actions``; it cannot
   send without persisting, because it never holds the signed message apart from its ``Persist``.

A repeated request for a vote the record already holds is answered from the record (Ed25519 signatures are
deterministic, so it is the very same message) and needs no new ``Persist`` when the record that covers it
was already handed out (or was read back from disk at restart).

The rounds only go up: ``enter_round`` refuses a round at or below the record's (and so does every vote for a
round below it), and the record is restored as is after a restart, so the replica resumes in the round it was
in. A ROUND-CHANGE carries the record's prepared value, and its ``Persist`` comes first (Celo #396).

What a record *covers* (``record_covers``) is the contract the property tests check: a vote leaves only
after a ``Persist`` of a record that covers it has been emitted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from consensus.errors import ConsensusSafetyError
from consensus.events import Broadcast, Persist, WalRecord
from consensus.messages import (NO_ROUND, Commit, Message, Prepare, Proposal, RoundChange, sign_commit,
                                sign_prepare, sign_proposal, sign_round_change)
from ledger.block import Block
from ledger.keys import KeyPair

PROPOSAL_VOTE = "PROPOSAL"
PREPARE_VOTE = "PREPARE"
COMMIT_VOTE = "COMMIT"
ROUND_CHANGE_VOTE = "ROUND-CHANGE"


def _short(block_hash: bytes) -> str:
    return block_hash.hex()[:16]


@dataclass(frozen=True, slots=True)
class SignedVote:
    """A signed vote and the actions that send it: ``Persist`` (when the record changed) then ``Broadcast``."""

    message: Message
    actions: tuple[Persist | Broadcast, ...]


# ---- the rules (pure; each raises ConsensusSafetyError naming what it saw and what it expected) -------------

def verify_height(record: WalRecord, height: int, kind: str) -> None:
    """A vote is signed only for the height of the record.

    Conditions: ``height == record.height``.
    """
    if height != record.height:
        raise ConsensusSafetyError(f"{kind} for height {height}; the record is at height {record.height}")


def verify_member(members: frozenset[bytes] | None, signer: bytes, height: int, kind: str) -> None:
    """A vote is signed only at a height where this validator is a member of the set in force there.

    Conditions: ``signer in members`` (``members`` None: no set given, nothing to check).
    """
    if members is not None and signer not in members:
        raise ConsensusSafetyError(f"{kind} at height {height} by {signer.hex()[:16]}, which is not in the "
                                   f"validator set in force there ({len(members)} validators); expected a member")


def verify_round_not_below(record: WalRecord, round_: int, kind: str) -> None:
    """No vote for a round the replica has left (the round never goes down, also across restarts).

    Conditions: ``round_ >= record.round``.
    """
    if round_ < record.round:
        raise ConsensusSafetyError(f"{kind}: round {round_} is below last voted round {record.round} "
                                   f"at height {record.height}")


def verify_single_vote(votes: tuple[tuple[int, bytes], ...], round_: int, block_hash: bytes, kind: str,
                       height: int) -> bool:
    """One block per (height, round, kind): PROPOSAL, PREPARE and COMMIT are each signed for one hash only.

    Conditions: no vote of ``kind`` in ``round_`` for a hash other than ``block_hash``.
    Returns True when the very same vote is already recorded (an idempotent re-request).
    """
    for r, h in votes:
        if r != round_:
            continue
        if h != block_hash:
            verb = {PROPOSAL_VOTE: "proposed", PREPARE_VOTE: "prepared", COMMIT_VOTE: "committed"}[kind]
            raise ConsensusSafetyError(f"{kind} for {_short(block_hash)} at height {height} round {round_}; "
                                       f"already {verb} {_short(h)} there")
        return True
    return False


def verify_commit_follows_prepare(record: WalRecord, round_: int, block_hash: bytes) -> None:
    """A COMMIT is signed only for the block this replica PREPAREd in that same round.

    Conditions: the record holds a PREPARE vote for (``round_``, ``block_hash``).
    """
    voted = dict(record.prepare_votes).get(round_)
    if voted != block_hash:
        seen = "no PREPARE" if voted is None else f"a PREPARE for {_short(voted)}"
        raise ConsensusSafetyError(f"COMMIT for {_short(block_hash)} at height {record.height} round {round_}; "
                                   f"expected a PREPARE for it in that round, the record has {seen}")


def verify_prepared_below(record: WalRecord, round_: int) -> None:
    """A ROUND-CHANGE for round r carries a value prepared strictly before r (QBFT R7: ``pr < r``).

    Conditions: ``record.prepared_round < round_`` (NO_ROUND when nothing is prepared).
    """
    if record.prepared_round >= round_:
        raise ConsensusSafetyError(f"ROUND-CHANGE for round {round_} at height {record.height}; expected a "
                                   f"prepared round below it, the record has {record.prepared_round}")


def verify_reproposal_is_prepared_value(block: Block, prepares: tuple[Prepare, ...]) -> None:
    """A re-proposal names the block its PREPARE certificate is for.

    Conditions: every attached PREPARE is for ``block.hash``.
    """
    for p in prepares:
        if p.block_hash != block.hash:
            raise ConsensusSafetyError(f"re-proposal of {_short(block.hash)} carries a PREPARE for "
                                       f"{_short(p.block_hash)}; expected PREPAREs for the proposed block")


def record_covers(record: WalRecord | None, msg: Message) -> bool:
    """True iff ``record`` (persisted before ``msg`` left) commits this replica to ``msg``.

    PROPOSAL/PREPARE/COMMIT: the record is at the message's height and holds that (round, hash) vote (a
    COMMIT also needs the prepared round at or above its round). ROUND-CHANGE: the record is at the height, at
    or above the round, and holds the carried prepared round and block.
    """
    if record is None or record.height != msg.height:
        return False
    if isinstance(msg, Proposal):
        return (msg.round, msg.block.hash) in record.proposal_votes
    if isinstance(msg, Prepare):
        return (msg.round, msg.block_hash) in record.prepare_votes
    if isinstance(msg, Commit):
        return (msg.round, msg.block_hash) in record.commit_votes and record.prepared_round >= msg.round
    if isinstance(msg, RoundChange):
        held = record.prepared_block.hash if record.prepared_block is not None else b""
        return (record.round >= msg.round and record.prepared_round == msg.prepared_round
                and held == msg.prepared_hash)
    return False


# ---- the object --------------------------------------------------------------------------------------------

class SafetyRules:
    """Owns the write-ahead record and the key; the only way the replica signs a vote."""

    def __init__(self, key: KeyPair, chain_id: str, height: int) -> None:
        self._key = key
        self._chain_id = chain_id
        self._record = self._fresh(height)
        self._handed_out: WalRecord | None = None  # the last record emitted in a Persist (or read from disk)
        self._members: frozenset[bytes] | None = None  # the set in force at the record's height (None: unchecked)

    @staticmethod
    def _fresh(height: int) -> WalRecord:
        return WalRecord(height, 0, NO_ROUND, None, (), (), (), ())

    # ---- reads ----------------------------------------------------------------------------------------

    @property
    def record(self) -> WalRecord:
        """The current write-ahead record."""
        return self._record

    @property
    def round(self) -> int:
        return self._record.round

    @property
    def prepared_round(self) -> int:
        return self._record.prepared_round

    @property
    def prepared_block(self) -> Block | None:
        return self._record.prepared_block

    @property
    def prepared_proof(self) -> tuple[Prepare, ...]:
        return tuple(self._record.prepared_proof)

    def get_vote(self, kind: str, round_: int) -> bytes | None:
        """The hash this replica signed a vote of ``kind`` for in ``round_`` at this height, or None."""
        votes = {PROPOSAL_VOTE: self._record.proposal_votes, PREPARE_VOTE: self._record.prepare_votes,
                 COMMIT_VOTE: self._record.commit_votes}[kind]
        return dict(votes).get(round_)

    # ---- lifecycle ------------------------------------------------------------------------------------

    def restore(self, record: WalRecord) -> None:
        """Resume from a record read back from disk (it is durable: it needs no new Persist)."""
        if record.height != self._record.height:
            raise ConsensusSafetyError(f"restoring a record for height {record.height}; "
                                       f"expected height {self._record.height}")
        self._record = record
        self._handed_out = record

    def set_members(self, height: int, members: frozenset[bytes]) -> None:
        """The validator set in force at the record's height: votes are signed only while the key is in it."""
        if height != self._record.height:
            raise ConsensusSafetyError(f"validator set given for height {height}; the record is at height "
                                       f"{self._record.height}")
        self._members = frozenset(members)

    def start_height(self, height: int) -> None:
        """A new height: round 0, nothing prepared, no votes (the old height is decided)."""
        if height <= self._record.height:
            raise ConsensusSafetyError(f"starting height {height}; expected a height above {self._record.height}")
        self._record = self._fresh(height)
        self._members = None if self._members is None else frozenset()  # until set_members names the new set

    def enter_round(self, round_: int) -> None:
        """Move to ``round_`` (strictly higher); votes of lower rounds are dropped from the record."""
        if round_ <= self._record.round:
            raise ConsensusSafetyError(f"asked to enter round {round_} at height {self._record.height}; "
                                       f"expected a round above the current round {self._record.round}")
        rec = self._record
        self._with(round=round_, prepare_votes=tuple(v for v in rec.prepare_votes if v[0] >= round_),
                   commit_votes=tuple(v for v in rec.commit_votes if v[0] >= round_))

    # ---- signing --------------------------------------------------------------------------------------

    def _guard(self, kind: str, height: int, round_: int, block_hash: bytes = b"") -> bool:
        """Apply every rule that protects a vote of ``kind``; True when the record holds this very vote."""
        rec = self._record
        verify_height(rec, height, kind)
        verify_member(self._members, self._key.public_key, height, kind)
        verify_round_not_below(rec, round_, kind)
        if kind == ROUND_CHANGE_VOTE:
            verify_prepared_below(rec, round_)
            return False
        votes = {PROPOSAL_VOTE: rec.proposal_votes, PREPARE_VOTE: rec.prepare_votes,
                 COMMIT_VOTE: rec.commit_votes}[kind]
        repeat = verify_single_vote(votes, round_, block_hash, kind, rec.height)
        if kind == COMMIT_VOTE:
            verify_commit_follows_prepare(rec, round_, block_hash)
        return repeat

    def _vote(self, msg: Message) -> SignedVote:
        if self._handed_out is self._record:
            return SignedVote(msg, (Broadcast(msg),))
        self._handed_out = self._record
        return SignedVote(msg, (Persist(self._record), Broadcast(msg)))

    def _with(self, **changes) -> None:
        self._record = replace(self._record, **changes)

    def sign_proposal(self, height: int, round_: int, block: Block, round_changes: tuple[RoundChange, ...] = (),
                      prepares: tuple[Prepare, ...] = ()) -> SignedVote:
        """PROPOSAL(height, round, block): never two different blocks for one (height, round)."""
        repeat = self._guard(PROPOSAL_VOTE, height, round_, block.hash)
        verify_reproposal_is_prepared_value(block, prepares)
        if not repeat:
            self._with(proposal_votes=tuple(sorted((*self._record.proposal_votes, (round_, block.hash)))))
        msg = sign_proposal(self._key, self._chain_id, height, round_, block, round_changes, prepares)
        return self._vote(msg)

    def sign_prepare(self, height: int, round_: int, block_hash: bytes) -> SignedVote:
        """PREPARE(height, round, hash): one hash per round, never for a round already left."""
        if not self._guard(PREPARE_VOTE, height, round_, block_hash):
            self._with(prepare_votes=tuple(sorted((*self._record.prepare_votes, (round_, block_hash)))))
        return self._vote(sign_prepare(self._key, self._chain_id, height, round_, block_hash))

    def sign_commit(self, height: int, round_: int, block: Block, proof: tuple[Prepare, ...]) -> SignedVote:
        """COMMIT(height, round, hash) after a PREPARE quorum: the record first holds ``block`` as prepared at
        ``round`` with ``proof`` (QBFT R2), so a later ROUND-CHANGE carries it."""
        if not self._guard(COMMIT_VOTE, height, round_, block.hash):
            # A repeat needs no change: the COMMIT and the prepared value were recorded together.
            self._with(prepared_round=round_, prepared_block=block, prepared_proof=tuple(proof),
                       commit_votes=tuple(sorted((*self._record.commit_votes, (round_, block.hash)))))
        return self._vote(sign_commit(self._key, self._chain_id, height, round_, block.hash))

    def sign_round_change(self, height: int, round_: int) -> SignedVote:
        """ROUND-CHANGE(height, round) carrying the record's prepared value; the round is entered first."""
        if round_ > self._record.round:
            self.enter_round(round_)
        self._guard(ROUND_CHANGE_VOTE, height, round_)
        rec = self._record
        msg = sign_round_change(self._key, self._chain_id, height, round_, rec.prepared_round, rec.prepared_block,
                                rec.prepared_proof)
        return self._vote(msg)

    def resend_current_round(self) -> list[SignedVote]:
        """The PREPARE and COMMIT of the current round, answered from the record (after a restart)."""
        rec = self._record
        out = []
        prepared = dict(rec.prepare_votes).get(rec.round)
        if prepared is not None:
            out.append(self.sign_prepare(rec.height, rec.round, prepared))
        committed = dict(rec.commit_votes).get(rec.round)
        if committed is not None and rec.prepared_block is not None and rec.prepared_block.hash == committed:
            out.append(self.sign_commit(rec.height, rec.round, rec.prepared_block, rec.prepared_proof))
        return out
