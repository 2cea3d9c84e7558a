"""Authenticated peer links: whom to dial and how often, each link's bounded send queue, writer and reader,
and the table of live links (one per peer).

Sending never waits on a peer: a frame goes into the link's bounded queue (``PeerNetwork._enqueue``) and
``write_loop`` puts it on the socket, in order, each write bounded by a timeout; a peer that stops reading
is dropped (``on_slow``). ``read_frames`` yields the binary frames a peer sends and raises ``PeerError``
for a remote fault (text frame, frame above the limit), so the caller closes that one link.

``LinkTable`` keeps one link per peer pair: when a pair ends up with two live links both sides keep the one
dialed by the lower public key, so they converge on the same link without talking about it; a new link in
the same direction as a live one replaces it (the old one is presumed stale).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from urllib.parse import urlsplit

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


def parse_peer_address(text: str, path: str = "/peer") -> str | None:
    """The URL to dial for a validator's on-chain peer address: ``ws[s]://host:port[/path]`` as is, or
    ``host:port`` as ``ws://host:port/peer``; None unless the host is an IP literal or ``localhost`` and the
    port a valid one (nothing is resolved, and a bad address is skipped, never fatal)."""
    url = text if "://" in text else f"ws://{text}{path}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("ws", "wss") or port is None or not port:
        return None
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return None
    return url if parts.path else url + path


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

    def enqueue(self, data: bytes, max_frames: int, max_bytes: int) -> bool:
        """Queue a frame for the writer task; False (nothing queued) when the queue bounds would be passed."""
        if len(self.queue) >= max_frames or self.queued_bytes + len(data) > max_bytes:
            return False
        self.queue.append(data)
        self.queued_bytes += len(data)
        self.wake.set()
        return True

    def drop_queue(self) -> None:
        """Stop taking frames and forget the queued ones (the link is being closed)."""
        self.dead = True
        self.queue.clear()
        self.queued_bytes = 0


class DialSet:
    """One dial task per peer address: ``update`` starts the new or moved ones and cancels the gone ones."""

    def __init__(self, dial: Callable[[PeerAddress], Awaitable[None]]) -> None:
        self._dial = dial
        self._tasks: dict[bytes, tuple[PeerAddress, asyncio.Task]] = {}
        self._cancelled: set[asyncio.Task] = set()

    def update(self, peers: Collection[PeerAddress]) -> None:
        """Dial exactly ``peers`` from now on (a running dial of an unchanged address goes on)."""
        wanted = {p.public_key: p for p in peers}
        for key, (addr, task) in list(self._tasks.items()):
            if wanted.get(key) != addr:
                del self._tasks[key]
                task.cancel()
                self._cancelled.add(task)
                task.add_done_callback(self._cancelled.discard)
        for key, addr in wanted.items():
            if key not in self._tasks:
                self._tasks[key] = (addr, asyncio.create_task(self._dial(addr), name=f"peer-dial-{addr.name}"))

    def get_dialed(self) -> list[PeerAddress]:
        """The addresses dialed now."""
        return [addr for addr, _ in self._tasks.values()]

    async def cancel(self) -> None:
        """Cancel every dial task and wait for them to end."""
        tasks = [task for _, task in self._tasks.values()] + list(self._cancelled)
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class LinkTable:
    """The registered links by peer key, at most one per peer, and an event per peer that fires when its link goes."""

    def __init__(self, own_key: bytes) -> None:
        self.own_key = own_key
        self._links: dict[bytes, Link] = {}
        self._gone: dict[bytes, asyncio.Event] = {}

    def get(self, peer_key: bytes) -> Link | None:
        return self._links.get(peer_key)

    def get_live(self) -> dict[bytes, Link]:
        """The live links by peer key."""
        return {k: link for k, link in self._links.items() if link.live}

    def is_connected(self, peer_key: bytes) -> bool:
        link = self._links.get(peer_key)
        return link is not None and link.live

    def register(self, link: Link) -> tuple[bool, Link | None]:
        """Keep ``link`` unless a live link that wins the dedupe exists; return (kept, the link it replaced)."""
        old = self._links.get(link.peer_key)
        if old is not None and old.live:
            me = self.own_key
            if old.outbound != link.outbound and old.dialer(me) == min(me, link.peer_key):
                return False, None
            # The new link wins: same direction (the old one is stale) or dialed by the lower key.
            self._links[link.peer_key] = link
            old.dead = True
            return True, old
        self._links[link.peer_key] = link
        return True, None

    def unregister(self, link: Link) -> bool:
        """Forget ``link`` if it is the registered one (and wake whoever waits for it to go); True if it was."""
        if self._links.get(link.peer_key) is not link:
            return False
        del self._links[link.peer_key]
        ev = self._gone.pop(link.peer_key, None)
        if ev is not None:
            ev.set()
        return True

    async def wait_gone(self, peer_key: bytes) -> None:
        """Wait until the peer's registered link goes (or ``release`` is called)."""
        ev = self._gone.get(peer_key)
        if ev is None or ev.is_set():  # a set event would make a dial loop spin
            ev = self._gone[peer_key] = asyncio.Event()
        await ev.wait()

    def release(self) -> None:
        """Wake every ``wait_gone`` (on stop)."""
        for ev in self._gone.values():
            ev.set()
        self._gone.clear()

    def clear(self) -> None:
        self._links.clear()


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
