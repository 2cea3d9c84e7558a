"""Per-transaction results: the leaves of a block's ``results_root`` (DESIGN "Wire formats").

leaf = P([tx_hash: bin32, status: int, reason: str, events_hash: bin32]), status 0 = applied, any other
value is the failure code; events = [[kind: str, ...fields], ...], events_hash = H("carecoin/v1/events", P(events)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger import codec
from ledger.errors import SchemaError
from ledger.hashing import TAG_EVENTS, H

STATUS_APPLIED = 0


@dataclass(frozen=True, slots=True)
class TxResult:
    tx_hash: bytes
    status: int
    reason: str
    events: tuple = ()  # tuple of lists: [kind, ...fields]
    _events_bytes: bytes = field(default=b"", repr=False, compare=False)
    _head: bytes = field(default=b"", repr=False, compare=False)  # P([tx_hash, status, reason]) minus its array byte

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
        # Leaf and storage form share their first three fields: encode them once, then append the fourth
        # (a 4-array's header byte is 0x94; the 3-array's 0x93 is dropped). Byte-identical to encoding the
        # whole 4-array, and the canonical checks of ``codec.encode`` still run on the shared fields.
        if not self._head:
            object.__setattr__(self, "_head", codec.encode([self.tx_hash, self.status, self.reason])[1:])
        return self._head

    def leaf(self) -> bytes:
        """Merkle leaf: P([tx_hash, status, reason, events_hash])."""
        return b"\x94" + self._get_head() + b"\xc4\x20" + self.events_hash

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


def decode_leaf(raw: bytes) -> tuple[bytes, int, str, bytes]:
    """Decode a result leaf into (tx_hash, status, reason, events_hash), checking its shape."""
    obj = codec.decode(raw)
    if not (isinstance(obj, list) and len(obj) == 4 and isinstance(obj[0], bytes) and len(obj[0]) == 32
            and isinstance(obj[1], int) and obj[1] >= 0 and isinstance(obj[2], str)
            and isinstance(obj[3], bytes) and len(obj[3]) == 32):
        raise SchemaError("result leaf: expected [tx_hash: bin32, status: int, reason: str, events_hash: bin32]")
    return obj[0], obj[1], obj[2], obj[3]
