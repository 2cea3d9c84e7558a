"""Receipts (version 2): a committed transaction's offline proof, built by a node and checked by anyone
with the genesis.

Theory of operation
-------------------
A receipt carries the canonical bytes of everything on the path from a transaction to a quorum of validator
signatures (DESIGN "Wire formats" -> "Receipt JSON"):

    tx --H--> tx_hash, tx --H--> envelope_hash; leaf = [tx_hash, status, reason, events_hash, envelope_hash]
    leaf --audit_path at leaf_index, tree size tx_count--> results_root --in--> header --H--> block_hash
    genesis set --validator_set_changes--> set S in force at the height (``ledger.validator_sets``)
    header.validator_set_hash == H(S); block_hash --seal_message--> Ed25519 seals by >= ceil(2|S|/3) of S

``verify`` first parses every field strictly (any wrong type, bad hex or wrong length is a "format" error,
never a Python exception), then walks that path, one named check per link. The set of accepted receipts is
exactly DESIGN's conjunction of conditions; the order only decides which check is *named* when several fail,
and it is chosen so the name points at the field that was altered:

    version (a version 1 receipt is refused by name), chain_id (the receipt's declared chain vs the genesis:
    the clearest answer for a receipt of another network), tx_hash, tx_signature, envelope_hash (the exact
    envelope bytes, so an appended signer is named), result, events, block_hash (header bytes vs block_hash,
    before the audit path so an edited header is reported as such rather than as a path that misses its
    root), leaf_index, audit_path, validator_set_change_* (the walk), validator_set_hash, commit_unknown_validator
    / commit_duplicate_validator / commit_signature, commit_quorum, and last chain_id again for the chain ids
    inside the tx and the header.

``verify(..., on_check=f)`` calls ``f(name, detail)`` after each check passes (``carecoin receipt verify``
prints them).

The compact (msgpack) file form is ``ledger.receipt_compact``: layout 3 carries the fields a verifier cannot
derive without the genesis (no leaf, tx_hash, block_hash or chain_id) and decodes to this exact JSON dict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ledger import codec
from ledger.block import Block, CommitSeal, Header
from ledger.errors import LedgerError, ReceiptError
from ledger.genesis import Genesis
from ledger.hashing import TAG_EVENTS, H
from ledger.merkle import MerkleTree, verify_inclusion
from ledger.results import Leaf, TxResult, compute_envelope_hash, compute_leaves, decode_leaf
from ledger.tx import MAX_TX_BYTES, SignedTx, decode_tx
from ledger.validator_sets import (
    MAX_HEADER_BYTES, ValidatorSetChange, ValidatorSetError, parse_seals, parse_validator_set_changes,
    verify_sealed_header,
)

RECEIPT_VERSION = 2
KEYS = ("version", "chain_id", "tx", "tx_hash", "result", "events", "leaf", "leaf_index", "audit_path",
        "header", "block_hash", "commit", "validator_set_changes")
V1_REFUSED = "version 1 receipts are no longer accepted; expected version 2"
MAX_RECEIPT_FILE = 1024 * 1024  # a receipt is ~1-3 KB; refuse to read anything absurd
MAX_PATH_LEN = 64  # a proof for tx_count < 2**64 never has more siblings
MAX_EVENTS_BYTES = 256 * 1024

_HEX = re.compile(r"(?:[0-9a-f]{2})*")


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """What a valid receipt proves, taken from the verified bytes (never from decoded copies in the file)."""

    tx_hash: bytes
    height: int
    block_hash: bytes
    status: int
    reason: str
    kind: str
    sender: bytes
    events: tuple
    timestamp_ms: int
    signers: tuple[bytes, ...]
    chain_id: str
    nonce: int
    payload: tuple
    leaf_index: int
    tx_count: int
    set_changes: int = 0  # validator-set changes walked from the genesis set

    @property
    def applied(self) -> bool:
        return self.status == 0

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form (bytes as lowercase hex)."""
        return {
            "valid": True, "chain_id": self.chain_id, "tx_hash": self.tx_hash.hex(), "height": self.height,
            "block_hash": self.block_hash.hex(), "timestamp_ms": self.timestamp_ms, "status": self.status,
            "reason": self.reason, "kind": self.kind, "sender": self.sender.hex(), "nonce": self.nonce,
            "payload": _render(list(self.payload)), "events": _render([list(e) for e in self.events]),
            "leaf_index": self.leaf_index, "tx_count": self.tx_count,
            "signers": [s.hex() for s in self.signers], "validator_set_changes": self.set_changes,
        }


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A receipt whose fields have the right types and sizes (nothing is verified yet)."""

    chain_id: str
    tx: SignedTx
    tx_hash: bytes
    status: int
    reason: str
    events: bytes
    leaf: Leaf
    leaf_raw: bytes
    leaf_index: int
    audit_path: tuple[bytes, ...]
    header: Header
    header_raw: bytes
    block_hash: bytes
    commit: tuple[CommitSeal, ...]
    changes: tuple[ValidatorSetChange, ...]


# ---------------------------------------------------------------------------------------------- building


def build_receipt(block: Block, results: Sequence[TxResult], index: int, seals: Sequence[CommitSeal],
                  validator_set_changes: Sequence[ValidatorSetChange] = ()) -> dict:
    """Return the receipt JSON dict of ``block.txs[index]`` given the block's results and commit seals.

    ``validator_set_changes``: every validator-set change below the block's height, in height order (a node
    takes them from ``ledger.validator_sets.get_validator_set_changes``; none while the set never changed).
    """
    count = block.header.tx_count
    if len(block.txs) != count or len(results) != count:
        raise ReceiptError("build", f"block has {len(block.txs)} txs and {len(results)} results; "
                                    f"header says {count}")
    if not isinstance(index, int) or not 0 <= index < count:
        raise ReceiptError("build", f"index {index!r} outside the block's {count} transactions")
    tx = decode_tx(block.txs[index])
    result = results[index]
    if result.tx_hash != tx.tx_hash:
        raise ReceiptError("build", f"result {index} is for tx {result.tx_hash.hex()[:16]}…; "
                                    f"the block's tx hashes to {tx.tx_hash.hex()[:16]}…")
    heights = [c.header.height for c in validator_set_changes]
    if heights != sorted(set(heights)) or any(h >= block.header.height for h in heights):
        raise ReceiptError("build", f"validator-set changes at heights {heights}; expected increasing heights "
                                    f"below {block.header.height}")
    leaves = compute_leaves(results, block.txs)
    tree = MerkleTree.from_leaves(leaves)
    if tree.root() != block.header.results_root:  # never hand out a receipt that cannot verify
        raise ReceiptError("build", f"results hash to root {tree.root().hex()[:16]}…; the header's "
                                    f"results_root is {block.header.results_root.hex()[:16]}…")
    receipt = {
        "version": RECEIPT_VERSION,
        "chain_id": block.header.chain_id,
        "tx": tx.raw.hex(),
        "tx_hash": tx.tx_hash.hex(),
        "result": {"status": result.status, "reason": result.reason},
        "events": result.events_bytes.hex(),
        "leaf": leaves[index].hex(),
        "leaf_index": index,
        "audit_path": [p.hex() for p in tree.inclusion_proof(index)],
        "header": block.header.encode().hex(),
        "block_hash": block.hash.hex(),
        "commit": [{"validator": s.validator.hex(), "signature": s.signature.hex()} for s in seals],
        "validator_set_changes": [c.to_json() for c in validator_set_changes],
    }
    receipt["decoded"] = describe(tx, result.events, block.header)
    return receipt


def describe(tx: SignedTx, events: Sequence, header: Header) -> dict[str, Any]:
    """Human-readable copies of the tx, events and header; informative only, never trusted by ``verify``."""
    return {
        "height": header.height, "timestamp_ms": header.timestamp_ms, "kind": tx.body.kind,
        "sender": tx.body.sender.hex(), "nonce": tx.body.nonce, "payload": _render(list(tx.body.payload)),
        "events": _render([list(e) for e in events]), "tx_count": header.tx_count,
        "proposer": header.proposer.hex(),
    }


def _render(value: Any) -> Any:
    """Canonical values as JSON: bytes become hex strings, arrays lists."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [_render(v) for v in value]
    return value


