"""The carecoin client library: ``Client`` (blocking) and ``AsyncClient`` (aiohttp), the same methods.

    from carecoin import Client
    node = Client("https://127.0.0.1:27100", key="alice.key", ca_file="net/company/tls-ca.pem")
    print(node.account(node.key.public_key)["balance"])
    done = node.send("transfer", [bytes.fromhex(bob_hex), 250, bytes(32)])  # to, amount, no memo; signed, waited
    if done["outcome"] == "failed":
        print(done["reason"], done["detail"])          # e.g. insufficient_balance: balance 100 < 250 ...
    for item in node.iter_history(node.key.public_key):  # every page, newest first, down to genesis
        ...

    async with AsyncClient(url, key=key) as node:
        status = await node.tx_status(tx_hash)

Both run the plans of ``carecoin.core`` (methods in ``carecoin.api``): this module only moves bytes. Every
refusal is an ``ApiError`` (``carecoin.errors``); a node that cannot be reached is ``NodeUnreachable``.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
import urllib.error
import urllib.request
from typing import Any, AsyncIterator, Iterator

from carecoin.api import Api
from carecoin.core import Answer, Core, Plan, SseParser, Sleep, Wire, next_before
from carecoin.errors import ApiError, NodeUnreachable, UntrustedCertificate
from carecoin.types import HistoryItem
from ledger.keys import KeyPair

DEFAULT_NODE = "http://127.0.0.1:27100"  # branch-1 of `carecoin network init` (configs/local-4.toml)
HISTORY_PAGE = 200  # items asked per history page by ``iter_history``
HISTORY_SCAN = 100_000  # blocks a page may scan (the node's time budget ends a page sooner)
CA_HINT = ("give the network's CA (ca_file=, --ca FILE or CARECOIN_CA; `carecoin network init` writes it to "
           "DIR/company/tls-ca.pem)")


def _untrusted(core: Core, reason: str) -> UntrustedCertificate:
    trusted = f"the CA {core.ca_file}" if core.ca_file else "the system's CAs (no CA file given)"
    return UntrustedCertificate(0, "untrusted_certificate", f"node at {core.url} presented a certificate not "
                                f"trusted by {trusted}: {reason}; {CA_HINT}", url=core.url)


def _unreachable(core: Core, reason: Any) -> NodeUnreachable:
    return NodeUnreachable(0, "unreachable", f"cannot reach node at {core.url}: {reason}", url=core.url)


class Client(Api):
    """A blocking client of one node (urllib; no session to close)."""

    def __init__(self, url: str = DEFAULT_NODE, key: KeyPair | str | os.PathLike | None = None,
                 ca_file: str | os.PathLike | None = None, timeout_s: float = 10.0) -> None:
        self.core = Core(url, timeout_s=timeout_s, ca_file=ca_file)
        self.sign_with(key)

    def _run(self, plan: Plan[Any]) -> Any:
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = plan.send(reply) if error is None else plan.throw(error)
            except StopIteration as stop:
                return stop.value
            reply, error = None, None
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
                continue
            try:
                reply = self._exchange(step)
            except ApiError as exc:
                error = exc

    def _exchange(self, wire: Wire) -> Answer:
        req = urllib.request.Request(wire.url, data=wire.body or None, method=wire.method, headers=dict(wire.headers))
        try:
            with urllib.request.urlopen(req, timeout=self.core.timeout_s, context=self.core.ssl_context) as resp:
                return Answer(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, dict(exc.headers or {}), exc.read())
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                raise _untrusted(self.core, exc.reason.verify_message) from None
            raise _unreachable(self.core, exc.reason) from None
        except OSError as exc:
            raise _unreachable(self.core, exc) from None

    def events(self, last_event_id: str | None = None, timeout_s: float = 60.0) -> Iterator[dict[str, Any]]:
        """The frames of one ``GET /v1/events`` stream ({"id", "event", "data"}), resumed after
        ``last_event_id``; ends when the node closes it (a ``cut`` frame names where to resume)."""
        wire = self._run(self._events_wire(last_event_id))
        req = urllib.request.Request(wire.url, method="GET", headers=dict(wire.headers))
        try:
            resp = urllib.request.urlopen(req, timeout=timeout_s, context=self.core.ssl_context)
        except urllib.error.HTTPError as exc:
            raise self.core.refusal(wire, Answer(exc.code, dict(exc.headers or {}), exc.read())) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                raise _untrusted(self.core, exc.reason.verify_message) from None
            raise _unreachable(self.core, exc.reason) from None
        except OSError as exc:
            raise _unreachable(self.core, exc) from None
        parser = SseParser()
        with resp:
            for raw in resp:
                frame = parser.feed(raw.decode("utf-8"))
                if frame is not None:
                    yield frame

    def iter_history(self, account: bytes | str, before: int | None = None,
                     page_size: int = HISTORY_PAGE) -> Iterator[HistoryItem]:
        """Every item of the account's history, newest first, following every page down to genesis."""
        while True:
            page = self.history(account, page_size, before, HISTORY_SCAN)
            yield from page["items"]
            before = next_before(page, before)
            if before is None:
                return


