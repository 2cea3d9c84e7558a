"""Block headers, blocks, commit seals and certificates (DESIGN "Wire formats").

header = [chain_id, height, prev_hash, timestamp_ms, proposer, tx_count, results_root, state_root,
          validator_set_hash, next_validator_set_hash]; block_hash = H("carecoin/v1/header", P(header)).
``validator_set_hash`` is the hash of the set that seals this height, ``next_validator_set_hash`` that of the
set sealing height + 1 (equal unless a validator-set change takes effect there);
validator_set_hash(S) = H("carecoin/v1/validators", P([public_key, ...])) in the set's order.
A block on disk or wire is P([header, [tx_envelope_bytes, ...]]); a certificate is P([[validator, sig], ...])
where each signature is over seal_message(chain_id, height, block_hash).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger import codec
from ledger.errors import SchemaError, SignatureError
from ledger.hashing import TAG_COMMIT, TAG_HEADER, TAG_VALIDATORS, H
from ledger.keys import KeyPair, verify

MAX_BLOCK_TXS = 10_000


def quorum(n: int) -> int:
    """ceil(2n/3): the number of distinct validators a decision needs (not 2f+1; they differ for n != 3f+1)."""
    if n < 1:
        raise ValueError(f"validator set of size {n}; expected at least 1")
    return (2 * n - 1) // 3 + 1


def max_faulty(n: int) -> int:
    """f = (n-1)//3: the number of byzantine validators the set tolerates."""
    return (n - 1) // 3


def validator_set_hash(public_keys: list[bytes] | tuple[bytes, ...]) -> bytes:
    """H("carecoin/v1/validators", P([public_key, ...])), keys in the set's order (order matters)."""
    return H(TAG_VALIDATORS, codec.encode(list(public_keys)))


def seal_message(chain_id: str, height: int, block_hash: bytes) -> bytes:
    """The bytes every validator signs to commit a block: H("carecoin/v1/commit", P([chain_id, height, hash]))."""
    return H(TAG_COMMIT, codec.encode([chain_id, height, block_hash]))


@dataclass(frozen=True, slots=True)
class Header:
    """A block header (10 fields). ``next_validator_set_hash`` defaults to ``validator_set_hash``: the same
    set seals the next height, which is every header except the one announcing a validator-set change."""

    chain_id: str
    height: int
    prev_hash: bytes
    timestamp_ms: int
    proposer: bytes
    tx_count: int
    results_root: bytes
    state_root: bytes
    validator_set_hash: bytes
    next_validator_set_hash: bytes = b""

    def __post_init__(self) -> None:
        if not self.next_validator_set_hash:
            object.__setattr__(self, "next_validator_set_hash", self.validator_set_hash)

    @property
    def changes_validator_set(self) -> bool:
        """True iff a different set seals the next height (this header announces a validator-set change)."""
        return self.next_validator_set_hash != self.validator_set_hash

    def to_list(self) -> list:
        return [self.chain_id, self.height, self.prev_hash, self.timestamp_ms, self.proposer,
                self.tx_count, self.results_root, self.state_root, self.validator_set_hash,
                self.next_validator_set_hash]

    def encode(self) -> bytes:
        return codec.encode(self.to_list())

    def hash(self) -> bytes:
        return H(TAG_HEADER, self.encode())

    @classmethod
    def from_list(cls, obj: object) -> "Header":
        if not (isinstance(obj, list) and len(obj) == 10):
            seen = f"{len(obj)} fields" if isinstance(obj, list) else type(obj).__name__
            raise SchemaError(f"header: expected an array of 10 fields, got {seen}")
        chain_id, height, prev, ts, proposer, count, rr, sr, vsh, next_vsh = obj
        if not isinstance(chain_id, str) or not chain_id:
            raise SchemaError("header: chain_id must be a non-empty str")
        for name, v in (("height", height), ("timestamp_ms", ts), ("tx_count", count)):
            if not isinstance(v, int) or v < 0:
                raise SchemaError(f"header: {name} must be a non-negative int, got {v!r}")
        for name, v in (("prev_hash", prev), ("proposer", proposer), ("results_root", rr),
                        ("state_root", sr), ("validator_set_hash", vsh),
                        ("next_validator_set_hash", next_vsh)):
            if not isinstance(v, bytes) or len(v) != 32:
                raise SchemaError(f"header: {name} must be 32 bytes")
        return cls(chain_id, height, prev, ts, proposer, count, rr, sr, vsh, next_vsh)

    @classmethod
    def decode(cls, raw: bytes) -> "Header":
        return cls.from_list(codec.decode(raw))


