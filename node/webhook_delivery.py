"""Delivering committed events to the registered webhooks: one task per hook, in chain order, at least once.

Theory of operation
-------------------
Each hook has one task (``WebhookDelivery._run``). It reads the events after the hook's cursor from the store
(``node.event_feed``), skips those its branch may not read, and POSTs each remaining one; a 2xx answer within
``RetryPolicy.timeout_s`` is the acknowledgement, and only then does the cursor move and get written
(``WebhookRegistry.save_state``). A failed attempt (no answer, a timeout, a non-2xx status, a redirect) is
retried after ``base_s × 2^(attempt-1)`` capped at ``max_s``, with jitter (a uniform draw in [d/2, d]) so that
many hooks failing together do not retry in step; after ``attempts`` attempts the event becomes a dead letter
(readable with ``GET /v1/webhooks/{id}/dead-letters``) and the hook goes on with the next event, so one bad
event never stalls a hook forever. ``redrive`` queues the dead letters again; they are tried before new events.

The tasks are woken by commits (``on_commit``, a commit subscriber that only sets events) and look at the head
every second anyway. The cursor passes over events the branch may not see without a write per block: it is
written with the next delivery, or every ``SKIP_SAVE_S``. Nothing here ever runs on the consensus task but
``on_commit``, and a slow receiver delays only its own hook.

Body of every delivery (the same bytes on every attempt)::

    {"delivery_id": "<hook id>:<event id>", "hook_id": ..., "event": <node.event_feed.CommittedEvent.to_json()>}

Headers: ``X-Carecoin-Delivery`` (the delivery id), ``X-Carecoin-Event-Id``, ``X-Carecoin-Hook``,
``X-Carecoin-Attempt`` (1..), ``X-Carecoin-Timestamp`` (ms) and ``X-Carecoin-Signature`` (``node.webhooks``).
Of a receiver's answer only the status counts: at most ``MAX_ANSWER_BYTES`` of its body are read, then the
connection is dropped (a receiver answering an endless body must not fill the node's memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import aiohttp

from node.webhook_targets import TargetNotAllowed, TargetPolicy
from node.clock import now_ms
from node.event_feed import EventId, Reader, is_visible, read_block_events
from node.webhooks import Hook, WebhookRegistry, delivery_id, sign_payload

log = logging.getLogger("carecoin.webhooks")

BATCH_BLOCKS = 200
SKIP_SAVE_S = 5.0
PERIOD_S = 1.0
MAX_ANSWER_BYTES = 64 * 1024  # of a receiver's answer body read (an endless answer must not fill the node's memory)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8
    base_s: float = 0.5
    max_s: float = 60.0
    timeout_s: float = 10.0

    def delay(self, attempt: int, draw: float) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1..), given a uniform ``draw`` in [0, 1)."""
        d = min(self.max_s, self.base_s * 2 ** (attempt - 1))
        return d / 2 + draw * d / 2