class AsyncClient(Api):
    """An asyncio client of one node (aiohttp); use ``async with`` or ``await close()``."""

    def __init__(self, url: str = DEFAULT_NODE, key: KeyPair | str | os.PathLike | None = None,
                 ca_file: str | os.PathLike | None = None, timeout_s: float = 10.0, session: Any = None) -> None:
        self.core = Core(url, timeout_s=timeout_s, ca_file=ca_file)
        self.sign_with(key)
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _run(self, plan: Plan[Any]) -> Any:  # returns a coroutine: every method of an AsyncClient is awaited
        return self._drive(plan)

    async def _drive(self, plan: Plan[Any]) -> Any:
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = plan.send(reply) if error is None else plan.throw(error)
            except StopIteration as stop:
                return stop.value
            reply, error = None, None
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
                continue
            try:
                reply = await self._exchange(step)
            except ApiError as exc:
                error = exc

    async def _exchange(self, wire: Wire) -> Answer:
        import aiohttp
        from yarl import URL

        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        try:
            async with self._session.request(
                    wire.method, URL(wire.url, encoded=True), data=wire.body or None, headers=dict(wire.headers),
                    ssl=self.core.ssl_context if wire.url.startswith("https") else None,
                    timeout=aiohttp.ClientTimeout(total=self.core.timeout_s)) as resp:
                return Answer(resp.status, dict(resp.headers), await resp.read())
        except aiohttp.ClientConnectorCertificateError as exc:
            raise _untrusted(self.core, exc.certificate_error) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise _unreachable(self.core, exc or type(exc).__name__) from None

    async def events(self, last_event_id: str | None = None,
                     timeout_s: float = 60.0) -> AsyncIterator[dict[str, Any]]:
        """As ``Client.events``: the frames of one ``GET /v1/events`` stream."""
        import aiohttp
        from yarl import URL

        wire = await self._run(self._events_wire(last_event_id))
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        try:
            async with self._session.get(URL(wire.url, encoded=True), headers=dict(wire.headers),
                                         ssl=self.core.ssl_context if wire.url.startswith("https") else None,
                                         timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout_s)) as resp:
                if resp.status >= 400:
                    raise self.core.refusal(wire, Answer(resp.status, dict(resp.headers), await resp.read()))
                parser = SseParser()
                async for raw in resp.content:
                    frame = parser.feed(raw.decode("utf-8"))
                    if frame is not None:
                        yield frame
        except aiohttp.ClientConnectorCertificateError as exc:
            raise _untrusted(self.core, exc.certificate_error) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _unreachable(self.core, exc or type(exc).__name__) from None

    async def iter_history(self, account: bytes | str, before: int | None = None,
                           page_size: int = HISTORY_PAGE) -> AsyncIterator[HistoryItem]:
        """Every item of the account's history, newest first, following every page down to genesis."""
        while True:
            page = await self.history(account, page_size, before, HISTORY_SCAN)
            for item in page["items"]:
                yield item
            before = next_before(page, before)
            if before is None:
                return
