"""Wire encoding of consensus messages: canonical msgpack arrays, strictly checked.

Theory of operation: a frame is ``P([type, ...fields])`` (``ledger.codec``); the decoder refuses a frame
above ``max_bytes`` before decoding anything, then checks the type tag, field count, every field's type and
size, and the nested messages of a justification (at most ``MAX_JUSTIFICATION`` each). Blocks travel as
``Block.encode()`` bytes inside the frame. Decoding does not verify signatures: the replica does that,
since only it knows the validator set. Every failure is a ``WireError`` (a remote fault).

Frames:
- PREPARE       ``["PREPARE", height, round, block_hash: bin32, signer: bin32, signature: bin64]``
- COMMIT        ``["COMMIT", height, round, block_hash, seal: bin64, signer, signature]``
- ROUND-CHANGE  ``["ROUND-CHANGE", height, round, prepared_round, prepared_block: bin (b"" if none),
  [prepare frame-array, ...], signer, signature]``
- PROPOSAL      ``["PROPOSAL", height, round, block: bin, [round-change array, ...], [prepare array, ...],
  signer, signature]``
"""

from __future__ import annotations

from consensus.errors import MalformedMessage, MessageTooLarge, WireError
from consensus.messages import (COMMIT, NO_ROUND, PREPARE, PROPOSAL, ROUND_CHANGE, Commit, Message, Prepare,
                                Proposal, RoundChange)
from ledger import codec
from ledger.block import Block
from ledger.errors import LedgerError

MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # a proposal carries a block plus up to Q prepared blocks in its RCs
MAX_JUSTIFICATION = 1024  # nested ROUND-CHANGEs or PREPAREs in one message (more than any validator set)
_MAX_INT = 2**63 - 1


def _prepare_list(p: Prepare) -> list:
    return [PREPARE, p.height, p.round, p.block_hash, p.signer, p.signature]


def _rc_list(rc: RoundChange) -> list:
    block = rc.prepared_block.encode() if rc.prepared_block is not None else b""
    return [ROUND_CHANGE, rc.height, rc.round, rc.prepared_round, block, [_prepare_list(p) for p in rc.prepares],
            rc.signer, rc.signature]


def _to_list(msg: Message) -> list:
    if isinstance(msg, Prepare):
        return _prepare_list(msg)
    if isinstance(msg, Commit):
        return [COMMIT, msg.height, msg.round, msg.block_hash, msg.seal, msg.signer, msg.signature]
    if isinstance(msg, RoundChange):
        return _rc_list(msg)
    if isinstance(msg, Proposal):
        return [PROPOSAL, msg.height, msg.round, msg.block.encode(), [_rc_list(rc) for rc in msg.round_changes],
                [_prepare_list(p) for p in msg.prepares], msg.signer, msg.signature]
    raise MalformedMessage(f"cannot encode {type(msg).__name__}; expected Proposal, Prepare, Commit or RoundChange")


def encode_message(msg: Message) -> bytes:
    """Return the canonical wire bytes of a consensus message."""
    return codec.encode(_to_list(msg))


def _int(v: object, what: str, lo: int = 0) -> int:
    if type(v) is not int or not lo <= v <= _MAX_INT:
        raise MalformedMessage(f"{what}: expected an int >= {lo}, got {v!r:.40}")
    return v


def _bin(v: object, what: str, size: int) -> bytes:
    if type(v) is not bytes or len(v) != size:
        seen = f"{len(v)} bytes" if isinstance(v, bytes) else type(v).__name__
        raise MalformedMessage(f"{what}: expected {size} bytes, got {seen}")
    return v


def _array(v: object, what: str, length: int | None = None) -> list:
    if type(v) is not list:
        raise MalformedMessage(f"{what}: expected an array, got {type(v).__name__}")
    if length is not None and len(v) != length:
        raise MalformedMessage(f"{what}: expected {length} fields, got {len(v)}")
    return v


def _block(v: object, what: str) -> Block:
    if type(v) is not bytes or not v:
        raise MalformedMessage(f"{what}: expected block bytes")
    try:
        return Block.decode(v)
    except LedgerError as exc:
        raise MalformedMessage(f"{what}: {exc.message}") from None