@dataclass(frozen=True, slots=True)
class Block:
    header: Header
    txs: tuple[bytes, ...]  # raw envelopes, in block order
    hash: bytes = field(default=b"", compare=False)

    def __post_init__(self) -> None:
        if not self.hash:
            object.__setattr__(self, "hash", self.header.hash())

    @property
    def height(self) -> int:
        return self.header.height

    def encode(self) -> bytes:
        return codec.encode([self.header.to_list(), list(self.txs)])

    @classmethod
    def decode(cls, raw: bytes) -> "Block":
        obj = codec.decode(raw)
        if not (isinstance(obj, list) and len(obj) == 2 and isinstance(obj[1], list)):
            raise SchemaError("block: expected [header, [tx, ...]]")
        header = Header.from_list(obj[0])
        txs = obj[1]
        if len(txs) > MAX_BLOCK_TXS or not all(isinstance(t, bytes) for t in txs):
            raise SchemaError(f"block: expected at most {MAX_BLOCK_TXS} tx byte strings")
        if len(txs) != header.tx_count:
            raise SchemaError(f"block: header says {header.tx_count} txs, body has {len(txs)}")
        return cls(header, tuple(txs))


@dataclass(frozen=True, slots=True)
class CommitSeal:
    validator: bytes
    signature: bytes


def make_seal(key: KeyPair, chain_id: str, height: int, block_hash: bytes) -> CommitSeal:
    return CommitSeal(key.public_key, key.sign(seal_message(chain_id, height, block_hash)))


def encode_certificate(seals: list[CommitSeal] | tuple[CommitSeal, ...]) -> bytes:
    return codec.encode([[s.validator, s.signature] for s in seals])


def decode_certificate(raw: bytes) -> tuple[CommitSeal, ...]:
    obj = codec.decode(raw)
    if not isinstance(obj, list):
        raise SchemaError("certificate: expected an array of [validator, signature]")
    seals = []
    for item in obj:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], bytes)
                and len(item[0]) == 32 and isinstance(item[1], bytes) and len(item[1]) == 64):
            raise SchemaError("certificate: each seal must be [validator: bin32, signature: bin64]")
        seals.append(CommitSeal(item[0], item[1]))
    return tuple(seals)


def verify_certificate(chain_id: str, height: int, block_hash: bytes, seals, validators) -> None:
    """Raise ``SignatureError`` unless at least quorum(n) distinct members of ``validators`` sealed the block."""
    members = set(validators)
    need = quorum(len(validators))
    message = seal_message(chain_id, height, block_hash)
    seen: set[bytes] = set()
    for seal in seals:
        if seal.validator not in members:
            raise SignatureError(f"seal by {seal.validator.hex()[:16]}…, which is not a validator at height {height}")
        if seal.validator in seen:
            raise SignatureError(f"validator {seal.validator.hex()[:16]}… sealed twice")
        if not verify(seal.validator, message, seal.signature):
            raise SignatureError(f"seal by {seal.validator.hex()[:16]}… does not verify for block {block_hash.hex()[:16]}…")
        seen.add(seal.validator)
    if len(seen) < need:
        raise SignatureError(f"{len(seen)} distinct validator seals; a quorum of {len(validators)} needs {need}")
