"""Events into the replica and actions out of it (sans-IO: the caller does every I/O).

The node (or the simulator) feeds events to ``Replica.handle(event) -> list[Action]`` one at a time, from
one serialized loop, and carries out the returned actions **in order**. A ``Persist`` action must be durable
(fsync) before any action after it in the same list is carried out: that is what makes a vote safe across a
crash.
"""

from __future__ import annotations

from dataclasses import dataclass

from consensus.messages import Message
from ledger.block import Block, CommitSeal

# Timer kinds. PROPOSE fires when the block interval since the parent has passed: only then does round 0
# start (its proposer builds a block, everyone starts the round-0 timer). ROUND is the round timeout.
TIMER_PROPOSE = "propose"
TIMER_ROUND = "round"


# ---- events -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MessageReceived:
    message: Message


@dataclass(frozen=True, slots=True)
class TimerExpired:
    height: int
    round: int
    kind: str  # TIMER_PROPOSE or TIMER_ROUND


@dataclass(frozen=True, slots=True)
class BlockProposalReady:
    """Answer to ``RequestBlock``: a fresh block the node built from its mempool and executed."""

    height: int
    round: int
    block: Block


@dataclass(frozen=True, slots=True)
class BlockValidated:
    """Answer to ``ValidateBlock``: whether the block executes to its header's roots and follows the rules."""

    height: int
    block_hash: bytes
    valid: bool
    reason: str = ""
    # The body the verdict was computed from (``ValidateBlock.body_digest`` echoed); b"" applies the verdict to
    # the one body of ``block_hash`` the replica has in flight (it never has two).
    body_digest: bytes = b""


@dataclass(frozen=True, slots=True)
class SyncedTo:
    """The node committed blocks up to ``height`` by catch-up (R3b); consensus moves to ``height + 1``."""

    height: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class ValidatorSetScheduled:
    """``validators`` (in the set's own order) validate from ``effective_height`` on.

    The node feeds it after committing block H that decided a validator-set change (``effective_height`` =
    H + 2), before it feeds the replica any other event; feeding the set already in force is a no-op, so a
    node may feed ``ValidatorSetScheduled(H + 2, V(H + 2))`` after every commit (by consensus or catch-up)."""

    effective_height: int
    validators: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Restarted:
    """Replay of the write-ahead record after a restart (``record`` is None when there was none).

    ``validator_sets``: the sets in force at the height the replica starts at (h = head + 1) and at h + 1, as
    ``ValidatorSetScheduled(h, V(h))`` and ``ValidatorSetScheduled(h + 1, V(h + 1))`` (either may be left
    out while it equals ``ReplicaConfig.validators``, the genesis set)."""

    record: "WalRecord | None"
    validator_sets: tuple[ValidatorSetScheduled, ...] = ()


Event = (MessageReceived | TimerExpired | BlockProposalReady | BlockValidated | SyncedTo | ValidatorSetScheduled
         | Restarted)


# ---- actions ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send to every other validator (the replica has already counted its own copy)."""

    message: Message


@dataclass(frozen=True, slots=True)
class SendTo:
    validator: bytes
    message: Message


@dataclass(frozen=True, slots=True)
class Persist:
    """Write ``record`` durably (fsync) before carrying out any later action of the same batch."""

    record: "WalRecord"


@dataclass(frozen=True, slots=True)
class StartTimer:
    height: int
    round: int
    kind: str
    delay_ms: int


@dataclass(frozen=True, slots=True)
class RequestBlock:
    """Build a fresh block for (height, round) from the mempool, execute it, answer ``BlockProposalReady``."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class ValidateBlock:
    """Execute ``block`` against the parent state and answer ``BlockValidated`` (echo ``body_digest``)."""

    height: int
    block: Block
    body_digest: bytes = b""  # consensus.bodies.compute_body_digest(block): which copy of the header this is


@dataclass(frozen=True, slots=True)
class Decide:
    """``block`` is decided at its height with exactly these seals as its commit certificate."""

    block: Block
    seals: tuple[CommitSeal, ...]
    round: int


@dataclass(frozen=True, slots=True)
class RequestSync:
    """Peers are ahead: fetch committed blocks (with certificates) up to at least ``height``."""

    height: int


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    """Two different signed votes by one validator for the same (height, round, type)."""

    first: Message
    second: Message


Action = Broadcast | SendTo | Persist | StartTimer | RequestBlock | ValidateBlock | Decide | RequestSync | ReportEvidence


# ---- the write-ahead record ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WalRecord:
    """What this replica's votes at ``height`` commit it to (see QBFT.md "What is persisted")."""

    height: int
    round: int
    prepared_round: int  # NO_ROUND (-1) when nothing is prepared
    prepared_block: Block | None
    prepared_proof: tuple  # the quorum of Prepare messages that prepared it
    prepare_votes: tuple[tuple[int, bytes], ...]  # (round, block_hash) this replica PREPAREd
    commit_votes: tuple[tuple[int, bytes], ...]  # (round, block_hash) this replica COMMITted
    # (round, block_hash) this replica PROPOSED: a proposer that crashes after broadcasting must never sign a
    # different block for the same round after a restart (found by the simulator, seed 2484).
    proposal_votes: tuple[tuple[int, bytes], ...] = ()
