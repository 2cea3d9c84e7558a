"""A small synchronous HTTP client for a node's API: the ONE place the CLI speaks HTTP.

Every command (``cli.tx``, ``cli.query``, ``cli.domain``, ``cli.demo``) talks to a node through a
``NodeClient``; a failure becomes one ``click.ClickException`` naming the node and the cause.

Signed requests are made here and nowhere else: a client given a key (``sign_with``; commands take
``--key FILE`` or ``CARECOIN_KEY`` through ``read_key_option``) signs every request but the chain-id lookup
(``GET /v1/status``) with the three headers of ``node.vault.compute_request_headers`` over chain id, method,
path (with its query), time and body hash. Each request gets its own time stamp, at least 1 ms after this
client's previous one, so quick successive reads of the same path by the same key never look like a replay.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import click

from ledger.keys import KeyPair, load_key
from node.vault import compute_request_headers

DEFAULT_NODE = "http://127.0.0.1:7000"
STATUS_PATH = "/v1/status"
SIGN_HINT = "pass --key FILE (or set CARECOIN_KEY) to sign the read with a key entitled to it"
CA_RELATIVE = Path("company") / "tls-ca.pem"  # where `carecoin network init` puts the network CA


def find_network_ca(near: str | os.PathLike | None) -> Path | None:
    """The network CA of the network directory holding ``near`` (a key file or node.toml): the first
    ``company/tls-ca.pem`` in its ancestors (at most 4 levels up), or None."""
    if not near:
        return None
    for parent in list(Path(near).resolve().parents)[:4]:
        if (parent / CA_RELATIVE).is_file():
            return parent / CA_RELATIVE
    return None


class NodeClient:
    """JSON over HTTP to one node; every failure becomes a ``click.ClickException`` naming the node and cause."""

    def __init__(self, url: str, timeout_s: float = 10.0, key: KeyPair | str | None = None,
                 ca_file: str | os.PathLike | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.key: KeyPair | None = None
        self._chain_id: str | None = None
        self._last_stamp = 0
        self.trust(ca_file)
        if key is not None:
            self.sign_with(key)

    def trust(self, ca_file: str | os.PathLike | None) -> "NodeClient":
        """For https:// trust the network CA ``ca_file`` when given, else the system's CAs (a node with a
        public certificate)."""
        self.ca_file = ca_file
        self._ssl = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        return self

    def sign_with(self, key: KeyPair | str) -> "NodeClient":
        """Sign every later request with ``key`` (a ``KeyPair`` or a key file)."""
        self.key = key if isinstance(key, KeyPair) else load_key(key)
        return self

    def chain_id(self) -> str:
        """The node's chain id (asked once: it is part of every signature)."""
        if self._chain_id is None:
            self._chain_id = self.request("GET", STATUS_PATH, key=None)["chain_id"]
        return self._chain_id

    def sign(self, key: KeyPair, method: str, path: str, data: bytes) -> dict[str, str]:
        """The signature headers of one request (a fresh time stamp, after this client's previous one)."""
        self._last_stamp = max(int(time.time() * 1000), self._last_stamp + 1)
        return compute_request_headers(key, self.chain_id(), method, path, data, self._last_stamp)

    def request(self, method: str, path: str, body: Any = None, raw: bool = False, data: bytes | None = None,
                headers: dict[str, str] | None = None, key: KeyPair | None | bool = True) -> Any:
        """Send one request: ``body`` as JSON (or ``data`` as given bytes) with extra ``headers``, signed by
        ``key`` (default: the client's key, if any; None: unsigned); the JSON answer (or bytes with ``raw``)."""
        if data is None and body is not None:
            data = json.dumps(body).encode()
        signer = self.key if key is True else key or None
        if signer is not None and path != STATUS_PATH:
            headers = {**(headers or {}), **self.sign(signer, method, path, data or b"")}
        req = urllib.request.Request(self.url + path, data=data or None, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=self._ssl) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            text = _error_text(exc)
            if exc.code == 401 and signer is None:
                text += f" — {SIGN_HINT}"
            raise click.ClickException(text) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                trusted = f"the CA {self.ca_file}" if self.ca_file else "the system's CAs (no --ca given)"
                raise click.ClickException(
                    f"node at {self.url} presented a certificate not trusted by {trusted}: "
                    f"{exc.reason.verify_message}; give the network's CA with --ca FILE or CARECOIN_CA (`carecoin "
                    f"network init` writes it to DIR/{CA_RELATIVE})") from None
            raise click.ClickException(f"cannot reach node at {self.url}: {exc.reason}") from None
        except OSError as exc:
            raise click.ClickException(f"cannot reach node at {self.url}: {exc}") from None
        if raw:
            return payload
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            raise click.ClickException(f"node at {self.url} answered {path} with non-JSON content") from None

    def get(self, path: str, raw: bool = False, key: KeyPair | None | bool = True) -> Any:
        return self.request("GET", path, raw=raw, key=key)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def wait_committed(self, tx_hash: str, timeout_s: float = 30.0, key: KeyPair | None | bool = True) -> dict:
        """Poll the tx status until it leaves 'pending' (bounded by ``timeout_s``), signed by ``key`` (default:
        the client's key; the sender's key is entitled)."""
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while True:
            try:
                status = self.get(f"/v1/tx/{tx_hash}", key=key)
            except click.ClickException as exc:
                if "answered 401" in exc.message:
                    raise  # unsigned or badly signed: waiting longer would not help
                status = {"status": "unknown"}
            if status.get("status") not in ("pending", "unknown"):
                return status
            if time.monotonic() >= deadline:
                raise click.ClickException(
                    f"tx {tx_hash} still {status.get('status')} after {timeout_s:.0f} s; check `carecoin tx status`")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)


def read_key_option(func: Callable) -> Callable:
    """Add ``--key FILE`` (env ``CARECOIN_KEY``) to a read command: the ``client`` signs its requests with it.

    Put it below ``node_options`` (which passes ``client``)."""

    @click.option("--key", "read_key_file", envvar="CARECOIN_KEY", default=None, type=click.Path(dir_okay=False),
                  help="Key file that signs the read (env CARECOIN_KEY): the account itself, staff of its branch, "
                       "an auditor or compliance key.")
    @functools.wraps(func)
    def wrapper(*args: Any, client: NodeClient, read_key_file: str | None, **kwargs: Any) -> Any:
        if read_key_file:
            client.sign_with(read_key_file)
            if client.ca_file is None:
                client.trust(find_network_ca(read_key_file))
        return func(*args, client=client, **kwargs)

    return wrapper


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        doc = json.loads(exc.read())
        err = doc["error"]
        text = f"{err['code']}: {err['message']}"
    except Exception:  # noqa: BLE001 - any non-conforming body still gets a readable message
        text = exc.reason
    retry = exc.headers.get("Retry-After") if exc.headers else None
    suffix = f" (retry after {retry} s)" if retry else ""
    return f"node answered {exc.code}: {text}{suffix}"