# ----------------------------------------------------------------------------------------------- parsing


def _format(message: str) -> ReceiptError:
    return ReceiptError("format", message)


def _hex(value: Any, name: str, size: int | None = None, limit: int = MAX_RECEIPT_FILE) -> bytes:
    if not isinstance(value, str):
        raise _format(f"{name} must be a lowercase hex string, got {type(value).__name__}")
    if len(value) > 2 * limit:
        raise _format(f"{name} is {len(value) // 2} bytes; the limit is {limit}")
    if not _HEX.fullmatch(value):
        raise _format(f"{name} is not lowercase hex with an even number of digits: {value[:24]!r}")
    raw = bytes.fromhex(value)
    if size is not None and len(raw) != size:
        raise _format(f"{name} is {len(raw)} bytes; expected {size}")
    return raw


def _int(value: Any, name: str) -> int:
    if type(value) is not int or value < 0:
        raise _format(f"{name} must be a non-negative integer, got {value!r}"[:160])
    return value


def _parse(receipt: Any) -> _Parsed:
    if not isinstance(receipt, dict):
        raise _format(f"receipt must be a JSON object, got {type(receipt).__name__}")
    if "version" in receipt:  # before the keys: a version 1 receipt lacks some, and deserves a clear answer
        _check_version(receipt["version"])
    missing = [k for k in KEYS if k not in receipt]
    if missing:
        raise _format(f"missing key(s) {', '.join(missing)}; a receipt has {', '.join(KEYS)}")
    chain_id = receipt["chain_id"]
    if not isinstance(chain_id, str) or not chain_id:
        raise _format(f"chain_id must be a non-empty string, got {chain_id!r}"[:160])
    tx_raw = _hex(receipt["tx"], "tx", limit=MAX_TX_BYTES)
    try:
        tx = decode_tx(tx_raw)
    except LedgerError as exc:
        raise _format(f"tx is not a canonical transaction envelope: {exc.message}") from None
    tx_hash = _hex(receipt["tx_hash"], "tx_hash", 32)
    result = receipt["result"]
    if not isinstance(result, dict) or set(result) != {"status", "reason"}:
        raise _format("result must be an object with exactly status and reason")
    status = _int(result["status"], "result.status")
    reason = result["reason"]
    if not isinstance(reason, str):
        raise _format(f"result.reason must be a string, got {type(reason).__name__}")
    events = _hex(receipt["events"], "events", limit=MAX_EVENTS_BYTES)
    leaf_raw = _hex(receipt["leaf"], "leaf", limit=MAX_EVENTS_BYTES)
    try:
        leaf = decode_leaf(leaf_raw)
    except LedgerError as exc:
        raise _format(f"leaf is not a canonical result leaf: {exc.message}") from None
    leaf_index = _int(receipt["leaf_index"], "leaf_index")
    path = receipt["audit_path"]
    if not isinstance(path, list) or len(path) > MAX_PATH_LEN:
        raise _format(f"audit_path must be a list of at most {MAX_PATH_LEN} hashes")
    audit_path = tuple(_hex(p, f"audit_path[{i}]", 32) for i, p in enumerate(path))
    header_raw = _hex(receipt["header"], "header", limit=MAX_HEADER_BYTES)
    try:
        header = Header.decode(header_raw)
    except LedgerError as exc:
        raise _format(f"header is not a canonical block header: {exc.message}") from None
    block_hash = _hex(receipt["block_hash"], "block_hash", 32)
    try:
        seals = parse_seals(receipt["commit"])
        changes = parse_validator_set_changes(receipt["validator_set_changes"])
    except ValidatorSetError as exc:
        raise _format(exc.detail) from None
    return _Parsed(chain_id, tx, tx_hash, status, reason, events, leaf, leaf_raw, leaf_index, audit_path,
                   header, header_raw, block_hash, seals, changes)


