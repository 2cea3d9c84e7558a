"""Transactions: body, signed envelope, hash and signature checks (DESIGN "Wire formats").

body = [chain_id: str, kind: str, sender: bin32, nonce: int, payload: array]
tx_hash = H("carecoin/v1/tx", P(body)); every signature is Ed25519 over tx_hash
envelope = P([body, [[public_key: bin32, signature: bin64], ...]])

The first signature must be the sender's; a further signature (a second factor) is checked here for
validity, by admission (``ledger.chain.check_signers``) for being the sender's registered second key, and by
the state transition for whether policy required it.

**System transactions.** A block's proposer makes one system transaction, ``block-sweep`` (``ledger.sweeps``):
its sender is 32 zero bytes (a small-order point: no key signs as it) and it carries NO signature, so "every
signature is valid" holds vacuously. Only that shape may have an empty signature list; admission refuses
the kind from clients, and block validation checks its exact bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger import codec
from ledger.errors import DecodeError, SchemaError, SignatureError
from ledger.hashing import TAG_TX, H
from ledger.keys import KeyPair, verify

MAX_TX_BYTES = 64 * 1024
MAX_SIGNATURES = 4
MAX_KIND_LEN = 32
MAX_CHAIN_ID_LEN = 64
SYSTEM_SENDER = bytes(32)  # the sender of system transactions: nobody holds a key for it
SWEEP_KIND = "block-sweep"  # the one system transaction kind (made by a block's proposer, never by a client)


def is_system_body(body: "TxBody") -> bool:
    """True for a system transaction's body: the sweep kind from the zero sender."""
    return body.kind == SWEEP_KIND and body.sender == SYSTEM_SENDER


@dataclass(frozen=True, slots=True)
class TxBody:
    chain_id: str
    kind: str
    sender: bytes
    nonce: int
    payload: tuple

    def to_list(self) -> list:
        return [self.chain_id, self.kind, self.sender, self.nonce, list(self.payload)]

    def encode(self) -> bytes:
        return codec.encode(self.to_list())

    def hash(self) -> bytes:
        return H(TAG_TX, self.encode())


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A decoded envelope; ``raw`` keeps the exact bytes that were hashed and stored."""

    body: TxBody
    signatures: tuple[tuple[bytes, bytes], ...]
    raw: bytes = field(repr=False)
    tx_hash: bytes

    @property
    def signers(self) -> tuple[bytes, ...]:
        return tuple(pk for pk, _ in self.signatures)

    def verify_signatures(self) -> None:
        """Raise ``SignatureError`` unless the sender signed first and every signature verifies."""
        if not self.signatures:
            if is_system_body(self.body):
                return  # a system transaction carries no signature: nothing to verify
            raise SignatureError("transaction has no signature; expected the sender's")
        if self.signatures[0][0] != self.body.sender:
            raise SignatureError(
                f"first signature is by {self.signatures[0][0].hex()[:16]}…; "
                f"expected the sender {self.body.sender.hex()[:16]}…"
            )
        seen: set[bytes] = set()
        for pk, sig in self.signatures:
            if pk in seen:
                raise SignatureError(f"key {pk.hex()[:16]}… signed twice")
            seen.add(pk)
            if not verify(pk, self.tx_hash, sig):
                raise SignatureError(f"signature by {pk.hex()[:16]}… does not verify over the tx hash")


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise SchemaError(message)


def body_from_list(obj: Any) -> TxBody:
    """Check the shape of a decoded body array and build a ``TxBody``."""
    # (each message is built only when its check fails: this runs once per submitted tx)
    _expect(isinstance(obj, list) and len(obj) == 5, "tx body: expected an array of 5 fields")
    chain_id, kind, sender, nonce, payload = obj
    if not (isinstance(chain_id, str) and 0 < len(chain_id) <= MAX_CHAIN_ID_LEN):
        raise SchemaError(f"tx body: chain_id must be a non-empty str of at most {MAX_CHAIN_ID_LEN} chars")
    if not (isinstance(kind, str) and 0 < len(kind) <= MAX_KIND_LEN):
        raise SchemaError(f"tx body: kind must be a non-empty str of at most {MAX_KIND_LEN} chars")
    if not (isinstance(sender, bytes) and len(sender) == 32):
        raise SchemaError(f"tx body: sender must be 32 bytes, got {type(sender).__name__}"
                          f"{'' if not isinstance(sender, bytes) else f' of {len(sender)} bytes'}")
    if not (isinstance(nonce, int) and nonce >= 1):
        raise SchemaError(f"tx body: nonce must be an int >= 1, got {nonce!r}")
    _expect(isinstance(payload, list), "tx body: payload must be an array")
    return TxBody(chain_id, kind, sender, nonce, tuple(payload))


def decode_tx(raw: bytes) -> SignedTx:
    """Decode and shape-check an envelope (signatures are not verified here: see ``verify_signatures``)."""
    if len(raw) > MAX_TX_BYTES:
        raise DecodeError(f"transaction is {len(raw)} bytes; the limit is {MAX_TX_BYTES}")
    obj = codec.decode(raw)
    _expect(isinstance(obj, list) and len(obj) == 2, "tx envelope: expected [body, signatures]")
    body = body_from_list(obj[0])
    sigs = obj[1]
    if not (isinstance(sigs, list) and (1 <= len(sigs) or is_system_body(body)) and len(sigs) <= MAX_SIGNATURES):
        raise SchemaError(f"tx envelope: expected 1..{MAX_SIGNATURES} signatures (none only on a {SWEEP_KIND} "
                          "system tx)")
    pairs = []
    for pair in sigs:
        _expect(isinstance(pair, list) and len(pair) == 2, "tx signature: expected [public_key, signature]")
        pk, sig = pair
        _expect(isinstance(pk, bytes) and len(pk) == 32, "tx signature: public_key must be 32 bytes")
        _expect(isinstance(sig, bytes) and len(sig) == 64, "tx signature: signature must be 64 bytes")
        pairs.append((pk, sig))
    # ``raw`` is canonical (decode re-encoded it), so the body's bytes are a slice of it: the envelope's fixarray
    # header, the body, then the signatures array (1 header byte, 101 bytes a pair: fixarray + bin8 32 + bin8 64)
    raw = bytes(raw)
    body_bytes = raw[1:len(raw) - 1 - _SIG_PAIR_BYTES * len(pairs)]
    tx_hash = H(TAG_TX, body_bytes)
    return SignedTx(body, tuple(pairs), raw, tx_hash)


_SIG_PAIR_BYTES = 1 + (2 + 32) + (2 + 64)  # canonical [public_key, signature]; MAX_SIGNATURES keeps a fixarray


def sign_tx(body: TxBody, *keys: KeyPair) -> SignedTx:
    """Sign ``body`` with the sender's key first, then any second-factor keys."""
    if not keys:
        raise SignatureError("sign_tx needs at least the sender's key")
    tx_hash = body.hash()
    sigs = tuple((k.public_key, k.sign(tx_hash)) for k in keys)
    raw = codec.encode([body.to_list(), [list(s) for s in sigs]])
    return SignedTx(body, sigs, raw, tx_hash)


def make_tx(chain_id: str, kind: str, key: KeyPair, nonce: int, payload: list, *extra: KeyPair) -> SignedTx:
    """Build and sign a transaction from ``key`` (the sender) in one call."""
    return sign_tx(TxBody(chain_id, kind, key.public_key, nonce, tuple(payload)), key, *extra)
