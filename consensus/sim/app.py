"""The fake application ("node") behind each simulated replica: builds, validates and records blocks.

Theory of operation: a real node executes transactions before voting; the simulator does not execute
them, but its blocks carry real signed envelopes (``ledger.tx.make_tx`` by a simulated client) so a byzantine
proposer can send a copy of a block whose body was altered (a flipped signature bit) under the same header.
The header binds every envelope byte through ``results_root`` (as wire format v2 does with its result
leaves), and ``state_root`` is derived deterministically from the parent, height, proposer and a
per-instance salt (two twins with one key therefore build *different* blocks for the same slot, which is
exactly the equivocation we want to provoke). Validation checks what a real node checks: height and parent
follow this replica's own decided chain, the timestamp is above the parent's and not too far ahead of the
(virtual) clock, the header names this chain, the set in force at its height (``validator_set_hash``) and the
one in force at the next (``next_validator_set_hash``), its proposer is in that set, every envelope's signatures
verify and the body matches the header. The decided log survives a crash (it is the block store); the consensus WAL lives
in the host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ledger import codec
from ledger.block import Block, CommitSeal, Header, validator_set_hash
from ledger.errors import LedgerError
from ledger.hashing import H, sha256
from ledger.keys import KeyPair
from ledger.tx import decode_tx, make_tx

TAG_SIM_STATE = "carecoin/v1/sim-state"
GENESIS_HASH = H(TAG_SIM_STATE, b"genesis")
GENESIS_TIME_MS = 0
MAX_FUTURE_MS = 5_000  # a proposal's timestamp may run at most this far ahead of the validator's clock
TAG_SIM_BODY = "carecoin/v1/sim-body"
SIM_CLIENT = KeyPair.from_seed(sha256(b"carecoin-sim-client"))
TXS_PER_BLOCK = 2


def compute_body_root(txs: tuple[bytes, ...]) -> bytes:
    """The header's ``results_root`` in the simulator: a hash over every envelope byte of the body."""
    return H(TAG_SIM_BODY, codec.encode(list(txs)))


def compute_txs(chain_id: str, height: int, salt: bytes) -> tuple[bytes, ...]:
    """The envelopes a block at ``height`` carries: signed notes of the simulated client (deterministic)."""
    return tuple(make_tx(chain_id, "sim/note", SIM_CLIENT, height, [i, salt]).raw for i in range(TXS_PER_BLOCK))


def flip_signature_bit(envelope: bytes, bit: int = 0) -> bytes:
    """The envelope with one bit of its last signature flipped (the last 64 bytes are that signature)."""
    pos = len(envelope) - 1 - (bit // 8) % 64
    return envelope[:pos] + bytes([envelope[pos] ^ (1 << (bit % 8))]) + envelope[pos + 1:]


def corrupt_body(block: Block, bit: int = 0) -> Block:
    """A copy of ``block`` with the same header (same hash) and one flipped signature bit in its body."""
    txs = list(block.txs)
    i = (bit // 512) % len(txs)
    txs[i] = flip_signature_bit(txs[i], bit % 512)
    return Block(block.header, tuple(txs))


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

    def __init__(self, chain_id: str, validators: tuple[bytes, ...], salt: bytes = b"",
                 sets_at: Callable[[int], tuple[bytes, ...]] | None = None) -> None:
        self.chain_id = chain_id
        self.validators = validators  # the genesis set
        self.sets_at = sets_at or (lambda height: validators)  # V(h): the set in force at each height
        self._hashes: dict[tuple[bytes, ...], bytes] = {}
        self.salt = salt
        self.log: list[Decision] = []

    # ---- reads ------------------------------------------------------------------------------------------

    def get_set_hash(self, height: int) -> bytes:
        """validator_set_hash of V(height)."""
        vals = self.sets_at(height)
        if vals not in self._hashes:
            self._hashes[vals] = validator_set_hash(vals)
        return self._hashes[vals]

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
        """Build the block this replica would propose at ``height`` on top of its decided chain."""
        prev = self.get_last_hash()
        ts = max(self.get_last_timestamp() + 1, now_ms)
        use_salt = self.salt if salt is None else salt
        state_root = H(TAG_SIM_STATE, prev + height.to_bytes(8, "big") + proposer + use_salt)
        txs = compute_txs(self.chain_id, height, use_salt)
        header = Header(self.chain_id, height, prev, ts, proposer, len(txs), compute_body_root(txs), state_root,
                        self.get_set_hash(height), self.get_set_hash(height + 1))
        return Block(header, txs)

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
        if hd.validator_set_hash != self.get_set_hash(hd.height):
            return f"validator_set_hash does not match the set in force at height {hd.height}"
        if hd.next_validator_set_hash != self.get_set_hash(hd.height + 1):
            return f"next_validator_set_hash does not match the set in force at height {hd.height + 1}"
        if hd.proposer not in self.sets_at(hd.height):
            return f"proposer is not a validator at height {hd.height}"
        if hd.timestamp_ms <= self.get_last_timestamp():
            return f"timestamp {hd.timestamp_ms} is not above the parent's {self.get_last_timestamp()}"
        if hd.timestamp_ms > now_ms + MAX_FUTURE_MS:
            return f"timestamp {hd.timestamp_ms} is more than {MAX_FUTURE_MS} ms ahead of {now_ms}"
        if hd.tx_count != len(block.txs):
            return f"header says {hd.tx_count} txs; the body has {len(block.txs)}"
        for i, raw in enumerate(block.txs):
            try:
                decode_tx(raw).verify_signatures()
            except LedgerError as exc:
                return f"tx {i}: {exc}"
        if hd.results_root != compute_body_root(block.txs):
            return "the body does not match the header's results_root"
        return ""

    def process_decision(self, decision: Decision) -> None:
        """Append a decided block (the caller has already checked it extends this chain)."""
        self.log.append(decision)
