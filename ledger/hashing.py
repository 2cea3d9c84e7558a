"""Domain-tagged SHA-256: ``H(tag, data) = sha256(tag + b"\\x00" + data)``.

A tag per kind of object means a transaction hash can never be confused with a header hash, even for
equal bytes.
"""

from __future__ import annotations

import hashlib

TAG_TX = "carecoin/v1/tx"
TAG_HEADER = "carecoin/v1/header"
TAG_COMMIT = "carecoin/v1/commit"
TAG_VALIDATORS = "carecoin/v1/validators"
TAG_EVENTS = "carecoin/v1/events"
TAG_ENVELOPE = "carecoin/v1/envelope"
TAG_STATE_VALUE = "carecoin/v1/state-value"
TAG_STATE_KEY = "carecoin/v1/state-key"
TAG_SMT_LEAF = "carecoin/v1/smt-leaf"
TAG_SMT_NODE = "carecoin/v1/smt-node"
TAG_CONSENSUS = "carecoin/v1/consensus"
TAG_PEER_AUTH = "carecoin/v1/peer-auth"

_PREFIXES: dict[str, bytes] = {}


def H(tag: str, data: bytes) -> bytes:
    """Return ``sha256(tag.encode() + b"\\x00" + data)``."""
    prefix = _PREFIXES.get(tag)
    if prefix is None:
        prefix = _PREFIXES[tag] = tag.encode() + b"\x00"
    return hashlib.sha256(prefix + data).digest()


def sha256(data: bytes) -> bytes:
    """Plain SHA-256 (RFC 6962 Merkle trees apply their own 0x00/0x01 prefixes)."""
    return hashlib.sha256(data).digest()
