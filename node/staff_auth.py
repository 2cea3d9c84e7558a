"""The ``staff-signed`` guard: a request signed by a key that holds the ``staff`` role now, used once.

Vault requests are signed by a staff key (``ledger.request_signing.compute_request_digest``) in three headers:
``X-Carecoin-Staff`` (public key hex), ``X-Carecoin-Time`` (ms since the epoch) and ``X-Carecoin-Signature``
(Ed25519 over the digest, hex). The signer must hold the ``staff`` role in the current state (or, for a read,
``compliance`` or ``auditor``), the time must be within ``MAX_CLOCK_SKEW_MS`` of the node's clock, and a
request is accepted once. The guard reads the body (at most ``MAX_SIGNED_BODY``) and leaves it and the signer
on the request. The ``signed`` guard (``StaffGuard.signed``, the text records' routes) checks the same headers,
time and replay but lets any key sign: there the header carries the signer's key, and the handler decides
(``verify_text_scope``: the customer themself, staff of their branch or of the ticket's/order's branch,
compliance and auditors for reads).

Which customers a signer may touch is the handler's check, once it knows the customer
(``verify_customer_scope``): staff only customers of their own branch (separation of duties: the branch the
customer is registered in, or before registration the branch that stored the record); compliance and auditors
read all. A refusal is 403 ``wrong_branch`` naming both branches.

The signed-read guard (``StaffGuard.entitled``, the client API's customer-data routes) checks the same headers
and time, then the route's read rule (``node.read_access``), and only then remembers the request.

Refusals: 401 (``RequestUnauthenticated``: ``unsigned_request``, ``bad_signature``, ``stale_request``,
``replayed_request``) when the request is not a valid fresh signature; 403 when the signer may not use the route.

The replay guard (``node.replay_guard``) remembers the digest of every accepted request with its signed time,
until that time is more than ``2 × MAX_CLOCK_SKEW_MS`` old (such a request is refused as stale anyway), in an
append-only log written before the handler runs and synced (group commit) before it answers, read back at
start, so a restart forgets nothing; bounded overall, per signer and per share (see that module).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from ledger.customers import get_branch_of, get_customer
from ledger.genesis import ROLES
from ledger.orders import get_order
from ledger.state import get_balance_nonce
from ledger.tickets import get_ticket
from ledger.keys import verify as verify_signature
from ledger.state import has_role
from node.clock import now_ms
from node.http import parse_hex, parse_int, read_body
from node.replay_guard import (  # noqa: F401 - re-exported: the guard's errors and bounds
    PRIVILEGED, REPLAY_WINDOW_MS, STRANGER, UNPRIVILEGED, ReplayGuard, ReplayGuardFull, RequestUnauthenticated,
    TooManySignedRequests,
)
from node.vault import MAX_CLOCK_SKEW_MS, Vault, VaultUnauthorized, VaultWrongBranch, compute_request_digest

log = logging.getLogger("carecoin.vault")

MAX_SIGNED_BODY = 64 * 1024
STAFF_ROLE = "staff"
READ_ALL_ROLES = ("compliance", "auditor")  # read every customer's record, write none
H_STAFF, H_TIME, H_SIG = "X-Carecoin-Staff", "X-Carecoin-Time", "X-Carecoin-Signature"
STAFF: web.RequestKey[bytes] = web.RequestKey("staff", bytes)
BODY: web.RequestKey[bytes] = web.RequestKey("body", bytes)


class BadSignatureHeader(RequestUnauthenticated):
    """A signature header that does not parse (not hex, wrong length, not ASCII digits)."""

    code = "bad_signature"


class StaffGuard:
    """Checks signed requests (signature, time, roles) and accepts each once (``node.replay_guard``)."""

    def __init__(self, store: Any, chain_id: str, replay_file: str | Path | None = None,
                 clock_ms: Callable[[], int] = now_ms) -> None:
        self.store, self.chain_id, self.clock_ms = store, chain_id, clock_ms
        self.replay = ReplayGuard(replay_file, clock_ms())

    async def __call__(self, request: web.Request) -> None:
        """The guard ``node.http.mount`` runs before a staff-signed handler."""
        body = await read_body(request, MAX_SIGNED_BODY) if request.method == "POST" else b""
        request[STAFF] = self.verify(request.method, request.raw_path, request.headers, body)
        request[BODY] = body
        await self.replay.durable()

    async def signed(self, request: web.Request) -> None:
        """The guard of an account-signed handler: any key may sign; the handler decides what it may touch."""
        body = await read_body(request, MAX_SIGNED_BODY) if request.method == "POST" else b""
        request[STAFF] = self.verify(request.method, request.raw_path, request.headers, body, any_key=True)
        request[BODY] = body
        await self.replay.durable()

    async def entitled(self, request: web.Request, check: Callable[[bytes], None]) -> bytes:
        """The guard of a read rule: a valid signature by any key, then ``check(signer)`` (raises 403 when the
        signer is not entitled) BEFORE the request is remembered, so refused keys never fill the guard."""
        signer, stamp, digest = self.authenticate(request.method, request.raw_path, request.headers, b"")
        check(signer)
        share = (PRIVILEGED if self.is_privileged(signer) else
                 UNPRIVILEGED if is_known_account(self.store, signer) else STRANGER)
        self.replay.remember(digest, stamp, self.clock_ms(), signer, share)
        request[STAFF] = signer
        await self.replay.durable()
        return signer

    def authenticate(self, method: str, path: str, headers: Any, body: bytes, *,
                     who: str = "the reader's key") -> tuple[bytes, int, bytes]:
        """(signer, time, digest) of a well signed, fresh request; raise ``RequestUnauthenticated`` (401)."""
        staff_hex, time_text, sig_hex = (headers.get(h) for h in (H_STAFF, H_TIME, H_SIG))
        if not (staff_hex and time_text and sig_hex):
            raise RequestUnauthenticated(
                f"this request must be signed by {who}: headers {H_STAFF} (the signer's key), {H_TIME} and "
                f"{H_SIG} are required", "unsigned_request")
        signer = parse_hex(staff_hex, f"header {H_STAFF}", size=32, error=BadSignatureHeader)
        signature = parse_hex(sig_hex, f"header {H_SIG}", size=64, error=BadSignatureHeader)
        stamp = parse_int(time_text, f"header {H_TIME} (ms)", 0, 2**63 - 1, error=BadSignatureHeader)
        now = self.clock_ms()
        if abs(now - stamp) > MAX_CLOCK_SKEW_MS:
            raise RequestUnauthenticated(f"request time {stamp} is {abs(now - stamp)} ms from the node's clock; "
                                         f"at most {MAX_CLOCK_SKEW_MS} ms are accepted", "stale_request")
        if stamp <= self.replay.not_before:
            raise RequestUnauthenticated(
                f"request time {stamp} is not after {self.replay.not_before}: the replay guard was unreadable "
                "at start, so only requests signed later are accepted", "stale_request")
        digest = compute_request_digest(self.chain_id, method, path, stamp, body)
        if not verify_signature(signer, digest, signature):
            raise RequestUnauthenticated(f"the signature does not verify for key {signer.hex()[:16]}… over "
                                         f"{method} {path[:80]}", "bad_signature")
        if digest in self.replay:
            raise RequestUnauthenticated("this signed request was already used; sign each request afresh",
                                         "replayed_request")
        return signer, stamp, digest

    def verify(self, method: str, path: str, headers: Any, body: bytes, *, any_key: bool = False) -> bytes:
        """Return the key that signed the vault request; raise ``RequestUnauthenticated`` (401: unsigned, bad
        signature, stale, replayed) or ``VaultUnauthorized`` (403: a signer that may not use the route).

        Without ``any_key`` the signer must hold the ``staff`` role (or, for a read, compliance or auditor);
        with it, the signer must exist on chain (``is_known_account``).
        """
        staff, stamp, digest = self.authenticate(method, path, headers, body,
                                                 who="an account's key" if any_key else "a staff key")
        readers = READ_ALL_ROLES if method == "GET" else ()
        # Checked before the request is remembered: a stranger's keys never fill the replay guard
        if any_key and not is_known_account(self.store, staff):
            raise VaultUnauthorized(f"account {staff.hex()[:16]}… does not exist on chain (no registration, "
                                    "role, balance or nonce); it signs no vault requests")
        if not any_key and not any(has_role(self.store, role, staff) for role in (STAFF_ROLE, *readers)):
            also = f" (nor, to read, {' or '.join(map(repr, readers))})" if readers else ""
            raise VaultUnauthorized(f"key {staff.hex()[:16]}… does not hold the 'staff' role{also}")
        self.remember(digest, stamp, self.clock_ms(), signer=staff, privileged=self.is_privileged(staff))
        return staff

    def is_privileged(self, signer: bytes) -> bool:
        """True iff ``signer`` holds a vault role (staff, compliance, auditor): their share is the whole guard."""
        return any(has_role(self.store, role, signer) for role in (STAFF_ROLE, *READ_ALL_ROLES))

    def remember(self, digest: bytes, stamp: int, now: int, *, signer: bytes = b"", privileged: bool = True) -> None:
        """Accept the request ``digest`` once (``ReplayGuard.remember``): 401 replay, 429 quota, 503 full."""
        self.replay.remember(digest, stamp, now, signer, PRIVILEGED if privileged else UNPRIVILEGED)


def verify_customer_scope(store: Any, signer: bytes, customer: bytes, vault: Vault, *, write: bool) -> None:
    """Raise ``VaultWrongBranch`` unless ``signer`` may read (or ``write``) ``customer``'s vault record.

    Compliance and auditors read every record. Staff touch only customers of their own branch: the branch
    the customer is registered in on chain; before registration a record is a draft, READ only by the branch
    that stored it here but WRITTEN by staff of any branch (the registering branch replaces it: a draft
    stored first by another branch must not block the real registration). A customer nobody holds yet (a
    read that finds nothing) is anyone's among staff.
    """
    if not write and any(has_role(store, role, signer) for role in READ_ALL_ROLES):
        return
    record = get_customer(store, customer)
    if record is None and write:
        return  # a draft: whoever registers the customer on chain decides, and a later write must open it
    owner = record.branch if record is not None else vault.get_branch(customer)
    if owner is None:
        return
    branch = get_branch_of(store, signer)
    if owner != branch:
        where = "registered in" if record is not None else "stored by staff of"
        raise VaultWrongBranch(
            f"customer {customer.hex()[:16]}… is {where} branch {owner!r}; staff of branch {branch!r} may "
            f"{'write' if write else 'read'} only the vault records of their own branch's customers")


def is_known_account(store: Any, account: bytes) -> bool:
    """True iff ``account`` exists on chain: a registered customer, a role holder, or with a balance or nonce."""
    return (get_customer(store, account) is not None or get_branch_of(store, account) != ""
            or any(has_role(store, role, account) for role in (STAFF_ROLE, *READ_ALL_ROLES))
            or get_balance_nonce(store, account) != (0, 0))


def is_privileged_reader(store: Any, signer: bytes) -> bool:
    """True iff ``signer`` holds the staff, compliance or auditor role (may read texts that are not their own)."""
    return any(has_role(store, role, signer) for role in (STAFF_ROLE, *READ_ALL_ROLES))


def has_standing(store: Any, account: bytes) -> bool:
    """True iff ``account`` may store texts under its own key: a registered customer, a role holder, or an account
    holding coins. Not a nonce alone: any stranger gets one with a failed tx (committed for free), and its texts
    would be replicated to every branch."""
    return (get_customer(store, account) is not None or get_branch_of(store, account) != ""
            or any(has_role(store, role, account) for role in ROLES) or get_balance_nonce(store, account)[0] > 0)


def get_about_branch(store: Any, customer: bytes, about_kind: str, about_id: str) -> str:
    """The branch of the ticket or order a text is about, if it exists on chain and is ``customer``'s; else ""."""
    record = get_ticket(store, about_id) if about_kind == "ticket" else (
        get_order(store, about_id) if about_kind == "order" else None)
    return record.branch if record is not None and record.customer == customer else ""


