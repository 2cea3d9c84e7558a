"""The ``staff-signed`` guard: a request signed by a key that holds the ``staff`` role now, used once.

Vault requests are signed by a staff key (``node.vault.compute_request_digest``) in three headers:
``X-Carecoin-Staff`` (public key hex), ``X-Carecoin-Time`` (ms since the epoch) and ``X-Carecoin-Signature``
(Ed25519 over the digest, hex). The signer must hold the ``staff`` role in the current state, the time must
be within ``MAX_CLOCK_SKEW_MS`` of the node's clock, and a signature is accepted once (a bounded replay
cache). The guard reads the body (at most ``MAX_SIGNED_BODY``) and leaves it and the signer on the request.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from aiohttp import web

from ledger.keys import verify as verify_signature
from ledger.state import has_role
from node.clock import now_ms
from node.http import read_body
from node.vault import MAX_CLOCK_SKEW_MS, VaultUnauthorized, compute_request_digest

MAX_SEEN_SIGNATURES = 10_000
MAX_SIGNED_BODY = 64 * 1024
H_STAFF, H_TIME, H_SIG = "X-Carecoin-Staff", "X-Carecoin-Time", "X-Carecoin-Signature"
STAFF: web.RequestKey[bytes] = web.RequestKey("staff", bytes)
BODY: web.RequestKey[bytes] = web.RequestKey("body", bytes)


class StaffGuard:
    """Checks staff-signed requests against the store's roles; remembers signatures it accepted."""

    def __init__(self, store: Any, chain_id: str) -> None:
        self.store, self.chain_id = store, chain_id
        self._seen: OrderedDict[bytes, int] = OrderedDict()  # signature -> request time (replay guard)

    async def __call__(self, request: web.Request) -> None:
        """The guard ``node.http.mount`` runs before a staff-signed handler."""
        body = await read_body(request, MAX_SIGNED_BODY) if request.method == "POST" else b""
        request[STAFF] = self.verify(request.method, request.raw_path, request.headers, body)
        request[BODY] = body

    def verify(self, method: str, path: str, headers: Any, body: bytes) -> bytes:
        """Return the staff key that signed the request; raise ``VaultUnauthorized``."""
        staff_hex, time_text, sig_hex = (headers.get(h) for h in (H_STAFF, H_TIME, H_SIG))
        if not (staff_hex and time_text and sig_hex):
            raise VaultUnauthorized(f"vault requests must be signed by a staff key: headers {H_STAFF}, {H_TIME} "
                                    f"and {H_SIG} are required")
        try:
            staff, signature, stamp = bytes.fromhex(staff_hex), bytes.fromhex(sig_hex), int(time_text)
        except ValueError:
            raise VaultUnauthorized("the signature headers are malformed; expected hex key, integer ms, "
                                    "hex signature") from None
        now = now_ms()
        if abs(now - stamp) > MAX_CLOCK_SKEW_MS:
            raise VaultUnauthorized(f"request time {stamp} is {abs(now - stamp)} ms from the node's clock; "
                                    f"at most {MAX_CLOCK_SKEW_MS} ms are accepted")
        if len(staff) != 32 or len(signature) != 64:
            raise VaultUnauthorized("staff key must be 32 bytes and signature 64 bytes")
        digest = compute_request_digest(self.chain_id, method, path, stamp, body)
        if not verify_signature(staff, digest, signature):
            raise VaultUnauthorized(f"the signature does not verify for key {staff.hex()[:16]}… over "
                                    f"{method} {path[:80]}")
        if not has_role(self.store, "staff", staff):
            raise VaultUnauthorized(f"key {staff.hex()[:16]}… does not hold the 'staff' role")
        if signature in self._seen:
            raise VaultUnauthorized("this signed request was already used; sign each request afresh")
        self._seen[signature] = stamp
        while self._seen and (len(self._seen) > MAX_SEEN_SIGNATURES
                              or next(iter(self._seen.values())) < now - 2 * MAX_CLOCK_SKEW_MS):
            self._seen.popitem(last=False)
        return staff
