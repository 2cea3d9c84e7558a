"""A cap on the sockets the node's listeners hold open at once, so clients cannot exhaust its file descriptors.

Theory of operation
-------------------
Every accepted socket costs the process a file descriptor until it closes. Without a cap, anyone who can reach
the client API opens idle connections until ``RLIMIT_NOFILE`` is reached; the node's next ``open()`` (the
consensus WAL, LevelDB, a peer link) then fails with EMFILE and the node stops on a local fault. The cap is
taken from the soft ``RLIMIT_NOFILE`` at start (``compute_cap``): three quarters of it, and at least
``RESERVED_FDS`` below it, so the store, the WAL, the peer links and the verify pool always find descriptors.

``ConnectionBudget.wrap(factory)`` is the protocol factory a listener serves: a connection within the cap gets
the real protocol, counted from its accept (a TLS handshake in progress counts) until ``connection_lost`` or,
when a TLS handshake fails and asyncio drops the protocol without calling it, until the protocol is released
(``weakref.finalize``). A connection over the cap is answered ``503`` naming the limit and closed at once
(plain HTTP) or right after its TLS handshake. The API and the peer listener share one budget.
Idle sockets do not keep a slot for long either: both listeners close a socket that sends no request within
their keep-alive timeout (``node.handshake.server_options`` for the peer port, ``API_KEEPALIVE_S`` for the API).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
import weakref
from typing import Callable

log = logging.getLogger("carecoin.node")

RESERVED_FDS = 256  # descriptors kept for the store, the WAL, peer links, the verify pool, logs
MIN_CAP = 16
MAX_CAP = 1 << 16
# A wakeup of the listening socket accepts up to the listen backlog before the refusals of the last burst have
# closed (a few loop turns later): a small backlog keeps that burst well inside RESERVED_FDS.
ACCEPT_BACKLOG = 32
API_KEEPALIVE_S = 30.0  # an idle client socket (no request under way) is closed after this
REFUSAL_LOG_EVERY_S = 10.0


def compute_cap(soft_limit: int | None = None) -> int:
    """Sockets the listeners may hold at once, from the soft RLIMIT_NOFILE (read when not given)."""
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_limit == resource.RLIM_INFINITY or soft_limit > MAX_CAP * 2:
        soft_limit = MAX_CAP * 2
    return max(MIN_CAP, min(soft_limit - RESERVED_FDS, soft_limit * 3 // 4, MAX_CAP))


class _Counted(asyncio.Protocol):
    """The real protocol of a connection within the cap; gives its slot back exactly once."""

    __slots__ = ("_inner", "_release", "__weakref__")

    def __init__(self, inner: asyncio.BaseProtocol, budget: "ConnectionBudget") -> None:
        self._inner = inner
        self._release = weakref.finalize(self, budget._release)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        self._inner.connection_lost(exc)


class _Refused(asyncio.Protocol):
    """A connection over the cap: a 503 naming the limit, then closed."""

    def __init__(self, cap: int) -> None:
        self._cap = cap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        body = (b'{"error": {"code": "too_many_connections", "message": "this node already holds %d open '
                b'connections, its limit; retry later"}}' % self._cap)
        try:
            transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                            b"Connection: close\r\nRetry-After: 1\r\nContent-Length: %d\r\n\r\n%s"
                            % (len(body), body))
        finally:
            transport.close()


class ConnectionBudget:
    """Open accepted sockets of the node's listeners, capped at ``cap`` (see the module docstring)."""

    def __init__(self, cap: int | None = None) -> None:
        self.cap = compute_cap() if cap is None else cap
        self.open = 0
        self.refused = 0
        self._last_log = 0.0

    def _release(self) -> None:
        self.open -= 1

    def wrap(self, factory: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.BaseProtocol]:
        """The protocol factory to serve: ``factory``'s protocol within the cap, a refusal over it."""
        def make() -> asyncio.BaseProtocol:
            if self.open >= self.cap:
                self.refused += 1
                now = time.monotonic()
                if now - self._last_log >= REFUSAL_LOG_EVERY_S:
                    self._last_log = now
                    log.warning("refusing connections: %d open, the limit (from RLIMIT_NOFILE); %d refused so "
                                "far", self.open, self.refused)
                return _Refused(self.cap)
            self.open += 1
            return _Counted(factory(), self)
        return make
