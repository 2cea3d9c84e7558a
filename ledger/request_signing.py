"""The request signature of the HTTP API: the ONE definition the node (which checks it) and the client (which
makes it) both import.

A signed request carries three headers: ``X-Carecoin-Staff`` = the signer's public key (hex),
``X-Carecoin-Time`` = ms since the epoch, ``X-Carecoin-Signature`` = Ed25519 over
``H("carecoin/v1/vault-request", P([chain_id, METHOD, path with query, time_ms, sha256(body)]))``. The node
accepts it within its clock-skew window and refuses a replayed signature (``node.staff_auth``).
"""

from __future__ import annotations

import hashlib

from ledger import codec
from ledger.hashing import H

TAG_VAULT_REQUEST = "carecoin/v1/vault-request"
HEADER_SIGNER = "X-Carecoin-Staff"
HEADER_TIME = "X-Carecoin-Time"
HEADER_SIGNATURE = "X-Carecoin-Signature"


def compute_request_digest(chain_id: str, method: str, path: str, timestamp_ms: int, body: bytes) -> bytes:
    """Return the bytes a key signs for a request (chain, method, path with query, time, body hash)."""
    return H(TAG_VAULT_REQUEST, codec.encode([chain_id, method.upper(), path, timestamp_ms,
                                               hashlib.sha256(body).digest()]))


def compute_request_headers(key, chain_id: str, method: str, path: str, body: bytes,
                            now_ms: int) -> dict[str, str]:
    """The three signature headers of a signed request (``key`` is a ``ledger.keys.KeyPair``)."""
    signature = key.sign(compute_request_digest(chain_id, method, path, now_ms, body))
    return {HEADER_SIGNER: key.public_key.hex(), HEADER_TIME: str(now_ms), HEADER_SIGNATURE: signature.hex()}
