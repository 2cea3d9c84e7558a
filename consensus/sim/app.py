"""The fake application ("node") behind each simulated replica: builds, validates and records blocks.

Theory of operation: a real node executes transactions before voting; the simulator has no transactions,
so a block is an empty header whose ``state_root`` is derived deterministically from its parent, height,
proposer and a per-instance salt (two twins with one key therefore build *different* blocks for the same
slot, which is exactly the equivocation we want to provoke). Validation checks what a real node checks
about the header: height and parent follow this replica's own decided chain, the timestamp is above the
parent's and not too far ahead of the (virtual) clock, and the header names this chain and validator set.
The decided log survives a crash (it is the block store); the consensus WAL lives in the host.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.block import Block, CommitSeal, Header, validator_set_hash
from ledger.hashing import H, sha256

TAG_SIM_STATE = "carecoin/v1/sim-state"
GENESIS_HASH = H(TAG_SIM_STATE, b"genesis")
GENESIS_TIME_MS = 0
MAX_FUTURE_MS = 5_000  # a proposal's timestamp may run at most this far ahead of the validator's clock
EMPTY_RESULTS_ROOT = sha256(b"")


@dataclass(frozen=True, slots=True)
class Decision:
    """One block in a replica's decided log, with how it got there ("consensus" or "sync")."""

    block: Block
    seals: tuple[CommitSeal, ...]
    round: int
    source: str
    time_ms: int


class FakeApp:
    """Block building and header validation for one replica; holds its crash-surviving decided log."""

    def __init__(self, chain_id: str, validators: tuple[bytes, ...], salt: bytes = b"") -> None:
        self.chain_id = chain_id
        self.validators = validators
        self.vset_hash = validator_set_hash(validators)
        self.salt = salt
        self.log: list[Decision] = []

    # ---- reads ------------------------------------------------------------------------------------------

    def get_height(self) -> int:
        """Height of the last decided block (0 = only genesis)."""
        return len(self.log)

    def get_last_hash(self) -> bytes:
        """Hash of the last decided block, or the genesis hash."""
        return self.log[-1].block.hash if self.log else GENESIS_HASH

    def get_last_timestamp(self) -> int:
        """Timestamp of the last decided block, or the genesis time."""
        return self.log[-1].block.header.timestamp_ms if self.log else GENESIS_TIME_MS

    # ---- building and validating ------------------------------------------------------------------------

    def compute_block(self, height: int, proposer: bytes, now_ms: int, salt: bytes | None = None) -> Block:
        """Build the empty block this replica would propose at ``height`` on top of its decided chain."""
        prev = self.get_last_hash()
        ts = max(self.get_last_timestamp() + 1, now_ms)
        use_salt = self.salt if salt is None else salt
        state_root = H(TAG_SIM_STATE, prev + height.to_bytes(8, "big") + proposer + use_salt)
        header = Header(self.chain_id, height, prev, ts, proposer, 0, EMPTY_RESULTS_ROOT, state_root,
                        self.vset_hash)
        return Block(header, ())

    def get_block_problem(self, block: Block, now_ms: int) -> str:
        """Return why ``block`` cannot be the next block of this replica's chain ("" when it can)."""
        hd = block.header
        expected_height = self.get_height() + 1
        if hd.height != expected_height:
            return f"height {hd.height}; expected {expected_height}"
        if hd.prev_hash != self.get_last_hash():
            return "prev_hash does not match the last decided block"
        if hd.chain_id != self.chain_id:
            return f"chain_id {hd.chain_id!r}; expected {self.chain_id!r}"
        if hd.validator_set_hash != self.vset_hash:
            return "validator_set_hash does not match the validator set"
        if hd.proposer not in self.validators:
            return "proposer is not a validator"
        if hd.timestamp_ms <= self.get_last_timestamp():
            return f"timestamp {hd.timestamp_ms} is not above the parent's {self.get_last_timestamp()}"
        if hd.timestamp_ms > now_ms + MAX_FUTURE_MS:
            return f"timestamp {hd.timestamp_ms} is more than {MAX_FUTURE_MS} ms ahead of {now_ms}"
        if hd.tx_count != 0 or block.txs or hd.results_root != EMPTY_RESULTS_ROOT:
            return "the simulator's blocks carry no transactions"
        return ""

    def process_decision(self, decision: Decision) -> None:
        """Append a decided block (the caller has already checked it extends this chain)."""
        self.log.append(decision)
