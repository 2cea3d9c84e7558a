"""The consensus write-ahead record, kept twice: in LevelDB and in its own file ``<data_dir>/consensus.wal``.

Why a second copy. LevelDB recovers its newest ``.log`` by dropping a torn tail without an error (even with
``paranoid_checks``): a log cut by a single byte opens cleanly without its last committed block, and a
larger cut also takes the last WAL record back (a node at height 85 reopened at 83). A validator that
forgets the votes it already sent can sign a conflicting one. The file copy is written by write-to-temp,
fsync, rename, fsync of the directory, so it is either the old record or the new one, never a torn one,
and it carries a checksum, so damage is seen instead of silently read as an older state.

File format: ``MAGIC`` (8 bytes) + sha256(record) (32 bytes) + the record (``consensus.wal.encode_record``).

``ConsensusWal`` is the driver's ``wal`` port: ``put_wal`` writes the file (durably), then LevelDB (no fsync
of its own), both before the vote that the record covers leaves (the driver's ``Persist`` step). ``load``
reads both and returns the newer record (by height, then round, then how many votes it holds; the file wins
a tie): a torn LevelDB log can no longer take the node's memory of its votes back. A file that exists but
fails its checksum or does not decode stops the node at start (``WalFileDamaged``), naming the file and what to do.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from consensus.errors import ConsensusError
from consensus.events import WalRecord
from consensus.wal import decode_record
from node.errors import NodeError

log = logging.getLogger("carecoin.node")

WAL_FILE_NAME = "consensus.wal"
MAGIC = b"ccwal\x00\x01\n"
DIGEST_LEN = 32


class WalFileDamaged(NodeError):
    """The consensus WAL file exists but is torn, garbled or does not decode: the node refuses to start."""

    code = "wal_file_damaged"
    http_status = 500


def encode_wal_file(record: bytes) -> bytes:
    """The file's bytes for an encoded record: magic, sha256 of the record, the record."""
    return MAGIC + hashlib.sha256(record).digest() + record


def decode_wal_file(data: bytes, path: Path | str = WAL_FILE_NAME) -> bytes:
    """The encoded record in a WAL file's bytes; ``WalFileDamaged`` naming the file if it is not intact."""
    head = len(MAGIC) + DIGEST_LEN
    if len(data) < head:
        raise _damaged(path, f"{len(data)} bytes; expected at least {head} (magic and checksum)")
    if data[:len(MAGIC)] != MAGIC:
        raise _damaged(path, f"starts with {data[:len(MAGIC)]!r}; expected {MAGIC!r}")
    record = data[head:]
    digest = hashlib.sha256(record).digest()
    if digest != data[len(MAGIC):head]:
        raise _damaged(path, f"checksum {digest.hex()[:16]}… of the {len(record)}-byte record does not match the "
                             f"stored {data[len(MAGIC):head].hex()[:16]}…")
    return record


def _damaged(path: Path | str, what: str) -> WalFileDamaged:
    return WalFileDamaged(
        f"the consensus WAL file {path} is damaged: {what}. The node will not start: it could sign a vote "
        f"that conflicts with one it already sent. Restore the file from a backup of this data dir; or, once "
        f"the other validators' heads are past the height this node last voted at (see their /v1/status), "
        f"move the file aside and start again (the node then catches up before it votes)")


class WalFile:
    """One record in one file, replaced atomically and durably (temp file, fsync, rename, fsync the dir)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".tmp")

    def write(self, record: bytes) -> None:
        """Replace the record; durable before returning (raises ``OSError`` when the disk refuses)."""
        data = encode_wal_file(record)
        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self._tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def read(self) -> bytes | None:
        """The encoded record, None when there is no file; ``WalFileDamaged`` when it is not intact."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return decode_wal_file(data, self.path)


class ConsensusWal:
    """The driver's ``wal`` port over the store's record and the file's record (see the module docstring)."""

    def __init__(self, store, path: Path | None = None) -> None:
        self.store = store
        self.file = WalFile(path if path is not None else Path(store.path) / WAL_FILE_NAME)

    def put_wal(self, raw: bytes) -> None:
        """Write the record durably to the file, then to LevelDB without an fsync of its own, before returning.

        The file is the copy a restart trusts; LevelDB's is a second opinion that ``load`` compares with it
        (``choose_newer``). Syncing it too cost one more fsync per vote on the consensus task for no safety:
        the vote leaves only after the file's fsync, and a lost LevelDB copy is older, never newer."""
        self.file.write(raw)
        self.store.put_wal(raw, sync=False)

    def load(self) -> WalRecord | None:
        """The newer of the two records (None when neither exists); ``NodeError`` when one is unreadable."""
        in_file = self.file.read()
        file_record = None
        if in_file is not None:
            try:
                file_record = decode_record(in_file)
            except ConsensusError as exc:
                raise _damaged(self.file.path, f"its record does not decode ({exc})") from None
        raw = self.store.get_wal()
        store_record = None
        if raw:
            try:
                store_record = decode_record(raw)
            except ConsensusError as exc:
                raise NodeError(f"the consensus WAL in the data dir does not decode: {exc}") from None
        newer = choose_newer(file_record, store_record)
        if newer is not None and newer is file_record and store_record is not None \
                and compute_record_rank(file_record) > compute_record_rank(store_record):
            log.warning("the consensus WAL file is ahead of LevelDB's record (height %d round %d vs height %d "
                        "round %d): LevelDB lost its newest writes; using the file", file_record.height,
                        file_record.round, store_record.height, store_record.round)
        return newer


def compute_record_rank(record: WalRecord) -> tuple[int, int, int, int]:
    """Order of records in time: height, round, prepared round, then votes held (they only grow in a height)."""
    votes = len(record.proposal_votes) + len(record.prepare_votes) + len(record.commit_votes)
    return record.height, record.round, record.prepared_round, votes


def choose_newer(file_record: WalRecord | None, store_record: WalRecord | None) -> WalRecord | None:
    """The later of the two records; the file's on a tie (it is written first and cannot be torn silently)."""
    if file_record is None or store_record is None:
        return file_record if file_record is not None else store_record
    if compute_record_rank(store_record) > compute_record_rank(file_record):
        return store_record
    return file_record
