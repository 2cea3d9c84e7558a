"""A small synchronous HTTP client for a node's API: the ONE place the CLI speaks HTTP.

Every command (``cli.tx``, ``cli.query``, ``cli.domain``, ``cli.demo``) talks to a node through a
``NodeClient``; a failure becomes one ``click.ClickException`` naming the node and the cause.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

DEFAULT_NODE = "http://127.0.0.1:7000"
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

    def __init__(self, url: str, timeout_s: float = 10.0, ca_file: str | os.PathLike | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.ca_file = ca_file
        # https:// trusts the network CA when one is given, else the system's CAs (a node with a public cert).
        self._ssl = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def request(self, method: str, path: str, body: Any = None, raw: bool = False, data: bytes | None = None,
                headers: dict[str, str] | None = None) -> Any:
        """Send one request: ``body`` as JSON (or ``data`` as given bytes) with extra ``headers``; the JSON
        answer (or its bytes with ``raw``)."""
        if data is None and body is not None:
            data = json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data or None, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=self._ssl) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            raise click.ClickException(_error_text(exc)) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                trusted = f"the CA {self.ca_file}" if self.ca_file else "the system's CAs (no --ca given)"
                raise click.ClickException(
                    f"node at {self.url} presented a certificate not trusted by {trusted}: "
                    f"{exc.reason.verify_message}; give the network's CA with --ca FILE or CARECOIN_CA (`carecoin "
                    f"network init` writes it to DIR/{CA_RELATIVE})") from None
            raise click.ClickException(f"cannot reach node at {self.url}: {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise click.ClickException(f"cannot reach node at {self.url}: {reason}") from None
        if raw:
            return payload
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            raise click.ClickException(f"node at {self.url} answered {path} with non-JSON content") from None

    def get(self, path: str, raw: bool = False) -> Any:
        return self.request("GET", path, raw=raw)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def wait_committed(self, tx_hash: str, timeout_s: float = 30.0) -> dict:
        """Poll the tx status until it leaves 'pending' (bounded by ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while True:
            try:
                status = self.get(f"/v1/tx/{tx_hash}")
            except click.ClickException:
                status = {"status": "unknown"}
            if status.get("status") not in ("pending", "unknown"):
                return status
            if time.monotonic() >= deadline:
                raise click.ClickException(
                    f"tx {tx_hash} still {status.get('status')} after {timeout_s:.0f} s; check `carecoin tx status`")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)


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
