"""The consensus write-ahead record on disk: ``encode_record`` / ``decode_record``.

Theory of operation: before a vote leaves, the replica emits ``Persist(WalRecord)``; the node writes
``encode_record(record)`` durably (fsync) and only then sends. After a crash the node reads the last record
back with ``decode_record`` and hands it to the replica as ``Restarted(record)``, which then never signs a
different vote for a (height, round) it voted in and never returns to a lower round.

Format: ``P([1, height, round, prepared_round, prepared_block: bin (b"" if none), [prepare frame, ...],
[[round, block_hash], ...] prepare votes, [[round, block_hash], ...] commit votes,
[[round, block_hash], ...] proposals signed])``. PREPARE frames are the
arrays of ``consensus.wire``.

No validator-set hash is recorded, on purpose: a record only protects votes at height head + 1, whose set V(head + 1)
follows from the committed chain (blocks up to head - 1, durable before the record was written) and is handed back
at restart in ``Restarted.validator_sets``; ``SafetyRules`` refuses any vote at a height whose set does not hold
the key before its ``Persist``, so no record can commit a non-member to a vote.
"""

from __future__ import annotations

from consensus.errors import WalError, WireError
from consensus.events import WalRecord
from consensus.messages import NO_ROUND
from consensus.wire import _int, _prepare_from, _prepare_list
from ledger import codec
from ledger.block import Block
from ledger.errors import LedgerError

WAL_VERSION = 2


def encode_record(record: WalRecord) -> bytes:
    """Return the canonical bytes of a write-ahead record."""
    block = record.prepared_block.encode() if record.prepared_block is not None else b""
    return codec.encode([WAL_VERSION, record.height, record.round, record.prepared_round, block,
                         [_prepare_list(p) for p in record.prepared_proof],
                         [[r, h] for r, h in record.prepare_votes], [[r, h] for r, h in record.commit_votes],
                         [[r, h] for r, h in record.proposal_votes]])


def _votes(obj: object, what: str) -> tuple[tuple[int, bytes], ...]:
    if type(obj) is not list:
        raise WalError(f"wal {what}: expected an array, got {type(obj).__name__}")
    out = []
    for item in obj:
        if not (type(item) is list and len(item) == 2 and type(item[0]) is int and item[0] >= 0
                and type(item[1]) is bytes and len(item[1]) == 32):
            raise WalError(f"wal {what}: each vote must be [round: int >= 0, block_hash: bin32]")
        out.append((item[0], item[1]))
    return tuple(out)


def decode_record(raw: bytes) -> WalRecord:
    """Decode a write-ahead record; raise ``WalError`` naming what was seen and what was expected."""
    try:
        obj = codec.decode(raw)
    except LedgerError as exc:
        raise WalError(f"wal record is not canonical msgpack: {exc.message}") from None
    if type(obj) is not list or len(obj) != 9:
        raise WalError(f"wal record: expected an array of 9 fields, got {type(obj).__name__}"
                       f"{'' if type(obj) is not list else f' of {len(obj)}'}")
    if obj[0] != WAL_VERSION:
        raise WalError(f"wal record version {obj[0]!r}; expected {WAL_VERSION}")
    try:
        height = _int(obj[1], "wal height")
        round_ = _int(obj[2], "wal round")
        prepared_round = _int(obj[3], "wal prepared_round", lo=NO_ROUND)
        if type(obj[4]) is not bytes:
            raise WalError("wal prepared_block: expected bytes")
        block = Block.decode(obj[4]) if obj[4] else None
        if type(obj[5]) is not list:
            raise WalError("wal prepared_proof: expected an array")
        proof = tuple(_prepare_from(x, f"wal prepared_proof[{i}]") for i, x in enumerate(obj[5]))
    except (WireError, LedgerError) as exc:
        raise WalError(f"wal record: {exc.message}") from None
    if (block is None) != (prepared_round == NO_ROUND):
        raise WalError(f"wal record: prepared_round {prepared_round} and prepared block must be both set or both unset")
    return WalRecord(height, round_, prepared_round, block, proof, _votes(obj[6], "prepare_votes"),
                     _votes(obj[7], "commit_votes"), _votes(obj[8], "proposal_votes"))
