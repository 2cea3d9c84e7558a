"""Signed consensus messages: PROPOSAL, PREPARE, COMMIT, ROUND-CHANGE.

Each message is signed by a validator's node key over
``H("carecoin/v1/consensus", P([chain_id, type, height, round, digest...]))``; the signed part never contains
the justification, which is itself made of signed messages and checked one by one. A COMMIT additionally
carries the commit seal of DESIGN (over chain id, height and block hash, no round), which is what goes
into the block's certificate.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import codec
from ledger.block import Block, seal_message
from ledger.hashing import TAG_CONSENSUS, H
from ledger.keys import KeyPair, verify

PROPOSAL = "PROPOSAL"
PREPARE = "PREPARE"
COMMIT = "COMMIT"
ROUND_CHANGE = "ROUND-CHANGE"

NO_ROUND = -1  # prepared_round when nothing is prepared


def signing_bytes(chain_id: str, kind: str, height: int, round_: int, *digest: int | bytes) -> bytes:
    return H(TAG_CONSENSUS, codec.encode([chain_id, kind, height, round_, *digest]))


@dataclass(frozen=True, slots=True)
class Prepare:
    height: int
    round: int
    block_hash: bytes
    signer: bytes
    signature: bytes

    def payload(self, chain_id: str) -> bytes:
        return signing_bytes(chain_id, PREPARE, self.height, self.round, self.block_hash)


@dataclass(frozen=True, slots=True)
class Commit:
    height: int
    round: int
    block_hash: bytes
    seal: bytes  # Ed25519 over seal_message(chain_id, height, block_hash)
    signer: bytes
    signature: bytes

    def payload(self, chain_id: str) -> bytes:
        return signing_bytes(chain_id, COMMIT, self.height, self.round, self.block_hash, self.seal)


@dataclass(frozen=True, slots=True)
class RoundChange:
    height: int
    round: int
    prepared_round: int  # NO_ROUND when nothing is prepared
    prepared_block: Block | None
    prepares: tuple[Prepare, ...]  # the quorum of PREPAREs for (height, prepared_round, hash(prepared_block))
    signer: bytes
    signature: bytes

    @property
    def prepared_hash(self) -> bytes:
        return self.prepared_block.hash if self.prepared_block is not None else b""

    def payload(self, chain_id: str) -> bytes:
        return signing_bytes(chain_id, ROUND_CHANGE, self.height, self.round, self.prepared_round,
                             self.prepared_hash)


@dataclass(frozen=True, slots=True)
class Proposal:
    height: int
    round: int
    block: Block
    round_changes: tuple[RoundChange, ...]  # empty at round 0
    prepares: tuple[Prepare, ...]  # PREPAREs of the highest prepared value, when one is re-proposed
    signer: bytes
    signature: bytes

    def payload(self, chain_id: str) -> bytes:
        return signing_bytes(chain_id, PROPOSAL, self.height, self.round, self.block.hash)


Message = Proposal | Prepare | Commit | RoundChange


def verify_message(chain_id: str, msg: Message) -> bool:
    """True iff the message's own signature (and a COMMIT's seal) verify for its signer."""
    if not verify(msg.signer, msg.payload(chain_id), msg.signature):
        return False
    if isinstance(msg, Commit):
        return verify(msg.signer, seal_message(chain_id, msg.height, msg.block_hash), msg.seal)
    return True


def sign_prepare(key: KeyPair, chain_id: str, height: int, round_: int, block_hash: bytes) -> Prepare:
    sig = key.sign(signing_bytes(chain_id, PREPARE, height, round_, block_hash))
    return Prepare(height, round_, block_hash, key.public_key, sig)


def sign_commit(key: KeyPair, chain_id: str, height: int, round_: int, block_hash: bytes) -> Commit:
    seal = key.sign(seal_message(chain_id, height, block_hash))
    sig = key.sign(signing_bytes(chain_id, COMMIT, height, round_, block_hash, seal))
    return Commit(height, round_, block_hash, seal, key.public_key, sig)


def sign_round_change(key: KeyPair, chain_id: str, height: int, round_: int, prepared_round: int,
                      prepared_block: Block | None, prepares: tuple[Prepare, ...]) -> RoundChange:
    phash = prepared_block.hash if prepared_block is not None else b""
    sig = key.sign(signing_bytes(chain_id, ROUND_CHANGE, height, round_, prepared_round, phash))
    return RoundChange(height, round_, prepared_round, prepared_block, tuple(prepares), key.public_key, sig)


def sign_proposal(key: KeyPair, chain_id: str, height: int, round_: int, block: Block,
                  round_changes: tuple[RoundChange, ...] = (), prepares: tuple[Prepare, ...] = ()) -> Proposal:
    sig = key.sign(signing_bytes(chain_id, PROPOSAL, height, round_, block.hash))
    return Proposal(height, round_, block, tuple(round_changes), tuple(prepares), key.public_key, sig)


# Wire encoding (encode_message / decode_message with size limits) lives in consensus.wire.
