"""``GET /v1/events``: server-sent events of committed events, filtered by what the signed reader may see.

Theory of operation
-------------------
A stream is one ``StreamClient`` with a bounded queue of committed blocks. ``EventHub.on_commit`` (a commit
subscriber, on the consensus task) only appends ``(height, results)`` to each live client's queue; when a
client's queue is full (it reads slower than blocks commit) the client is marked cut and the hub stops
feeding it, so a slow reader never blocks the node nor grows its memory. The handler's own task does the
work: it decodes, filters (``node.event_feed.is_visible``) and writes each event as

    id: <height:index:event>
    event: <kind>
    data: <the event's JSON document (node.event_feed.CommittedEvent.to_json)>

Resuming: with ``Last-Event-ID`` (header, as EventSource sends it) the stream first replays the events after
that id from the store, a bounded number of blocks at a time, and joins the live feed only once it has caught
up to the head (checked and joined with no await between, so no block is missed or sent twice). Without it
the stream starts at the head. A cut client gets a final ``event: cut`` whose data names the reason and the
id to resume from, then the response ends. Every ``KEEPALIVE_S`` an SSE comment keeps proxies from closing an
idle stream. At most ``MAX_STREAMS`` streams at once (503 ``too_many_streams``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any

from aiohttp import web

from node.event_feed import BadEventId, CommittedEvent, EventId, Reader, is_visible, read_block_events
from node.errors import NodeError
from node.http import op, query_param
from node.app_keys import NODE_KEY
from node.read_access import NotEntitled, ReadRule, describe_signer
from node.staff_auth import STAFF, is_known_account

log = logging.getLogger("carecoin.events")

MAX_QUEUED_BLOCKS = 256  # per client: blocks committed but not yet written; beyond, the client is cut
MAX_STREAMS = 256
MAX_STREAMS_PER_SIGNER = 8  # one key may not hold every stream (and lock auditors and staff out)
REPLAY_BATCH = 200  # blocks replayed between two yields
KEEPALIVE_S = 15.0


def check_event_reader(request: web.Request, signer: bytes) -> None:
    """Any account that exists on chain (a customer, a role holder, an account with coins); each then sees only
    its own events (``node.event_feed.is_visible``). A key unknown on chain would see nothing: refused."""
    store = request.app[NODE_KEY].store
    if not is_known_account(store, signer):
        raise NotEntitled("the event stream is readable by accounts that exist on chain (each sees only the "
                          f"events it may read); the signer is {describe_signer(store, signer)}, unknown on chain")


EVENTS = ReadRule("event-readers", "any account on chain; each event is sent only to readers entitled to it (the "
                  "accounts it names or whose ticket/order it is about, staff of its branch, auditors, compliance)",
                  check_event_reader)


EVENT_OPS = {"stream": op(
    "Server-sent events (text/event-stream) of committed events the signer may see: `id: height:index:event`, "
    "`event: <kind>`, `data: {id, height, index, event_index, tx_hash, time_ms, time, kind, fields}`. Resume "
    "with the Last-Event-ID header (or ?last_event_id=); without it the stream starts at the head. A reader "
    f"more than {MAX_QUEUED_BLOCKS} blocks behind is cut with a final `event: cut` naming the id to resume "
    f"from; a comment every {KEEPALIVE_S:.0f} s keeps an idle stream open", "200", 400, 503,
    content="text/event-stream",
    params=(query_param("last_event_id", "resume after this event id (height:index:event)",
                        pattern="^[0-9]{1,19}:[0-9]{1,10}:[0-9]{1,10}$"),))}


class TooManyStreams(NodeError):
    code = "too_many_streams"
    http_status = 503


EVENT_HUB_KEY: web.AppKey["EventHub"] = web.AppKey("event_hub")


class StreamClient:
    """One stream's queue of committed blocks (see the module docstring)."""

    __slots__ = ("queue", "wake", "cut", "max_blocks")

    def __init__(self, max_blocks: int = MAX_QUEUED_BLOCKS) -> None:
        self.queue: deque[tuple[int, list]] = deque()
        self.wake = asyncio.Event()
        self.cut = ""
        self.max_blocks = max_blocks

    def feed(self, height: int, results: list) -> bool:
        """Queue a block; False (and cut) when the queue is full."""
        if len(self.queue) >= self.max_blocks:
            self.cut = "slow_client"
            self.wake.set()
            return False
        self.queue.append((height, results))
        self.wake.set()
        return True


