"""The replay guard of signed requests: which request digests were accepted in the last ``REPLAY_WINDOW_MS``.

Theory of operation
-------------------
Every signed request (vault writes and reads, and every read of a customer's data) is accepted once: its digest
is remembered for twice the clock skew the node accepts, after which its timestamp alone refuses it. Since every
read is signed, remembering must cost O(1) per request, not a rewrite of the whole set.

On disk it is an **append-only log** (``<data_dir>/vault/seen-requests``): a magic line, then one fixed-size
record per accepted request, ``digest(32) | time_ms(8, big endian) | signer(32) | share(1) | crc32(4)``.

- Accepting a request appends its record with one ``os.write`` (no Python buffer): from then on a *process*
  restart (crash, kill -9, upgrade) cannot forget it — the kernel holds the bytes.
- Against a *machine* crash (power loss) the handler waits until the record is on disk before it answers
  (``durable``): ``fdatasync`` runs on a worker thread and is shared by every request appended meanwhile (group
  commit), so a burst of N reads costs a few syncs, not N, and the event loop never blocks on the disk. A
  request whose record could be lost was never answered, so replaying it gains nothing the signer did not
  already refuse to receive.
- The log is compacted when it holds more than ``COMPACT_FACTOR`` times the live records (and at least
  ``COMPACT_MIN`` records): the live ones are written to a temp file, fsynced and renamed over it — amortised
  O(1) per request, and never half written.
- At start the log is read back: a torn last record (a crash inside ``os.write``: that request was never
  answered) is dropped; any other unreadable content (bad magic, a bad record in the middle) is not trusted:
  every request signed before start + ``MAX_CLOCK_SKEW_MS`` is refused, so none accepted before can be replayed.
  A file of the previous format (one canonical list, rewritten per request) is read once and converted.

Quotas (so no one signer, nor the accounts without a role, can fill the guard and lock staff out): at most
``MAX_SEEN_PER_SIGNER`` requests of one key; requests of accounts without a vault role (customers) together at
most ``MAX_SEEN_UNPRIVILEGED``; of keys that do not exist on chain (an owner reading their still empty account)
together at most ``MAX_SEEN_STRANGERS``; past them 429 ``too_many_signed_requests``; the whole guard at most
``MAX_SEEN_REQUESTS`` (503 ``replay_guard_full``: an old request is never forgotten early to make room).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import zlib
from collections import OrderedDict
from pathlib import Path

from ledger import codec
from ledger.errors import LedgerError
from node.errors import NodeError
from node.vault import MAX_CLOCK_SKEW_MS, VaultUnauthorized, write_atomic

log = logging.getLogger("carecoin.vault")

# Every read is signed, so the window holds reads too: 100 000 records are ~8 MB of log and ~20 MB of memory.
MAX_SEEN_REQUESTS = 100_000
MAX_SEEN_PER_SIGNER = 6_000  # ten signed requests a second, on average, over the replay window
MAX_SEEN_UNPRIVILEGED = MAX_SEEN_REQUESTS // 2  # slots customers (no vault role) may take together
MAX_SEEN_STRANGERS = MAX_SEEN_REQUESTS // 10  # slots keys unknown on chain may take together
REPLAY_WINDOW_MS = 2 * MAX_CLOCK_SKEW_MS
COMPACT_FACTOR, COMPACT_MIN = 2, 1024
MAGIC = b"carecoin-seen-requests-v2\n"
RECORD = struct.Struct(">32sQ32sB")
RECORD_BYTES = RECORD.size + 4  # + crc32
PRIVILEGED, UNPRIVILEGED, STRANGER = 0, 1, 2  # the share a request counts in


class RequestUnauthenticated(VaultUnauthorized):
    """A request that is not signed, is badly signed, stale, or replays an accepted one (401)."""

    code = "unauthenticated"
    http_status = 401

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ReplayGuardFull(NodeError):
    """The replay guard remembers ``MAX_SEEN_REQUESTS`` recent requests; forgetting one would allow its replay."""

    code = "replay_guard_full"
    http_status = 503


class TooManySignedRequests(NodeError):
    """One signer (or the signers of one share together) used up their part of the replay guard."""

    code = "too_many_signed_requests"
    http_status = 429


def _pack(digest: bytes, stamp: int, signer: bytes, share: int) -> bytes:
    body = RECORD.pack(digest, stamp, signer.ljust(32, b"\0")[:32], share)
    return body + struct.pack(">I", zlib.crc32(body))


class ReplayGuard:
    """Remembered request digests (oldest first) with their shares, backed by the append-only log ``path``."""

    def __init__(self, path: str | Path | None, now_ms: int) -> None:
        self.path = None if path is None else Path(path)
        self._seen: OrderedDict[bytes, tuple[int, bytes, int]] = OrderedDict()  # digest -> (time, signer, share)
        self._per_signer: dict[bytes, int] = {}
        self._per_share = [0, 0, 0]
        self.not_before = 0  # requests signed at or before this are refused (the log was unreadable)
        self._fd: int | None = None
        self._records = 0  # records in the log file (live or not)
        self._written = self._synced = 0  # appends made / appends known on disk
        self._sync_task: asyncio.Future | None = None
        if self.path is not None:
            self._load(now_ms)

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, digest: bytes) -> bool:
        return digest in self._seen

    # ---- accepting ------------------------------------------------------------------------------------

    def remember(self, digest: bytes, stamp: int, now: int, signer: bytes, share: int) -> None:
        """Accept ``digest`` once (appended to the log before this returns), or refuse: 401 replay, 429, 503."""
        if digest in self._seen:
            raise RequestUnauthenticated("this signed request was already used; sign each request afresh",
                                         "replayed_request")
        self._forget_older_than(now - REPLAY_WINDOW_MS)
        used = self._per_signer.get(signer, 0)
        if signer and used >= MAX_SEEN_PER_SIGNER:
            raise TooManySignedRequests(f"key {signer.hex()[:16]}… signed {used} requests in the last "
                                        f"{REPLAY_WINDOW_MS} ms; at most {MAX_SEEN_PER_SIGNER}: retry later")
        if share == UNPRIVILEGED and self._per_share[UNPRIVILEGED] >= MAX_SEEN_UNPRIVILEGED:
            raise TooManySignedRequests(f"{self._per_share[UNPRIVILEGED]} requests of accounts without a vault "
                                        f"role are remembered (at most {MAX_SEEN_UNPRIVILEGED}); retry later")
        if share == STRANGER and self._per_share[STRANGER] >= MAX_SEEN_STRANGERS:
            raise TooManySignedRequests(f"{self._per_share[STRANGER]} requests of keys unknown on chain are "
                                        f"remembered (at most {MAX_SEEN_STRANGERS}); retry later")
        if len(self._seen) >= MAX_SEEN_REQUESTS:
            raise ReplayGuardFull(f"{len(self._seen)} signed requests of the last {REPLAY_WINDOW_MS} ms are "
                                  f"remembered (at most {MAX_SEEN_REQUESTS}); retry later")
        self._add(digest, stamp, signer, share)
        self._append(_pack(digest, stamp, signer, share))

    def _add(self, digest: bytes, stamp: int, signer: bytes, share: int) -> None:
        self._seen[digest] = (stamp, signer, share)
        self._per_signer[signer] = self._per_signer.get(signer, 0) + 1
        self._per_share[share] += 1

    def _forget_older_than(self, cutoff: int) -> None:
        while self._seen:
            digest, (stamp, signer, share) = next(iter(self._seen.items()))
            if stamp >= cutoff:
                break  # kept in time order: the oldest first
            del self._seen[digest]
            left = self._per_signer[signer] - 1
            if left:
                self._per_signer[signer] = left
            else:
                del self._per_signer[signer]
            self._per_share[share] -= 1

    # ---- the log --------------------------------------------------------------------------------------

    def _append(self, record: bytes) -> None:
        if self._fd is None:
            return
        if self._records >= max(COMPACT_MIN, COMPACT_FACTOR * len(self._seen)) and self._sync_task is None:
            self._compact()  # holds the record just added: written with the others
            return
        os.write(self._fd, record)
        self._records += 1
        self._written += 1

    def _compact(self) -> None:
        write_atomic(self.path, MAGIC + b"".join(_pack(d, *entry) for d, entry in self._seen.items()))
        self._reopen()
        self._records = len(self._seen)
        self._written += 1
        self._synced = self._written  # write_atomic synced file and directory

    def _reopen(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    async def durable(self) -> None:
        """Return once every record appended so far is on disk (one shared ``fdatasync`` per batch)."""
        target = self._written
        while self._synced < target and self._fd is not None:
            if self._sync_task is None:
                self._sync_task = asyncio.ensure_future(self._sync_once())
            await asyncio.shield(self._sync_task)

    async def _sync_once(self) -> None:
        upto, fd = self._written, self._fd
        try:
            await asyncio.get_running_loop().run_in_executor(None, os.fdatasync, fd)
            self._synced = max(self._synced, upto)
        finally:
            self._sync_task = None

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def _load(self, now: int) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raw = MAGIC
        try:
            entries = _parse_log(raw) if raw.startswith(MAGIC) else _parse_legacy(raw)
        except (LedgerError, ValueError) as exc:
            entries = []
            self.not_before = now + MAX_CLOCK_SKEW_MS
            log.error("replay guard %s is unreadable (%s): only requests signed after %d are accepted",
                      self.path, exc, self.not_before)
        for digest, stamp, signer, share in sorted(entries, key=lambda e: e[1]):
            if stamp >= now - REPLAY_WINDOW_MS and digest not in self._seen:
                self._add(digest, stamp, signer, share)
        self._compact()  # the live records only, torn tail dropped, in the current format


def _parse_log(raw: bytes) -> list[tuple[bytes, int, bytes, int]]:
    body = raw[len(MAGIC):]
    whole = len(body) - len(body) % RECORD_BYTES  # a torn last record was never acknowledged: dropped
    entries = []
    for offset in range(0, whole, RECORD_BYTES):
        record = body[offset:offset + RECORD_BYTES]
        if zlib.crc32(record[:RECORD.size]) != struct.unpack(">I", record[RECORD.size:])[0]:
            if offset + RECORD_BYTES == whole and whole == len(body):
                break  # the last record, torn inside its bytes
            raise ValueError(f"record at byte {len(MAGIC) + offset} fails its checksum")
        digest, stamp, signer, share = RECORD.unpack(record[:RECORD.size])
        if share > STRANGER:
            raise ValueError(f"record at byte {len(MAGIC) + offset} has share {share}; expected 0..2")
        entries.append((digest, stamp, signer.rstrip(b"\0") and signer, share))
    return entries


def _parse_legacy(raw: bytes) -> list[tuple[bytes, int, bytes, int]]:
    """The previous format: ``P([[digest, time_ms, signer, privileged], ...])`` (or ``[digest, time_ms]``)."""
    entries = codec.decode(raw)
    if not isinstance(entries, list) or not all(
            isinstance(e, list) and len(e) in (2, 4) and isinstance(e[0], bytes) and type(e[1]) is int
            and (len(e) == 2 or (isinstance(e[2], bytes) and e[3] in (0, 1))) for e in entries):
        raise ValueError("expected the seen-requests log or [[digest, time_ms, signer, privileged], ...]")
    return [(e[0], e[1], e[2] if len(e) == 4 else b"", PRIVILEGED if len(e) == 2 or e[3] else UNPRIVILEGED)
            for e in entries]
