"""The audit trail: every read of personal data leaves a record compliance and auditors can list.

Theory of operation
-------------------
``AuditLog.record(...)`` appends one record — sequence number, node time, the signer's key and role, the
customer and the record read (``customer-data`` or ``text:<commitment hex>``), the route, the outcome (``ok``
or the refusal's error code) — to ``<data_dir>/audit/audit.log`` and fsyncs it **before** the read is
answered: a read the trail cannot record fails (500), it is never served unrecorded. Records hold ids and keys
only, never personal data or text.

The file is append-only: each record is ``len (u32) || crc32 (u32) || P([time_ms, signer, role, customer,
record, route, outcome])``. At start the file is scanned and the byte offset of every record kept (8 bytes a
record); a torn tail (a crash mid-append) is cut off, so a restart loses at most the record being written.
The sequence number of a record is its position (1, 2, ...).

``GET /v1/audit?customer=&since=&limit=`` (signed; compliance and auditors only, 403 ``not_auditor``
otherwise) lists records with a sequence number above ``since``, oldest first, at most ``limit``
(1..``MAX_LIMIT``); a filtered listing scans at most ``MAX_SCAN`` records per call and answers ``next``
(the cursor to pass as ``since``) when there may be more.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from ledger import codec
from ledger.errors import LedgerError
from ledger.state import has_role
from node.app_keys import NODE_KEY
from node.clock import now_ms
from node.http import parse_hex32, parse_int, query_param
from node.staff_auth import READ_ALL_ROLES, STAFF, STAFF_ROLE
from node.vault import VaultUnauthorized

log = logging.getLogger("carecoin.audit")

AUDIT_DIR = "audit"
AUDIT_FILE = "audit.log"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_SCAN = 100_000
_HEADER = struct.Struct(">II")
MAX_RECORD_BYTES = 4096


class NotAuditor(VaultUnauthorized):
    """A signed request to list the audit trail by a key that is neither compliance nor auditor."""

    code = "not_auditor"
    http_status = 403


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One read of personal data (ids and keys only)."""

    seq: int
    time_ms: int
    signer: bytes
    role: str
    customer: bytes
    record: str
    route: str
    outcome: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time_ms": self.time_ms, "signer": self.signer.hex(), "role": self.role,
                "customer": self.customer.hex() or None, "record": self.record, "route": self.route,
                "outcome": self.outcome}


class AuditLog:
    """The node's append-only audit file (see the module docstring)."""

    def __init__(self, root: str | Path, clock_ms: Callable[[], int] = now_ms) -> None:
        self.root, self.clock_ms = Path(root), clock_ms
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.root / AUDIT_FILE
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "r+b")
        self._offsets: list[int] = []
        self._end = self._scan()

    def _scan(self) -> int:
        data = self._file.read()
        pos = 0
        while pos + _HEADER.size <= len(data):
            size, crc = _HEADER.unpack_from(data, pos)
            body = data[pos + _HEADER.size:pos + _HEADER.size + size]
            if size > MAX_RECORD_BYTES or len(body) != size or zlib.crc32(body) != crc:
                break
            self._offsets.append(pos)
            pos += _HEADER.size + size
        if pos != len(data):
            log.error("audit log %s: cutting a torn tail of %d bytes at offset %d", self.path, len(data) - pos, pos)
            self._file.truncate(pos)
            self._file.flush()
            os.fsync(self._file.fileno())
        return pos

    def __len__(self) -> int:
        return len(self._offsets)

    def record(self, *, signer: bytes, role: str, customer: bytes, record: str, route: str,
               outcome: str) -> AuditRecord:
        """Append one record and fsync it; return it. Raises ``OSError`` when it cannot be written."""
        entry = AuditRecord(len(self._offsets) + 1, self.clock_ms(), signer, role[:32], customer, record[:128],
                            route[:128], outcome[:64])
        body = codec.encode([entry.time_ms, entry.signer, entry.role, entry.customer, entry.record, entry.route,
                             entry.outcome])
        self._file.seek(self._end)
        self._file.write(_HEADER.pack(len(body), zlib.crc32(body)) + body)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._offsets.append(self._end)
        self._end += _HEADER.size + len(body)
        return entry

    def _read(self, index: int) -> AuditRecord:
        self._file.seek(self._offsets[index])
        size, _ = _HEADER.unpack(self._file.read(_HEADER.size))
        time_ms, signer, role, customer, record, route, outcome = codec.decode(self._file.read(size))
        return AuditRecord(index + 1, time_ms, signer, role, customer, record, route, outcome)

    def list(self, customer: bytes | None = None, since: int = 0,
             limit: int = DEFAULT_LIMIT) -> tuple[list[AuditRecord], int | None]:
        """Records after sequence number ``since`` (of ``customer`` if given), oldest first; and the cursor
        to continue from (None when the end was reached)."""
        out: list[AuditRecord] = []
        index, scanned = max(0, since), 0
        while index < len(self._offsets) and len(out) < limit and scanned < MAX_SCAN:
            entry = self._read(index)
            index, scanned = index + 1, scanned + 1
            if customer is None or entry.customer == customer:
                out.append(entry)
        return out, (index if index < len(self._offsets) else None)

    def close(self) -> None:
        self._file.close()


