"""Block-time sweeps: the system transaction ``block-sweep`` and the sweepers it runs.

Theory of operation
-------------------
Rules that fire when block time passes a moment nobody transacts at (a coin lot expires, a ticket breaches
its SLA target) are entries of the due queues of ``ledger.due``. A block's sweep acts on them:

* **When.** A block sweeps exactly when some registered queue has an entry due at or before the block's
  timestamp in the parent state (``get_due_now``). Its FIRST transaction is then the system transaction
  ``block-sweep``: body ``[chain_id, "block-sweep", sender = 32 zero bytes, nonce = height, payload = []]``
  and no signature (``make_sweep_tx``). The proposer adds it (``ledger.chain.build_block``); a validator
  refuses, with the check ``sweep``, a block that omits it when something is due, carries it when nothing
  is, carries it anywhere but first, or carries other bytes than the canonical ones. Clients can never
  submit it (admission code ``system_tx``); no nonce is kept for the zero sender (the height is the nonce).
* **Why a transaction.** The header and the result leaf are fixed by the wire contract with independent
  receipt verifiers: the header has no field for block-level events and ``results_root`` has one leaf per
  transaction. A system tx at leaf 0 gives the sweep's events a leaf (hence a receipt: "every tx signature
  is valid" holds vacuously, and the leaf still binds the envelope) with no format change.
* **Bounded work.** Each queue yields at most ``MAX_PER_QUEUE`` entries per block, earliest first; the rest
  stays queued, so the next block is due again (carry-over).
* **Per entry.** The entry is unscheduled, the overlay checkpointed, and the queue's sweeper
  ``run(ctx, due_ms, subject) -> list[Event]`` acts on it. If ``run`` raises (a rule failure or any other
  exception: execution is deterministic, so every validator fails alike) the entry's writes roll back — its
  unschedule stays, so nothing loops forever — and a ``sweep_failed`` event names the entry. The sweep's
  result always has status 0.

A sweeper re-checks its subject: an entry may be stale (coins spent before they expired, a ticket answered
in time) and then does nothing. Sweepers run in ``SWEEPERS`` order (queue by queue).
"""

from __future__ import annotations

from typing import Callable

from ledger import codec, due, lots, reasons, sla
from ledger.context import TxContext
from ledger.events import Event, SweepFailed, to_wire_events
from ledger.reasons import TxFailure
from ledger.results import TxResult
from ledger.state import Overlay, StateReader
from ledger.tx import SWEEP_KIND, SYSTEM_SENDER, SignedTx, TxBody

MAX_PER_QUEUE = 256  # due entries one block handles per queue; the rest carries over to the next block

Sweeper = Callable[[TxContext, int, bytes], list[Event]]


def process_expiry_due(ctx: TxContext, due_ms: int, account: bytes) -> list[Event]:
    """Expiry: remove the account's lots dead at the block time (``["expired", account, amount]``, or none)."""
    return lots.process_sweep(ctx, account)


# The registry: (queue, sweeper), in execution order. A new sweeper is one more line here.
SWEEPERS: tuple[tuple[int, Sweeper], ...] = (
    (due.QUEUE_EXPIRY, process_expiry_due),
    (due.QUEUE_SLA, sla.process_sla_due),  # SLA breaches: compensate the customer (ledger.sla)
)

# Errors of the machine, not of an entry: never turned into a sweep_failed event (as in ``ledger.chain``).
_LOCAL_FAULTS = (MemoryError, RecursionError)

__all__ = ["MAX_PER_QUEUE", "SWEEPERS", "SWEEP_KIND", "SYSTEM_SENDER", "get_due_now", "get_next_due",
           "make_sweep_tx", "process_block_sweep", "process_expiry_due"]


def get_due_now(state: StateReader, timestamp_ms: int) -> tuple[int, int] | None:
    """``(queue, due_ms)`` of the first registered queue's earliest entry due by ``timestamp_ms``; None if none."""
    for queue, _ in SWEEPERS:
        entries = due.get_due(state, queue, timestamp_ms, 1)
        if entries:
            return queue, entries[0][0]
    return None


def get_next_due(state: StateReader) -> int | None:
    """When the earliest entry of any registered queue is due (None when every queue is empty)."""
    times = [t for t in (due.get_next_due(state, queue) for queue, _ in SWEEPERS) if t is not None]
    return min(times) if times else None


def make_sweep_tx(chain_id: str, height: int) -> SignedTx:
    """The canonical ``block-sweep`` of ``height``: zero sender, nonce = height, empty payload, no signature."""
    body = TxBody(chain_id, SWEEP_KIND, SYSTEM_SENDER, height, ())
    return SignedTx(body, (), codec.encode([body.to_list(), []]), body.hash())


def process_block_sweep(state: Overlay, tx: SignedTx, height: int, timestamp_ms: int) -> TxResult:
    """Run every registered sweeper on its entries due by ``timestamp_ms`` (bounded); the sweep's result."""
    ctx = TxContext(state, SYSTEM_SENDER, (), tx.tx_hash, height, timestamp_ms)
    events: list[list] = []
    for queue, run in SWEEPERS:
        for due_ms, subject in due.get_due(state, queue, timestamp_ms, MAX_PER_QUEUE):
            due.unschedule(state, queue, due_ms, subject)  # kept even if the entry fails: no endless retry
            events += _run_entry(ctx, run, queue, due_ms, subject)
    return TxResult(tx.tx_hash, reasons.APPLIED_STATUS, reasons.APPLIED_REASON, tuple(events))


def _run_entry(ctx: TxContext, run: Sweeper, queue: int, due_ms: int, subject: bytes) -> list[list]:
    """One entry's committed event arrays; on a raise, its writes rolled back and a ``sweep_failed`` event."""
    mark = ctx.state.checkpoint()
    try:
        wire = to_wire_events(run(ctx, due_ms, subject))
        codec.encode(wire)  # an event with no canonical encoding fails this entry, not the block
        return wire
    except _LOCAL_FAULTS:
        raise
    except TxFailure as failure:
        reason = failure.reason.name
    except Exception:  # noqa: BLE001 - deterministic: the same on every validator
        reason = reasons.EXECUTION_ERROR.name
    ctx.state.rollback(mark)
    return [SweepFailed(queue, due_ms, subject, reason).to_wire()]
