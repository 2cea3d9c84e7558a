"""Per-transaction results: the leaves of a block's ``results_root`` (DESIGN "Wire formats").

leaf = P([tx_hash: bin32, status: int, reason: str, events_hash: bin32, envelope_hash: bin32]), status 0 =
applied, any other value is the failure code; events = [[kind: str, ...fields], ...],
events_hash = H("carecoin/v1/events", P(events)), envelope_hash = H("carecoin/v1/envelope", envelope) over the
envelope bytes exactly as the block carries them. The envelope hash is what makes a block hash fix every byte
of its body: a signature bit flipped, or an extra valid signer appended, gives another leaf and another root.

A ``TxResult`` is what execution decided (hash, status, reason, events); it is stored without the envelope
hash (the block next to it holds the envelope), and ``leaf(envelope_hash)`` joins the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ledger import codec
from ledger.errors import SchemaError
from ledger.hashing import TAG_ENVELOPE, TAG_EVENTS, H

STATUS_APPLIED = 0


def compute_envelope_hash(envelope: bytes) -> bytes:
    """H("carecoin/v1/envelope", envelope): binds the exact envelope bytes, signatures included."""
    return H(TAG_ENVELOPE, envelope)


@dataclass(frozen=True, slots=True)
class TxResult:
    tx_hash: bytes
    status: int
    reason: str
    events: tuple = ()  # tuple of lists: [kind, ...fields]
    _events_bytes: bytes = field(default=b"", repr=False, compare=False)
    _head: bytes = field(default=b"", repr=False, compare=False)  # P([tx_hash, status, reason]) minus its array byte
    # The rule's message of a failed tx: NOT on chain (neither leaf nor storage form); the node keeps it in a
    # bounded node-local index (``Store.get_detail``) so a client learns why, beyond the reason code.
    detail: str = field(default="", repr=False, compare=False)

    @property
    def applied(self) -> bool:
        return self.status == STATUS_APPLIED

    @property
    def events_bytes(self) -> bytes:
        if not self._events_bytes:
            object.__setattr__(self, "_events_bytes", codec.encode([list(e) for e in self.events]))
        return self._events_bytes

    @property
    def events_hash(self) -> bytes:
        return H(TAG_EVENTS, self.events_bytes)

    def _get_head(self) -> bytes:
        # Leaf and storage form share their first three fields: encode them once, then append the rest
        # (the 3-array's header byte 0x93 is dropped for the 0x95 / 0x94 of the full array). Byte-identical
        # to encoding the whole array, and the canonical checks of ``codec.encode`` still run on the shared fields.
        if not self._head:
            object.__setattr__(self, "_head", codec.encode([self.tx_hash, self.status, self.reason])[1:])
        return self._head

    def leaf(self, envelope_hash: bytes) -> bytes:
        """Merkle leaf: P([tx_hash, status, reason, events_hash, envelope_hash])."""
        if type(envelope_hash) is not bytes or len(envelope_hash) != 32:
            raise SchemaError(f"result leaf: envelope_hash must be 32 bytes, got {envelope_hash!r:.40}")
        return b"\x95" + self._get_head() + b"\xc4\x20" + self.events_hash + b"\xc4\x20" + envelope_hash

    def encode(self) -> bytes:
        """Storage form: P([tx_hash, status, reason, events])."""
        return b"\x94" + self._get_head() + self.events_bytes

    @classmethod
    def decode(cls, raw: bytes) -> "TxResult":
        obj = codec.decode(raw)
        if not (isinstance(obj, list) and len(obj) == 4 and isinstance(obj[0], bytes) and len(obj[0]) == 32
                and isinstance(obj[1], int) and isinstance(obj[2], str) and isinstance(obj[3], list)):
            raise SchemaError("tx result: expected [tx_hash: bin32, status: int, reason: str, events: array]")
        return cls(obj[0], obj[1], obj[2], tuple(obj[3]))


def compute_leaves(results: Sequence[TxResult], envelopes: Sequence[bytes]) -> list[bytes]:
    """The result leaves of a block: one per (result, envelope bytes as the block carries them), in order."""
    if len(results) != len(envelopes):
        raise SchemaError(f"{len(results)} results for {len(envelopes)} envelopes; expected one each")
    return [r.leaf(H(TAG_ENVELOPE, e)) for r, e in zip(results, envelopes)]


@dataclass(frozen=True, slots=True)
class Leaf:
    """The decoded fields of a result leaf."""

    tx_hash: bytes
    status: int
    reason: str
    events_hash: bytes
    envelope_hash: bytes


def decode_leaf(raw: bytes) -> Leaf:
    """Decode a result leaf, checking its shape (5 fields: the v2 leaf binds the envelope bytes)."""
    obj = codec.decode(raw)
    if not (isinstance(obj, list) and len(obj) == 5 and isinstance(obj[0], bytes) and len(obj[0]) == 32
            and isinstance(obj[1], int) and obj[1] >= 0 and isinstance(obj[2], str)
            and isinstance(obj[3], bytes) and len(obj[3]) == 32
            and isinstance(obj[4], bytes) and len(obj[4]) == 32):
        raise SchemaError("result leaf: expected [tx_hash: bin32, status: int, reason: str, events_hash: bin32, "
                          "envelope_hash: bin32]")
    return Leaf(obj[0], obj[1], obj[2], obj[3], obj[4])
