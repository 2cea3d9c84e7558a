"""The request-building core both clients share (sans-IO): what to send, how to sign it, what an answer means.

A client operation is a *plan*: a generator that yields ``Wire`` (one HTTP exchange, fully built and signed)
or ``Sleep`` steps and receives the ``Answer`` of each exchange; its return value is the operation's result.
``Client`` runs plans with blocking I/O, ``AsyncClient`` with aiohttp; neither builds a request itself. A
transport failure is thrown into the plan as ``NodeUnreachable``.

Signing: a core given a key signs every request but ``GET /v1/status`` (which tells it the chain id, part of
every signature) with ``ledger.request_signing.compute_request_headers``; each request gets its own time
stamp, at least 1 ms after the previous one, so quick reads of one path never look like a replay.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generator, Mapping, TypeVar

from carecoin.errors import ApiError, Forbidden, NotFound, Unauthorized, WaitTimeout, error_for
from ledger.keys import KeyPair, load_key
from ledger.request_signing import compute_request_headers

T = TypeVar("T")
STATUS_PATH = "/v1/status"
CA_RELATIVE = Path("company") / "tls-ca.pem"  # where `carecoin network init` puts the network CA
SIGN_HINT = "sign the read with a key entitled to it"
USE_CLIENT_KEY: Any = object()  # the default signer of a request: the client's key, if any


@dataclass(frozen=True, slots=True)
class Wire:
    """One HTTP exchange, ready to send."""

    method: str
    url: str
    path: str  # with its query, exactly as signed
    headers: Mapping[str, str]
    body: bytes = b""
    signed: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


Plan = Generator["Wire | Sleep", Any, T]


def build_path(path: str, query: Mapping[str, Any] | None = None) -> str:
    """``path`` with the query parameters that are not None, urlencoded."""
    pairs = {k: v for k, v in (query or {}).items() if v is not None}
    return path + (f"?{urllib.parse.urlencode(pairs)}" if pairs else "")


def quote(object_id: str) -> str:
    """An id as one path segment."""
    return urllib.parse.quote(object_id, safe="")


def find_network_ca(near: str | os.PathLike | None) -> Path | None:
    """The network CA of the network directory holding ``near`` (a key file or node.toml): the first
    ``company/tls-ca.pem`` in its ancestors (at most 4 levels up), or None."""
    if not near:
        return None
    for parent in list(Path(near).resolve().parents)[:4]:
        if (parent / CA_RELATIVE).is_file():
            return parent / CA_RELATIVE
    return None


def as_key(key: KeyPair | str | os.PathLike | None) -> KeyPair | None:
    """A ``KeyPair`` from a key pair or a key file (None stays None)."""
    if key is None or isinstance(key, KeyPair):
        return key
    return load_key(key)


@dataclass
class Core:
    """The state a client keeps: base URL, signing key, chain id, last time stamp, trusted CA."""

    url: str
    key: KeyPair | None = None
    timeout_s: float = 10.0
    ca_file: str | os.PathLike | None = None
    chain: str | None = None
    last_stamp: int = 0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.trust(self.ca_file)

    def trust(self, ca_file: str | os.PathLike | None) -> None:
        """For https:// trust the CA file ``ca_file`` when given, else the system's CAs."""
        self.ca_file = ca_file
        self.ssl_context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def next_stamp(self) -> int:
        self.last_stamp = max(int(time.time() * 1000), self.last_stamp + 1)
        return self.last_stamp

    # ---- plans ------------------------------------------------------------------------------------------

    def chain_id(self) -> Plan[str]:
        """The node's chain id (asked once: it is part of every signature)."""
        if self.chain is None:
            doc = yield from self.exchange("GET", STATUS_PATH, signer=None)
            self.chain = doc["chain_id"]
        return self.chain

    def exchange(self, method: str, path: str, *, json_body: Any = None, data: bytes | None = None,
                 signer: Any = USE_CLIENT_KEY, raw: bool = False,
                 headers: Mapping[str, str] | None = None) -> Plan[Any]:
        """Send one request (``path`` with its query): ``json_body`` as JSON or ``data`` as given, signed by
        ``signer`` (default the client's key; None: unsigned). Return the JSON answer (bytes with ``raw``);
        raise the ``ApiError`` of a refusal."""
        body = data if data is not None else (b"" if json_body is None else json.dumps(json_body).encode())
        wire = yield from self.prepare(method, path, body, signer, headers)
        answer: Answer = yield wire
        return self.parse(wire, answer, raw)

    def prepare(self, method: str, path: str, body: bytes = b"", signer: Any = USE_CLIENT_KEY,
                headers: Mapping[str, str] | None = None) -> Plan[Wire]:
        """The ``Wire`` of one request, signed (asking the chain id first when it is not known yet)."""
        key = self.key if signer is USE_CLIENT_KEY else as_key(signer)
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if key is not None and path != STATUS_PATH:
            chain = yield from self.chain_id()
            all_headers.update(compute_request_headers(key, chain, method, path, body, self.next_stamp()))
        return Wire(method, self.url + path, path, all_headers, body, signed=key is not None)

    def parse(self, wire: Wire, answer: Answer, raw: bool) -> Any:
        """The JSON (or bytes) of a success; the ``ApiError`` of anything else."""
        if answer.status >= 400:
            raise self.refusal(wire, answer)
        if raw:
            return answer.body
        try:
            return json.loads(answer.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(answer.status, "not_json", f"node at {self.url} answered {wire.path} with non-JSON "
                                                      "content", url=wire.url) from None

    def refusal(self, wire: Wire, answer: Answer) -> ApiError:
        try:
            err = json.loads(answer.body)["error"]
            code, message = str(err["code"]), str(err["message"])
        except Exception:  # noqa: BLE001 - a non-conforming body still becomes a readable error
            code, message = "http_error", f"{wire.method} {wire.path}: HTTP {answer.status}"
        if answer.status == 401 and not wire.signed:
            message += f" — {SIGN_HINT}"
        retry = {k.lower(): v for k, v in answer.headers.items()}.get("retry-after")
        try:
            retry_after = float(retry) if retry is not None else None
        except ValueError:
            retry_after = None
        return error_for(answer.status, code, message, url=wire.url, retry_after=retry_after)


def is_final(status: Mapping[str, Any]) -> bool:
    """A tx status that waiting longer will not change (committed or evicted)."""
    return status.get("status") not in ("pending", "unknown")


def wait_plan(core: Core, tx_hash: str, timeout_s: float, signer: Any = USE_CLIENT_KEY) -> Plan[dict]:
    """Poll the tx status until it is committed or evicted (bounded by ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            status = yield from core.exchange("GET", f"/v1/tx/{tx_hash}", signer=signer)
        except Unauthorized:
            raise  # unsigned or badly signed: waiting longer would not help
        except (NotFound, Forbidden):  # not seen here (yet): a tx nobody knows is refused like one you may not read
            status = {"tx_hash": tx_hash, "status": "unknown"}
        if is_final(status):
            return status
        if time.monotonic() >= deadline:
            raise WaitTimeout(0, "wait_timeout", f"tx {tx_hash} still {status.get('status')} after "
                                                 f"{timeout_s:g} s; check its status later", url=core.url)
        yield Sleep(delay)
        delay = min(delay * 1.5, 0.5)


def next_before(page: Mapping[str, Any], before: int | None) -> int | None:
    """The ``before`` of the next history page (None at genesis); refuses a node that does not move down."""
    nxt = page.get("next_before")
    if nxt is not None and before is not None and nxt >= before:
        raise ApiError(200, "history_not_descending", f"history page asked below {before} continues at {nxt}; "
                                                       "expected a lower height")
    return nxt


class SseParser:
    """Server-sent events, one line at a time: ``feed(line)`` returns a finished frame ({"id", "event", "data"};
    ``data`` parsed as JSON) at each blank line, else None. Comment lines (keepalives) are skipped."""

    def __init__(self) -> None:
        self.frame: dict[str, Any] = {}

    def feed(self, line: str) -> dict[str, Any] | None:
        line = line.rstrip("\r\n")
        if not line:
            frame, self.frame = self.frame, {}
            return frame or None
        if not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            self.frame[name] = json.loads(value) if name == "data" else value
        return None