def _tag(obj: list, expected: str, what: str) -> None:
    if not obj or obj[0] != expected:
        seen = obj[0] if obj else "nothing"
        raise MalformedMessage(f"{what}: expected type {expected!r}, got {seen!r:.40}")


def _prepare_from(obj: object, what: str) -> Prepare:
    a = _array(obj, what, 6)
    _tag(a, PREPARE, what)
    return Prepare(_int(a[1], f"{what}.height"), _int(a[2], f"{what}.round"), _bin(a[3], f"{what}.block_hash", 32),
                   _bin(a[4], f"{what}.signer", 32), _bin(a[5], f"{what}.signature", 64))


def _prepares_from(obj: object, what: str) -> tuple[Prepare, ...]:
    a = _array(obj, what)
    if len(a) > MAX_JUSTIFICATION:
        raise MalformedMessage(f"{what}: {len(a)} entries; expected at most {MAX_JUSTIFICATION}")
    return tuple(_prepare_from(x, f"{what}[{i}]") for i, x in enumerate(a))


def _commit_from(a: list) -> Commit:
    what = "commit"
    return Commit(_int(a[1], f"{what}.height"), _int(a[2], f"{what}.round"), _bin(a[3], f"{what}.block_hash", 32),
                  _bin(a[4], f"{what}.seal", 64), _bin(a[5], f"{what}.signer", 32),
                  _bin(a[6], f"{what}.signature", 64))


def _rc_from(obj: object, what: str) -> RoundChange:
    a = _array(obj, what, 8)
    _tag(a, ROUND_CHANGE, what)
    prepared_round = _int(a[3], f"{what}.prepared_round", lo=NO_ROUND)
    raw_block = a[4]
    if type(raw_block) is not bytes:
        raise MalformedMessage(f"{what}.prepared_block: expected bytes, got {type(raw_block).__name__}")
    block = _block(raw_block, f"{what}.prepared_block") if raw_block else None
    prepares = _prepares_from(a[5], f"{what}.prepares")
    if (block is None) != (prepared_round == NO_ROUND):
        raise MalformedMessage(f"{what}: prepared_round {prepared_round} and prepared block "
                               f"({'absent' if block is None else 'present'}) must be both absent or both present")
    return RoundChange(_int(a[1], f"{what}.height"), _int(a[2], f"{what}.round"), prepared_round, block, prepares,
                       _bin(a[6], f"{what}.signer", 32), _bin(a[7], f"{what}.signature", 64))


def _proposal_from(a: list) -> Proposal:
    what = "proposal"
    rcs = _array(a[4], f"{what}.round_changes")
    if len(rcs) > MAX_JUSTIFICATION:
        raise MalformedMessage(f"{what}.round_changes: {len(rcs)} entries; expected at most {MAX_JUSTIFICATION}")
    return Proposal(_int(a[1], f"{what}.height"), _int(a[2], f"{what}.round"), _block(a[3], f"{what}.block"),
                    tuple(_rc_from(x, f"{what}.round_changes[{i}]") for i, x in enumerate(rcs)),
                    _prepares_from(a[5], f"{what}.prepares"), _bin(a[6], f"{what}.signer", 32),
                    _bin(a[7], f"{what}.signature", 64))


_SHAPES = {PREPARE: 6, COMMIT: 7, ROUND_CHANGE: 8, PROPOSAL: 8}


def decode_message(raw: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Decode one wire frame; raise a ``WireError`` subclass naming what was seen and what was expected."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise MalformedMessage(f"expected bytes, got {type(raw).__name__}")
    if len(raw) > max_bytes:
        raise MessageTooLarge(f"message of {len(raw)} bytes; expected at most {max_bytes}")
    try:
        obj = codec.decode(bytes(raw))
    except LedgerError as exc:
        raise WireError(f"not canonical msgpack: {exc.message}") from None
    a = _array(obj, "message")
    kind = a[0] if a else None
    if not isinstance(kind, str) or kind not in _SHAPES:
        raise MalformedMessage(f"message type {kind!r:.40}; expected one of {sorted(_SHAPES)}")
    _array(a, kind, _SHAPES[kind])
    if kind == PREPARE:
        return _prepare_from(a, "prepare")
    if kind == COMMIT:
        return _commit_from(a)
    if kind == ROUND_CHANGE:
        return _rc_from(a, "round_change")
    return _proposal_from(a)