def get_signer_role(store: Any, signer: bytes, customer: bytes) -> str:
    """The capacity ``signer`` read in: compliance, auditor, staff, customer (their own), else account."""
    for role in (*READ_ALL_ROLES, STAFF_ROLE):
        if has_role(store, role, signer):
            return role
    return "customer" if signer == customer else "account"


AUDIT_KEY: web.AppKey[AuditLog] = web.AppKey("audit", AuditLog)


def record(request: web.Request, customer: bytes, what: str, outcome: str) -> AuditRecord:
    """The one call for any read path that shows personal data: audit ``request``'s signer reading ``what``
    (e.g. ``customer-data``, ``text:<hex>``) of ``customer`` with ``outcome`` (``ok`` or an error code). Call it
    before answering; it raises when the record cannot be written, so no read goes unrecorded."""
    return record_read(request, request.app[NODE_KEY].store, customer, what, outcome)


def record_read(request: web.Request, store: Any, customer: bytes, record: str, outcome: str) -> AuditRecord:
    """``record`` with the store given (the signer's role is read from it)."""
    signer = request[STAFF]
    info = request.match_info.route.resource
    route = f"{request.method} {info.canonical if info is not None else request.path}"
    return request.app[AUDIT_KEY].record(signer=signer, role=get_signer_role(store, signer, customer), customer=customer,
                                  record=record, route=route, outcome=outcome)


async def get_audit(request: web.Request) -> web.Response:
    """GET /v1/audit?customer=&since=&limit= (signed by compliance or an auditor): the audit records, paged."""
    store = request.app[NODE_KEY].store
    signer = request[STAFF]
    if not any(has_role(store, role, signer) for role in READ_ALL_ROLES):
        raise NotAuditor(f"key {signer.hex()[:16]}… holds neither the 'compliance' nor the 'auditor' role; "
                         "only they list the audit trail")
    query = request.query
    customer = parse_hex32(query["customer"], "customer") if query.get("customer") else None
    since = parse_int(query.get("since"), "since", 0, 2**62, 0)
    limit = parse_int(query.get("limit"), "limit", 1, MAX_LIMIT, DEFAULT_LIMIT)
    try:
        records, cursor = request.app[AUDIT_KEY].list(customer, since, limit)
    except (LedgerError, ValueError, struct.error) as exc:
        raise OSError(f"audit log unreadable: {exc}") from None
    return web.json_response({"records": [r.to_json() for r in records], "next": cursor})


AUDIT_PARAMS = (
    query_param("customer", "only reads of this customer (64 hex digits)", pattern="^[0-9a-fA-F]{64}$"),
    query_param("since", "only records with a sequence number above this (the previous page's next)", "integer",
                minimum=0),
    query_param("limit", f"1..{MAX_LIMIT}, default {DEFAULT_LIMIT}", "integer", minimum=1, maximum=MAX_LIMIT))
