"""Compact receipt files: canonical msgpack layouts of the version-2 receipt, and reading or writing receipt files.

Theory of operation
-------------------
DESIGN "Wire formats" fixes the receipt JSON (version 2) and says receipts are files "JSON with hex, and
compact msgpack"; the compact bytes are this module's. Every layout decodes to the exact version-2 JSON dict
(DESIGN's keys in DESIGN's order), which ``ledger.receipt.verify`` then checks: a compact file is never trusted
more, or less, than the JSON it stands for.

Layout 3 (written since issue 15) carries only what a verifier cannot derive from the rest, WITHOUT the
genesis file (a leading 3 tells it from the older arrays; values are canonical msgpack, bytes as ``bin``):

    [3, tx, status, reason, events, leaf_index, audit_path, header, commit, validator_set_changes]

    tx, events           the canonical bytes, as in the JSON
    audit_path           the path hashes concatenated, 32 bytes each, in the JSON's order
    header               the header's own field array; ``next_validator_set_hash`` is left out (9 fields) when it
                         equals ``validator_set_hash`` (every header but one announcing a validator-set change)
    commit               [seal, ...]: 64 bytes = the signature of the header's proposer (the validator is then
                         the header's ``proposer``), 96 bytes = validator key || signature of any other validator
    validator_set_changes  [[header, commit, validators], ...]: header and commit as above (the proposer is
                         that entry's header's), validators = the public keys concatenated, 32 bytes each

and derives the rest: ``chain_id`` = the header's chain id; ``tx_hash`` = H(tx body); ``leaf`` =
P([tx_hash, status, reason, H("carecoin/v1/events", events), H("carecoin/v1/envelope", tx)]); ``block_hash`` =
H(header). In a valid receipt each of them equals what it derives from, so nothing is lost; ``encode_compact``
refuses (a "format" error naming the field) a receipt where one disagrees, rather than writing a different,
"repaired" receipt. There is one layout-3 encoding of each receipt: decoding refuses a full 10-field header
whose last two hashes are equal and a 96-byte seal by the proposer, so ``encode_compact(decode_compact(raw))
== raw`` for every ``raw`` it accepts.

What dropping the redundancy costs: a verifier of a layout-3 file sees the derived fields agree by construction,
so an edit of ``events`` or ``result`` inside such a file shows as an ``audit_path`` failure (the derived leaf
misses the root) and an edit of the header as a seal failure; the JSON form names ``events`` / ``block_hash``.

Layout 2 (written before issue 15, still read): the 13 DESIGN fields in DESIGN order, led by the version 2,
``[2, chain_id, tx, tx_hash, [status, reason], events, leaf, leaf_index, [path...], header, block_hash,
[[validator, signature], ...], [[header, [[validator, signature], ...], [public_key, ...]], ...]]``.
An array led by 1 is a version-1 receipt and is named as such; any other malformed input is a "format" error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledger import codec
from ledger.block import CommitSeal, Header
from ledger.errors import LedgerError, ReceiptError
from ledger.hashing import TAG_EVENTS, TAG_HEADER, H
from ledger.receipt import (
    KEYS, MAX_EVENTS_BYTES, MAX_PATH_LEN, MAX_RECEIPT_FILE, RECEIPT_VERSION, _check_version, _format, _parse,
    _Parsed,
)
from ledger.results import compute_envelope_hash
from ledger.tx import decode_tx
from ledger.validator_sets import (
    MAX_HEADER_BYTES, MAX_SEALS, MAX_SET_CHANGES, MAX_VALIDATORS, ValidatorSetError, changes_from_compact,
)

LAYOUT = 3  # what encode_compact writes
LAYOUT_2_FIELDS = len(KEYS)  # 13
LAYOUT_3_FIELDS = ("layout", "tx", "status", "reason", "events", "leaf_index", "audit_path", "header", "commit",
                   "validator_set_changes")
SEAL_BYTES, PROPOSER_SEAL_BYTES = 96, 64


# ---------------------------------------------------------------------------------------------- encoding


def encode_compact(receipt: dict) -> bytes:
    """Layout 3 of a receipt (shape-checked first); a "format" error if a derived field disagrees with its source."""
    p = _parse(receipt)
    _check_derivable(p)
    try:
        return codec.encode([
            LAYOUT, p.tx.raw, p.status, p.reason, p.events, p.leaf_index, b"".join(p.audit_path),
            _header_out(p.header), _seals_out(p.commit, p.header.proposer),
            [[_header_out(c.header), _seals_out(c.commit, c.header.proposer), b"".join(c.validators)]
             for c in p.changes],
        ])
    except LedgerError as exc:  # an integer beyond 64 bits has no canonical encoding
        raise _format(f"receipt has no compact encoding: {exc.message}") from None


def _check_derivable(p: _Parsed) -> None:
    """Layout 3 leaves out chain_id, tx_hash, leaf and block_hash: each must be what it is derived from."""
    def refuse(field: str, seen: str, derived: str) -> ReceiptError:
        return _format(f"{field} is {seen}, but {derived}; the compact form derives {field}, so this receipt "
                       "(which cannot verify) has no compact form")

    if p.chain_id != p.header.chain_id:
        raise refuse("chain_id", repr(p.chain_id), f"the header is for chain {p.header.chain_id!r}")
    tx_hash = p.tx.tx_hash
    if p.tx_hash != tx_hash:
        raise refuse("tx_hash", p.tx_hash.hex(), f"the tx body hashes to {tx_hash.hex()}")
    leaf = p.leaf
    if leaf.tx_hash != tx_hash:
        raise refuse("leaf", f"for tx {leaf.tx_hash.hex()}", f"the tx body hashes to {tx_hash.hex()}")
    if (leaf.status, leaf.reason) != (p.status, p.reason):
        raise refuse("leaf", f"status {leaf.status} reason {leaf.reason!r}",
                     f"the result is status {p.status} reason {p.reason!r}")
    events_hash = H(TAG_EVENTS, p.events)
    if leaf.events_hash != events_hash:
        raise refuse("leaf", f"events_hash {leaf.events_hash.hex()}", f"the events hash to {events_hash.hex()}")
    envelope_hash = compute_envelope_hash(p.tx.raw)
    if leaf.envelope_hash != envelope_hash:
        raise refuse("leaf", f"envelope_hash {leaf.envelope_hash.hex()}",
                     f"the tx envelope hashes to {envelope_hash.hex()}")
    block_hash = p.header.hash()
    if p.block_hash != block_hash:
        raise refuse("block_hash", p.block_hash.hex(), f"the header hashes to {block_hash.hex()}")


def _header_out(header: Header) -> list:
    fields = header.to_list()
    return fields[:-1] if header.next_validator_set_hash == header.validator_set_hash else fields


def _seals_out(seals: tuple[CommitSeal, ...], proposer: bytes) -> list[bytes]:
    return [s.signature if s.validator == proposer else s.validator + s.signature for s in seals]


# ---------------------------------------------------------------------------------------------- decoding


def decode_compact(raw: bytes) -> dict:
    """The receipt JSON dict of compact bytes (layout 3 or 2); any malformed input is a "format" error."""
    try:
        obj = codec.decode(raw)
    except LedgerError as exc:
        raise _format(f"compact receipt is not canonical msgpack: {exc.message}") from None
    if not (isinstance(obj, list) and obj and type(obj[0]) is int):
        if not isinstance(obj, list):
            seen = type(obj).__name__
        else:
            seen = f"an array led by {type(obj[0]).__name__}" if obj else "an empty array"
        raise _format(f"compact receipt must be an array led by its layout number (3, or 2), got {seen}")
    if obj[0] == LAYOUT:
        return _decode_layout_3(obj)
    if obj[0] == RECEIPT_VERSION:
        return _decode_layout_2(obj)
    if obj[0] == 1:
        _check_version(1)  # a version 1 compact receipt (12 fields) is named as such
    raise ReceiptError("version", f"compact receipt layout {obj[0]}; this verifier reads layouts 3 and 2 "
                                  f"(receipt version {RECEIPT_VERSION})")


def _where(name: str) -> str:
    return f"compact receipt: {name}"


def _bin(value: Any, name: str) -> bytes:
    if not isinstance(value, bytes):
        raise _format(f"{_where(name)} must be bytes (bin), got {type(value).__name__}")
    return value


def _chunks(value: Any, name: str, size: int, limit: int) -> list[bytes]:
    raw = _bin(value, name)
    if len(raw) % size or len(raw) > size * limit:
        raise _format(f"{_where(name)} is {len(raw)} bytes; expected a multiple of {size} "
                      f"(one {size}-byte item each, at most {limit})")
    return [raw[i:i + size] for i in range(0, len(raw), size)]


def _header_in(value: Any, name: str) -> tuple[Header, bytes]:
    """A layout-3 header array -> the header and its canonical bytes (its 10 fields, re-encoded)."""
    if not (isinstance(value, list) and len(value) in (9, 10)):
        seen = f"{len(value)} fields" if isinstance(value, list) else type(value).__name__
        raise _format(f"{_where(name)} must be an array of 9 header fields (10 when next_validator_set_hash "
                      f"differs from validator_set_hash), got {seen}")
    fields = value if len(value) == 10 else [*value, value[8]]
    try:
        header = Header.from_list(fields)
    except LedgerError as exc:
        raise _format(f"{_where(name)} is not a block header: {exc.message}") from None
    if len(value) == 10 and header.next_validator_set_hash == header.validator_set_hash:
        raise _format(f"{_where(name)} has 10 fields with next_validator_set_hash equal to validator_set_hash; "
                      "layout 3 writes such a header with 9 (one encoding per receipt)")
    raw = header.encode()
    if len(raw) > MAX_HEADER_BYTES:
        raise _format(f"{_where(name)} is {len(raw)} bytes; the limit is {MAX_HEADER_BYTES}")
    return header, raw


def _seals_in(value: Any, name: str, proposer: bytes) -> list[dict[str, str]]:
    if not isinstance(value, list) or len(value) > MAX_SEALS:
        raise _format(f"{_where(name)} must be an array of at most {MAX_SEALS} seals")
    out = []
    for i, seal in enumerate(value):
        raw = _bin(seal, f"{name}[{i}]")
        if len(raw) == PROPOSER_SEAL_BYTES:
            validator, signature = proposer, raw
        elif len(raw) == SEAL_BYTES:
            validator, signature = raw[:32], raw[32:]
            if validator == proposer:
                raise _format(f"{_where(name)}[{i}] is the proposer's seal written in full; layout 3 writes it "
                              f"as its {PROPOSER_SEAL_BYTES}-byte signature (one encoding per receipt)")
        else:
            raise _format(f"{_where(name)}[{i}] is {len(raw)} bytes; expected {PROPOSER_SEAL_BYTES} (the "
                          f"proposer's signature) or {SEAL_BYTES} (validator key and signature)")
        out.append({"validator": validator.hex(), "signature": signature.hex()})
    return out


def _changes_in(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_SET_CHANGES:
        raise _format(f"{_where('validator_set_changes')} must be an array of at most {MAX_SET_CHANGES} entries")
    out = []
    for i, entry in enumerate(value):
        where = f"validator_set_changes[{i}]"
        if not (isinstance(entry, list) and len(entry) == 3):
            raise _format(f"{_where(where)} must be [header, commit, validators]")
        header, header_raw = _header_in(entry[0], f"{where}.header")
        out.append({"header": header_raw.hex(),
                    "commit": _seals_in(entry[1], f"{where}.commit", header.proposer),
                    "validators": [k.hex() for k in _chunks(entry[2], f"{where}.validators", 32, MAX_VALIDATORS)]})
    return out


def _decode_layout_3(obj: list) -> dict:
    if len(obj) != len(LAYOUT_3_FIELDS):
        raise _format(f"compact receipt layout 3 must be an array of {len(LAYOUT_3_FIELDS)} fields "
                      f"[{', '.join(LAYOUT_3_FIELDS)}], got {len(obj)}")
    _, tx_raw, status, reason, events, leaf_index, path, header_fields, commit, changes = obj
    try:
        tx = decode_tx(_bin(tx_raw, "tx"))
    except LedgerError as exc:
        raise _format(f"{_where('tx')} is not a canonical transaction envelope: {exc.message}") from None
    if type(status) is not int or status < 0:
        raise _format(f"{_where('status')} must be a non-negative integer, got {status!r}"[:160])
    if not isinstance(reason, str):
        raise _format(f"{_where('reason')} must be a string, got {type(reason).__name__}")
    events = _bin(events, "events")
    if len(events) > MAX_EVENTS_BYTES:
        raise _format(f"{_where('events')} is {len(events)} bytes; the limit is {MAX_EVENTS_BYTES}")
    if type(leaf_index) is not int or leaf_index < 0:
        raise _format(f"{_where('leaf_index')} must be a non-negative integer, got {leaf_index!r}"[:160])
    hashes = _chunks(path, "audit_path", 32, MAX_PATH_LEN)
    header, header_raw = _header_in(header_fields, "header")
    leaf = codec.encode([tx.tx_hash, status, reason, H(TAG_EVENTS, events), compute_envelope_hash(tx.raw)])
    if len(leaf) > MAX_EVENTS_BYTES:  # the JSON form's bound on the leaf: here it bounds the reason
        raise _format(f"{_where('reason')} is {len(reason.encode())} bytes; the result leaf would exceed "
                      f"{MAX_EVENTS_BYTES}")
    # Every field now has the JSON form's type and bound (``_parse``'s rules, checked above from the typed
    # values rather than by a second parse of the hex; ``verify`` parses the dict anyway).
    return {
        "version": RECEIPT_VERSION, "chain_id": header.chain_id, "tx": tx.raw.hex(), "tx_hash": tx.tx_hash.hex(),
        "result": {"status": status, "reason": reason}, "events": events.hex(), "leaf": leaf.hex(),
        "leaf_index": leaf_index, "audit_path": [h.hex() for h in hashes], "header": header_raw.hex(),
        "block_hash": H(TAG_HEADER, header_raw).hex(), "commit": _seals_in(commit, "commit", header.proposer),
        "validator_set_changes": _changes_in(changes),
    }


def _decode_layout_2(obj: list) -> dict:
    if len(obj) != LAYOUT_2_FIELDS:
        raise _format(f"compact receipt layout 2 must be an array of {LAYOUT_2_FIELDS} fields, got {len(obj)}")
    (version, chain_id, tx, tx_hash, result, events, leaf, leaf_index, path, header, block_hash, commit,
     changes) = obj
    if not (isinstance(result, list) and len(result) == 2):
        raise _format("compact receipt: result must be [status, reason]")
    if not isinstance(path, list) or not isinstance(commit, list):
        raise _format("compact receipt: audit_path and commit must be arrays")
    if not all(isinstance(s, list) and len(s) == 2 for s in commit):
        raise _format("compact receipt: each seal must be [validator, signature]")

    def hx(value: Any, name: str) -> str:
        return _bin(value, name).hex()

    try:
        changes_json = changes_from_compact(changes)
    except ValidatorSetError as exc:
        raise _format(exc.detail) from None
    receipt = {
        "version": version, "chain_id": chain_id, "tx": hx(tx, "tx"), "tx_hash": hx(tx_hash, "tx_hash"),
        "result": {"status": result[0], "reason": result[1]}, "events": hx(events, "events"),
        "leaf": hx(leaf, "leaf"), "leaf_index": leaf_index,
        "audit_path": [hx(h, "audit_path") for h in path], "header": hx(header, "header"),
        "block_hash": hx(block_hash, "block_hash"),
        "commit": [{"validator": hx(v, "validator"), "signature": hx(s, "signature")} for v, s in commit],
        "validator_set_changes": changes_json,
    }
    _parse(receipt)  # the same shape rules as the JSON form
    return receipt


# ------------------------------------------------------------------------------------------------- files


def load_receipt(path: str | Path) -> dict:
    """Read a receipt file in either form (JSON or compact msgpack, detected from the first byte)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_RECEIPT_FILE + 1)
    except FileNotFoundError:
        raise _format(f"receipt file {path} does not exist") from None
    except OSError as exc:
        raise _format(f"cannot read receipt file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_RECEIPT_FILE:
        raise _format(f"receipt file {path} is larger than {MAX_RECEIPT_FILE} bytes")
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark some editors add to JSON files
        raw = raw[3:]
    if not raw.strip():
        raise _format(f"receipt file {path} is empty")
    if raw.lstrip()[:1] == b"{":
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise _format(f"receipt file {path} is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise _format(f"receipt file {path} must hold a JSON object")
        return doc
    return decode_compact(raw)


def save_receipt(path: str | Path, receipt: dict, compact: bool = False) -> None:
    """Write a receipt as indented JSON, or as compact msgpack (layout 3) when ``compact``."""
    data = encode_compact(receipt) if compact else (json.dumps(receipt, indent=2) + "\n").encode()
    Path(path).write_bytes(data)