def _check_version(version: Any) -> None:
    if type(version) is not int:
        raise _format(f"version must be an integer, got {version!r}"[:160])
    if version == 1:
        raise ReceiptError("version", V1_REFUSED)
    if version != RECEIPT_VERSION:
        raise ReceiptError("version", f"receipt version {version}; this verifier reads version {RECEIPT_VERSION}")


# ---------------------------------------------------------------------------------------------- checking


def _verify_tx(p: _Parsed) -> None:
    """The leaf commits to this tx (tx_hash) and every tx signature is valid, the sender's first."""
    actual = p.tx.tx_hash
    if p.tx_hash != actual:
        raise ReceiptError("tx_hash", f"tx_hash field is {p.tx_hash.hex()}; the tx body hashes to {actual.hex()}")
    if p.leaf.tx_hash != actual:
        raise ReceiptError("tx_hash", f"leaf names tx {p.leaf.tx_hash.hex()}; the tx body hashes to {actual.hex()}")
    try:
        p.tx.verify_signatures()
    except LedgerError as exc:
        raise ReceiptError("tx_signature", exc.message) from None


def _verify_envelope(p: _Parsed) -> None:
    """The leaf's envelope_hash binds these exact envelope bytes (signatures included)."""
    actual = compute_envelope_hash(p.tx.raw)
    if actual != p.leaf.envelope_hash:
        raise ReceiptError("envelope_hash", f"tx envelope bytes hash to {actual.hex()}; the leaf's envelope_hash "
                                            f"is {p.leaf.envelope_hash.hex()} (the block carried other bytes)")