class EventHub:
    """The live streams of one node: fed by commits, each client's queue bounded."""

    def __init__(self, store: Any, max_streams: int = MAX_STREAMS, max_queued_blocks: int = MAX_QUEUED_BLOCKS,
                 on_cut=None, max_per_signer: int = MAX_STREAMS_PER_SIGNER) -> None:
        self.store = store
        self.max_streams, self.max_queued_blocks = max_streams, max_queued_blocks
        self.max_per_signer = max_per_signer
        self.clients: set[StreamClient] = set()
        self.streams = 0  # open streams, replaying or live
        self.by_signer: dict[bytes, int] = {}  # open streams per signing key
        self.on_cut = on_cut or (lambda: None)
        self.closing = False

    def on_commit(self, height: int, results: list) -> None:
        """Commit subscriber: queue the block for every live client (constant work per client)."""
        for client in list(self.clients):
            if not client.feed(height, results):
                self.clients.discard(client)
                self.on_cut()

    def close(self) -> None:
        """Wake and end every stream (node stopping)."""
        self.closing = True
        for client in self.clients:
            client.cut = "node_stopping"
            client.wake.set()
        self.clients.clear()


def _sse(event: CommittedEvent) -> bytes:
    data = json.dumps(event.to_json(), separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.kind or 'unknown'}\ndata: {data}\n\n".encode()


def _final(reason: str, last: EventId) -> bytes:
    data = json.dumps({"reason": reason, "resume_from": str(last),
                       "message": "the stream was cut; reconnect with Last-Event-ID to resume"})
    return f"event: cut\ndata: {data}\n\n".encode()


async def get_events(request: web.Request) -> web.StreamResponse:
    """GET /v1/events: the SSE stream (the read rule already checked the signer)."""
    return await stream_events(request, request.app[EVENT_HUB_KEY])


async def stream_events(request: web.Request, hub: EventHub) -> web.StreamResponse:
    """The SSE response of ``GET /v1/events``."""
    store = hub.store
    header = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    head = store.head().height
    last = EventId.parse(header) if header else EventId.after_block(head)
    if last.height > head:
        raise BadEventId(f"event id {last} is beyond this node's head {head}; expected an id it sent")
    if hub.streams >= hub.max_streams:
        raise TooManyStreams(f"{hub.streams} event streams are open; at most {hub.max_streams}: retry later")
    signer = request[STAFF]
    if hub.by_signer.get(signer, 0) >= hub.max_per_signer:
        raise TooManyStreams(f"{hub.by_signer[signer]} event streams signed by {signer.hex()[:16]}… are open; at "
                             f"most {hub.max_per_signer} per key: close one first")
    reader = Reader.of_signer(store, signer)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    hub.streams += 1
    hub.by_signer[signer] = hub.by_signer.get(signer, 0) + 1
    client = StreamClient(hub.max_queued_blocks)
    try:
        await resp.prepare(request)
        await resp.write(f": events for {reader.describe()}\n\n".encode())
        last = await _replay(resp, store, reader, last)
        hub.clients.add(client)  # caught up to the head: no await since _replay looked at it
        await _follow(resp, store, reader, client, last, hub)
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the client went away
    finally:
        hub.clients.discard(client)
        hub.streams -= 1
        hub.by_signer[signer] -= 1
        if not hub.by_signer[signer]:
            del hub.by_signer[signer]
    return resp


async def _write(resp: web.StreamResponse, store: Any, reader: Reader, events: list[CommittedEvent],
                 last: EventId) -> EventId:
    for event in events:
        if is_visible(store, reader, event.event):
            await resp.write(_sse(event))
        last = event.id
    return last


async def _replay(resp: web.StreamResponse, store: Any, reader: Reader, last: EventId) -> EventId:
    """Write every event after ``last`` up to the head (which may move meanwhile); return the new ``last``."""
    while True:
        head = store.head().height
        start = last.height + 1 if last == EventId.after_block(last.height) else max(last.height, 1)
        if start > head:
            return last
        for height in range(start, min(head, start + REPLAY_BATCH - 1) + 1):
            last = await _write(resp, store, reader, read_block_events(store, height, after=last), last)
            last = max(last, EventId.after_block(height))
        await asyncio.sleep(0)


async def _follow(resp: web.StreamResponse, store: Any, reader: Reader, client: StreamClient, last: EventId,
                  hub: EventHub) -> None:
    while True:
        while client.queue:
            height, results = client.queue.popleft()
            if EventId.after_block(height) <= last:
                continue  # already replayed
            last = await _write(resp, store, reader, read_block_events(store, height, results, after=last), last)
            last = max(last, EventId.after_block(height))
        if client.cut:
            await resp.write(_final(client.cut, last))
            return
        client.wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(client.wake.wait(), KEEPALIVE_S)
        if not client.wake.is_set() and not client.queue:
            await resp.write(b": keepalive\n\n")