def verify_text_scope(store: Any, signer: bytes, customer: bytes, vault: Vault, about: tuple[str, str], *,
                      write: bool) -> None:
    """Raise ``VaultUnauthorized``/``VaultWrongBranch`` unless ``signer`` may write (or read) this text record.

    The customer reads and writes their own texts (a write needs standing on chain, ``has_standing``: no
    stranger's key fills the vault). Staff read and write the texts of customers of their own branch
    (registered there, or whose personal data their branch stored here) and the texts about a ticket or order
    of their branch that belongs to the customer (``about``, checked on chain at each request). Compliance and auditors read
    every text and write none. Unlike personal data, a customer nobody holds is nobody's among staff.
    """
    if signer == customer:
        if write and not has_standing(store, customer):
            raise VaultUnauthorized(f"account {customer.hex()[:16]}… is neither a registered customer nor a role "
                                    "holder and holds no coins (a nonce alone, which any failed tx gives, is not "
                                    "enough); it stores no texts")
        return
    if not write and any(has_role(store, role, signer) for role in READ_ALL_ROLES):
        return
    if not has_role(store, STAFF_ROLE, signer):
        also = ", nor compliance or auditor" if not write else ""
        raise VaultUnauthorized(f"key {signer.hex()[:16]}… is neither customer {customer.hex()[:16]}… nor staff"
                                f"{also}")
    branch = get_branch_of(store, signer)
    record = get_customer(store, customer)
    owner = record.branch if record is not None else (vault.get_branch(customer) or "")
    about_branch = get_about_branch(store, customer, *about)
    if branch and branch in (owner, about_branch):
        return
    where = f"branch {owner!r}" if owner else "no branch"
    raise VaultWrongBranch(
        f"customer {customer.hex()[:16]}… belongs to {where}"
        + (f" and {about[0]} {about[1][:64]!r} to branch {about_branch!r}" if about_branch else "")
        + f"; staff of branch {branch!r} may {'write' if write else 'read'} only texts of their own branch's "
        "customers, tickets and orders")