def _verify_result(p: _Parsed) -> None:
    """The leaf's status and reason equal the receipt's ``result``."""
    status, reason = p.leaf.status, p.leaf.reason
    if (status, reason) != (p.status, p.reason):
        raise ReceiptError("result", f"result says status {p.status} reason {p.reason!r}; "
                                     f"the leaf says status {status} reason {reason!r}")


def _verify_events(p: _Parsed) -> tuple:
    """H(events) equals the leaf's events_hash; return the decoded events."""
    actual = H(TAG_EVENTS, p.events)
    if actual != p.leaf.events_hash:
        raise ReceiptError("events", f"events hash to {actual.hex()}; the leaf's events_hash is "
                                     f"{p.leaf.events_hash.hex()}")
    try:
        events = codec.decode(p.events)
    except LedgerError as exc:
        raise ReceiptError("events", f"events are not canonical msgpack: {exc.message}") from None
    if not isinstance(events, list) or not all(isinstance(e, list) and e and isinstance(e[0], str)
                                               for e in events):
        raise ReceiptError("events", "events must be an array of [kind: str, ...fields]")
    return tuple(events)


def _verify_block_hash(p: _Parsed) -> None:
    """The header bytes hash to ``block_hash``."""
    actual = p.header.hash()
    if actual != p.block_hash:
        raise ReceiptError("block_hash", f"block_hash field is {p.block_hash.hex()}; "
                                         f"the header hashes to {actual.hex()}")


