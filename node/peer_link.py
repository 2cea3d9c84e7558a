"""One authenticated peer link: whom to dial and how often, its bounded send queue, writer and reader.

Sending never waits on a peer: a frame goes into the link's bounded queue (``PeerNetwork._enqueue``) and
``write_loop`` puts it on the socket, in order, each write bounded by a timeout; a peer that stops reading
is dropped (``on_slow``). ``read_frames`` yields the binary frames a peer sends and raises ``PeerError``
for a remote fault (text frame, frame above the limit), so the caller closes that one link.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field

import aiohttp
from aiohttp import WSMsgType, web

from node.errors import PeerError
from node.handshake import decode_frame

log = logging.getLogger("carecoin.peers")


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A validator to dial: its name, genesis node key and ``ws://host:port/peer`` URL."""

    name: str
    public_key: bytes
    url: str


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``initial_s * factor**(attempt-1)``, capped at ``max_s``, +/- ``jitter`` fraction."""

    initial_s: float = 0.1
    max_s: float = 5.0
    factor: float = 2.0
    jitter: float = 0.2

    def compute_delay(self, attempt: int, rng: random.Random) -> float:
        """Delay before dial attempt ``attempt`` (1-based)."""
        base = min(self.max_s, self.initial_s * self.factor ** max(0, min(attempt - 1, 30)))
        return max(0.0, base * (1 + self.jitter * (2 * rng.random() - 1)))


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """One live link, for /v1/status: the peer, its genesis name, and who dialed."""

    peer_key: bytes
    name: str
    outbound: bool


@dataclass(eq=False, slots=True)
class Link:
    peer_key: bytes
    ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse
    outbound: bool
    queue: deque = field(default_factory=deque)  # frames waiting for the writer task
    queued_bytes: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dead: bool = False  # being closed: take no more frames, count as disconnected

    @property
    def live(self) -> bool:
        return not self.dead and not self.ws.closed

    def dialer(self, own_key: bytes) -> bytes:
        return own_key if self.outbound else self.peer_key


def parse_frame(data: bytes, max_frame_bytes: int, channels: Collection[str]) -> tuple[str, bytes]:
    """``(channel, payload)`` of a received frame; ``PeerError`` if oversized, malformed or off-channel."""
    if len(data) > max_frame_bytes:
        raise PeerError(f"frame of {len(data)} bytes; limit {max_frame_bytes}", "oversized")
    channel, payload = decode_frame(data)
    if channel not in channels:
        raise PeerError(f"unknown channel {channel[:32]!r}", "unknown_channel")
    return channel, payload


async def write_loop(link: Link, send_timeout_s: float, counters: Counter[str],
                     on_slow: Callable[[Link, str], None], name: str) -> None:
    """Put the link's queued frames on its socket until it closes (the link's writer task)."""
    ws = link.ws
    while not ws.closed:
        if not link.queue:
            link.wake.clear()
            await link.wake.wait()
            continue
        data = link.queue.popleft()
        link.queued_bytes -= len(data)
        try:
            # asyncio.timeout, not wait_for: no extra task per frame on the hot path.
            async with asyncio.timeout(send_timeout_s):
                await ws.send_bytes(data)
        except TimeoutError:
            on_slow(link, f"one frame took over {send_timeout_s} s to write")
            return
        except (ConnectionError, RuntimeError) as exc:
            counters["send_failures"] += 1
            log.debug("send to %s failed: %s", name, exc)
            return
        counters["frames_out"] += 1
        counters["bytes_out"] += len(data)


async def read_frames(link: Link, max_frame_bytes: int, counters: Counter[str], name: str) -> AsyncIterator[bytes]:
    """Yield each binary frame until the link closes; raise ``PeerError`` for a text or oversized frame."""
    ws = link.ws
    while True:
        msg = await ws.receive()
        if msg.type == WSMsgType.BINARY:
            yield msg.data
        elif msg.type == WSMsgType.TEXT:
            raise PeerError("text frame; expected binary", "malformed")
        elif msg.type == WSMsgType.ERROR:
            exc = msg.data if isinstance(msg.data, BaseException) else ws.exception()
            if isinstance(exc, aiohttp.WebSocketError) and exc.code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
                raise PeerError(f"frame above {max_frame_bytes} bytes", "oversized")
            counters["link_errors"] += 1
            log.info("peer link error with %s: %r", name, exc)
            return
        else:  # CLOSE, CLOSING, CLOSED
            return