class WebhookDelivery:
    """The delivery tasks of every registered hook (see the module docstring)."""

    def __init__(self, store: Any, registry: WebhookRegistry, policy: RetryPolicy = RetryPolicy(),
                 on_outcome: Callable[[str], None] = lambda outcome: None,
                 draw: Callable[[], float] = random.random, targets: TargetPolicy = TargetPolicy()) -> None:
        self.store, self.registry, self.policy, self.targets = store, registry, policy, targets
        self.on_outcome, self.draw = on_outcome, draw
        self.tasks: dict[str, asyncio.Task] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._session: aiohttp.ClientSession | None = None

    def on_commit(self, height: int, results: list) -> None:
        """Commit subscriber: wake every hook's task."""
        for wake in self._wakes.values():
            wake.set()

    def start(self) -> None:
        for hook_id in list(self.registry.hooks):
            self.start_hook(hook_id)

    def start_hook(self, hook_id: str) -> None:
        self._wakes[hook_id] = asyncio.Event()
        self.tasks[hook_id] = asyncio.create_task(self._run(hook_id), name=f"webhook-{hook_id}")

    async def stop_hook(self, hook_id: str) -> None:
        task = self.tasks.pop(hook_id, None)
        self._wakes.pop(hook_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        for hook_id in list(self.tasks):
            await self.stop_hook(hook_id)
        if self._session is not None:
            await self._session.close()

    # ---- one hook --------------------------------------------------------------------------------------

    async def _run(self, hook_id: str) -> None:
        saved_at = time.monotonic()
        while hook_id in self.registry.hooks:
            hook, state = self.registry.hooks[hook_id], self.registry.states[hook_id]
            try:
                if state.redrive:
                    letter = state.redrive[0]
                    ok, attempts, error = await self._deliver(hook, letter["delivery_id"], letter["event"])
                    state.redrive.pop(0)
                    if not ok:
                        self._dead(hook, letter["delivery_id"], letter["event"], letter["attempts"] + attempts, error)
                    self.registry.save_state(hook_id)
                    continue
                moved, delivered = await self._advance(hook)
                if delivered or (moved and time.monotonic() - saved_at > SKIP_SAVE_S):
                    self.registry.save_state(hook_id)
                    saved_at = time.monotonic()
                if moved:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:  # never take the node down; try again later
                log.exception("webhook %s: delivery failed", hook_id)
            wake = self._wakes.get(hook_id)
            if wake is None:
                return
            wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), PERIOD_S)

    async def _advance(self, hook: Hook) -> tuple[bool, bool]:
        """Deliver the visible events of up to ``BATCH_BLOCKS`` blocks after the cursor; (moved, delivered)."""
        state = self.registry.states[hook.id]
        last, head = state.position, self.store.head().height
        start = last.height + 1 if last == EventId.after_block(last.height) else max(last.height, 1)
        if start > head:
            return False, False
        reader, delivered = Reader(branch=hook.branch), False
        for height in range(start, min(head, start + BATCH_BLOCKS - 1) + 1):
            for event in read_block_events(self.store, height, after=last):
                if is_visible(self.store, reader, event.event):
                    did = delivery_id(hook.id, str(event.id))
                    ok, attempts, error = await self._deliver(hook, did, event.to_json())
                    if hook.id not in self.registry.hooks:
                        return False, False  # deleted meanwhile
                    if not ok:
                        self._dead(hook, did, event.to_json(), attempts, error)
                    state.cursor = str(event.id)
                    self.registry.save_state(hook.id)  # after the acknowledgement: at least once
                    delivered = True
                last = event.id
            last = EventId.after_block(height)
            state.cursor = str(last)
        return True, delivered

    def _dead(self, hook: Hook, did: str, event: dict, attempts: int, error: str) -> None:
        self.on_outcome("dead_letter")
        log.warning("webhook %s: %s is a dead letter after %d attempts: %s", hook.id, did, attempts, error)
        self.registry.dead_letter(hook.id, {"delivery_id": did, "event": event, "attempts": attempts,
                                            "error": error, "dead_ms": now_ms()})

    async def _deliver(self, hook: Hook, did: str, event: dict) -> tuple[bool, int, str]:
        """Attempt a delivery until acknowledged or ``policy.attempts`` ran out: (ok, attempts, last error)."""
        body = json.dumps({"delivery_id": did, "hook_id": hook.id, "event": event}, separators=(",", ":")).encode()
        error = ""
        for attempt in range(1, self.policy.attempts + 1):
            error = await self._post(hook, did, event["id"], body, attempt)
            if not error:
                self.on_outcome("acknowledged")
                return True, attempt, ""
            self.on_outcome("failed")
            if attempt < self.policy.attempts:
                await asyncio.sleep(self.policy.delay(attempt, self.draw()))
        return False, self.policy.attempts, error

    async def _post(self, hook: Hook, did: str, event_id: str, body: bytes, attempt: int) -> str:
        """One attempt: "" when acknowledged (2xx), else what went wrong."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        stamp = now_ms()
        headers = {"Content-Type": "application/json", "User-Agent": "carecoin-webhooks/1",
                   "X-Carecoin-Delivery": did, "X-Carecoin-Event-Id": event_id, "X-Carecoin-Hook": hook.id,
                   "X-Carecoin-Attempt": str(attempt), "X-Carecoin-Timestamp": str(stamp),
                   "X-Carecoin-Signature": sign_payload(hook.secret, stamp, body)}
        try:
            await self.targets.check(hook.url)  # again at each delivery: a host name may resolve elsewhere now
        except TargetNotAllowed:
            return "target_not_allowed: the URL reaches an address the operator does not allow"
        try:
            async with self._session.post(hook.url, data=body, headers=headers, allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=self.policy.timeout_s)) as resp:
                await resp.content.read(MAX_ANSWER_BYTES)  # the answer is not used: a bounded prefix only
                if not resp.content.at_eof():
                    resp.close()  # a longer answer is never read: drop the connection
                return "" if 200 <= resp.status < 300 else f"answered {resp.status}"
        except asyncio.TimeoutError:
            return f"no answer within {self.policy.timeout_s:g} s"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