def _verify_leaf_inclusion(p: _Parsed) -> None:
    """The leaf sits at ``leaf_index`` under ``results_root`` for tree size ``tx_count`` (exact path length)."""
    size = p.header.tx_count
    if p.leaf_index >= size:
        raise ReceiptError("leaf_index", f"leaf_index {p.leaf_index} is outside the block's {size} transactions")
    root = p.header.results_root
    try:
        verify_inclusion(p.leaf_raw, p.leaf_index, size, list(p.audit_path), root)
    except LedgerError as exc:
        # A path that misses its root cannot say whether the leaf, the index or a sibling was altered;
        # the leaf was already tied to the tx and result above, so the path (with its index) is to blame.
        raise ReceiptError("audit_path", f"leaf at index {p.leaf_index} of {size} does not reach results_root "
                                         f"{root.hex()[:16]}… with a {len(p.audit_path)}-hash path: "
                                         f"{exc.message}") from None


def _verify_sealed(p: _Parsed, genesis: Genesis) -> tuple[bytes, ...]:
    """Walk the validator-set changes from the genesis set to the set S in force at the header's height; the
    header names S and at least ceil(2|S|/3) distinct members of S sealed it. Returns the signers."""
    try:
        return verify_sealed_header(genesis.chain_id, genesis.validator_keys, p.changes, p.header, p.block_hash,
                                    p.commit)
    except ValidatorSetError as exc:
        raise ReceiptError(exc.check, exc.detail) from None


def _verify_chain_ids(p: _Parsed, genesis: Genesis) -> None:
    """The tx's and the header's chain ids are the genesis chain id."""
    for what, value in (("tx", p.tx.body.chain_id), ("header", p.header.chain_id)):
        if value != genesis.chain_id:
            raise ReceiptError("chain_id", f"{what} is for chain {value!r}; the genesis is {genesis.chain_id!r}")


def verify(receipt: dict, genesis: Genesis,
           on_check: Callable[[str, str], None] | None = None) -> VerifiedReceipt:
    """Check a receipt (JSON form) against the genesis; return what it proves or raise ``ReceiptError``.

    ``on_check(name, detail)``, when given, is called after each check passes, in order.
    """
    done = on_check or (lambda name, detail: None)
    p = _parse(receipt)
    done("format", f"version {RECEIPT_VERSION}, every field canonical")
    if p.chain_id != genesis.chain_id:
        raise ReceiptError("chain_id", f"receipt is for chain {p.chain_id!r}; the genesis is {genesis.chain_id!r}")
    _verify_tx(p)
    done("tx_hash", f"the tx body hashes to {p.tx_hash.hex()}, the leaf's tx_hash")
    done("tx_signature", f"{len(p.tx.signatures)} tx signature(s) valid, the sender's first")
    _verify_envelope(p)
    done("envelope_hash", "the leaf binds these exact envelope bytes")
    _verify_result(p)
    done("result", f"the leaf says status {p.status} reason {p.reason!r}")
    events = _verify_events(p)
    done("events", f"{len(events)} event(s) hash to the leaf's events_hash")
    _verify_block_hash(p)
    done("block_hash", f"the header hashes to {p.block_hash.hex()}")
    _verify_leaf_inclusion(p)
    done("audit_path", f"leaf {p.leaf_index} of {p.header.tx_count} reaches results_root "
                       f"with {len(p.audit_path)} hashes")
    signers = _verify_sealed(p, genesis)
    done("validator_set_changes", f"{len(p.changes)} validator-set change(s) walked from the genesis set")
    done("validator_set_hash", "the header names the set in force at its height")
    done("commit", f"{len(signers)} distinct validators of that set sealed the block")
    _verify_chain_ids(p, genesis)
    done("chain_id", f"receipt, tx and header are for chain {genesis.chain_id!r}")
    body = p.tx.body
    return VerifiedReceipt(
        tx_hash=p.tx_hash, height=p.header.height, block_hash=p.block_hash, status=p.status, reason=p.reason,
        kind=body.kind, sender=body.sender, events=events, timestamp_ms=p.header.timestamp_ms, signers=signers,
        chain_id=p.chain_id, nonce=body.nonce, payload=body.payload, leaf_index=p.leaf_index,
        tx_count=p.header.tx_count, set_changes=len(p.changes),
    )
