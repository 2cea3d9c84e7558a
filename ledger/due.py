"""Due queues: state entries ordered by block time, read by the block-time sweeps (expiry, SLA).

Theory of operation
-------------------
Some rules fire when block time passes a moment nobody transacts at: a coin lot expires, a ticket breaches its
SLA target. Each such moment is an entry in a **due queue** in state, keyed so that key order is time order:

    b"h" + queue(1) + due_ms(8, big-endian) + subject  ->  P(1)

``subject`` names what is due (an account for expiry, a ticket for SLA; its encoding is the queue owner's).
The block's sweep reads the earliest entries with ``due_ms <= block time`` (``get_due``, a bounded range read
of the parent state), acts on each, and removes the entry (``unschedule``) — the rest waits for the next
block. This is the pattern of time-ordered queues swept at block boundaries (e.g. unbonding queues in Cosmos
SDK chains): no account or ticket needs to be touched for its time to come, and every validator reads the same
entries from the same state.

Entries may go stale (a lot spent before it expired, a ticket answered before its deadline): the owner of a
queue re-checks its subject when the entry comes due and treats a stale entry as done. Scheduling the same
(queue, due, subject) twice writes one entry.
"""

from __future__ import annotations

from ledger import codec
from ledger.errors import SchemaError
from ledger.state import PREFIX_DUE, Overlay, StateReader, UINT_MAX

QUEUE_EXPIRY = 1  # subject = account (32 bytes): the account holds a lot expiring at due_ms
QUEUE_SLA = 2     # subject = the SLA owner's encoding of (ticket, target)
QUEUES = (QUEUE_EXPIRY, QUEUE_SLA)  # part of the key layout: append only

MAX_SUBJECT_BYTES = 128
_PRESENT = codec.encode(1)
_HEAD = len(PREFIX_DUE) + 1 + 8  # bytes before the subject


def due_key(queue: int, due_ms: int, subject: bytes) -> bytes:
    """State key of a due entry."""
    if queue not in QUEUES:
        raise SchemaError(f"due queue {queue!r}; expected one of {QUEUES}")
    if type(due_ms) is not int or not 0 <= due_ms <= UINT_MAX:
        raise SchemaError(f"due time {due_ms!r}; expected an int of 0..2**64-1")
    if type(subject) is not bytes or not 0 < len(subject) <= MAX_SUBJECT_BYTES:
        raise SchemaError(f"due subject of {len(subject) if isinstance(subject, bytes) else type(subject).__name__}"
                          f" bytes; expected 1..{MAX_SUBJECT_BYTES}")
    return PREFIX_DUE + bytes([queue]) + due_ms.to_bytes(8, "big") + subject


def schedule(state: Overlay, queue: int, due_ms: int, subject: bytes) -> None:
    """Add the entry (queue, due_ms, subject); idempotent."""
    state.set_state(due_key(queue, due_ms, subject), _PRESENT)


def unschedule(state: Overlay, queue: int, due_ms: int, subject: bytes) -> None:
    """Remove the entry (a no-op when absent)."""
    state.set_state(due_key(queue, due_ms, subject), None)


def get_due(state: StateReader, queue: int, until_ms: int, limit: int) -> list[tuple[int, bytes]]:
    """The earliest ``limit`` entries of ``queue`` due at or before ``until_ms``: ``(due_ms, subject)`` in order."""
    if queue not in QUEUES:
        raise SchemaError(f"due queue {queue!r}; expected one of {QUEUES}")
    if until_ms < 0 or limit <= 0:
        return []
    start = PREFIX_DUE + bytes([queue])
    # until_ms + 1 past the queue's last possible time is the next queue's prefix
    stop = start + (until_ms + 1).to_bytes(8, "big") if until_ms < UINT_MAX else PREFIX_DUE + bytes([queue + 1])
    return [(int.from_bytes(key[len(start):_HEAD], "big"), key[_HEAD:]) for key, _ in state.scan(start, stop, limit)]


def get_next_due(state: StateReader, queue: int) -> int | None:
    """When the earliest entry of ``queue`` is due (None when the queue is empty)."""
    entries = get_due(state, queue, UINT_MAX, 1)
    return entries[0][0] if entries else None
