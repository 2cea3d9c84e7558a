"""Mutual TLS for the peer links and the peer listener's catch-up HTTP; HTTPS for the client API.

Theory of operation
-------------------
A network made by ``carecoin network init`` pins its CA in genesis.json (``"tls": {"ca_pem", "ca_sha256"}``;
certificates are made by ``node.tls_certs``). A node of such a network must be given its peer certificate
and key (``[peer] tls_cert_file`` / ``tls_key_file``) or it does not start, and then:

- the peer listener serves TLS 1.3 only and requires a client certificate that chains to the pinned CA
  (``PeerTls.server``); the dialer (peer links and catch-up, ``PeerTls.client``) requires the same of the
  listener and presents its own. Host names are not checked (peers are dialed by IP): identity is the node
  key, and it is checked after the handshake — ``read_node_key`` reads the ``carecoin:node:<hex>`` SAN URI of
  the peer's certificate and the link is refused unless it names the key the node-key challenge proves
  (``node.handshake``), and, for a dial, the key we meant to reach.
- Anything else is refused inside the TLS handshake: a self-made certificate, no certificate, plain TCP, a
  plain ws:// or http:// request. Each refusal calls ``on_refused(direction, reason)``; the node counts it in
  ``carecoin_peer_tls_refused_total{direction}`` and logs one line, at most one per ``LOG_EVERY_S`` (with the
  number left out), so a scanner cannot flood the log.

Counting needs the handshake's outcome, which asyncio does not report to the server (it drops a failed TLS
connection silently). The contexts therefore use an ``ssl.SSLObject`` subclass (``SSLContext.sslobject_class``)
whose ``do_handshake`` reports a real failure before re-raising it.

A genesis without ``"tls"`` (networks from before) keeps plain ws:// links: the network's pin decides, not a
node's config, so one node cannot downgrade a TLS network.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.errors import ConfigError, PeerError

log = logging.getLogger("carecoin.tls")

NODE_URI_PREFIX = "carecoin:node:"
LOG_EVERY_S = 10.0
OnRefused = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class PeerTls:
    """The two contexts of a node's peer transport (listener and dialer) and the pinned CA."""

    server: ssl.SSLContext
    client: ssl.SSLContext
    ca_pem: str


def read_pinned_ca(genesis_extra: dict[str, Any]) -> str | None:
    """The CA PEM genesis pins (``"tls": {"ca_pem": ...}``), or None for a network without peer TLS."""
    doc = genesis_extra.get("tls")
    if doc is None:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("ca_pem"), str) or "BEGIN CERTIFICATE" not in doc["ca_pem"]:
        raise ConfigError("genesis.json: tls must be {\"ca_pem\": <PEM certificate>, ...}")
    return doc["ca_pem"]


def _counting_class(on_refused: OnRefused) -> type[ssl.SSLObject]:
    class CountingSSLObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise
            except (ssl.SSLError, ssl.CertificateError) as exc:
                on_refused("inbound" if self.server_side else "outbound", _reason(exc))
                raise

    return CountingSSLObject


def _reason(exc: BaseException) -> str:
    verify = getattr(exc, "verify_message", None)
    return str(verify or getattr(exc, "reason", None) or exc)[:120]


def _harden(ctx: ssl.SSLContext) -> ssl.SSLContext:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET
    return ctx


def build_peer_tls(ca_pem: str, cert_file: Path, key_file: Path, on_refused: OnRefused | None = None) -> PeerTls:
    """Contexts that present ``cert_file`` and trust only ``ca_pem``, both directions mutual."""
    report = on_refused or (lambda direction, reason: None)
    contexts = []
    for purpose in (ssl.PROTOCOL_TLS_SERVER, ssl.PROTOCOL_TLS_CLIENT):
        ctx = _harden(ssl.SSLContext(purpose))
        if purpose == ssl.PROTOCOL_TLS_CLIENT:
            ctx.check_hostname = False  # peers are dialed by IP; the node key in the SAN is checked instead
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=ca_pem)
        try:
            ctx.load_cert_chain(str(cert_file), str(key_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the peer TLS certificate {cert_file} / key {key_file}: {exc}") from None
        ctx.sslobject_class = _counting_class(report)
        contexts.append(ctx)
    return PeerTls(contexts[0], contexts[1], ca_pem)


def build_api_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """The client API's HTTPS context (server certificate only; clients are authenticated by signatures)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the API TLS certificate {cert_file} / key {key_file}: {exc}") from None
    return ctx


def read_node_key(peercert: dict | None) -> bytes | None:
    """The node key named by a verified peer certificate (``getpeercert()`` dict), or None."""
    for kind, value in (peercert or {}).get("subjectAltName", ()):
        if kind == "URI" and value.startswith(NODE_URI_PREFIX):
            try:
                key = bytes.fromhex(value[len(NODE_URI_PREFIX):])
            except ValueError:
                return None
            return key if len(key) == 32 else None
    return None


def get_peercert(transport_or_ws) -> dict | None:
    """The verified peer certificate of a server transport or a client websocket (None on plain links)."""
    getter = getattr(transport_or_ws, "get_extra_info", None)
    return getter("peercert") if getter is not None else None


class RefusalLog:
    """Logs refused TLS handshakes at most once per ``every_s`` (with how many were left out)."""

    def __init__(self, every_s: float = LOG_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s, self.clock = every_s, clock
        self._last = -1e18
        self._suppressed = 0

    def note(self, direction: str, reason: str) -> bool:
        """Log this refusal unless one was logged within ``every_s``; True if a line was written."""
        now = self.clock()
        if now - self._last < self.every_s:
            self._suppressed += 1
            return False
        more = f" ({self._suppressed} more refused since the last line)" if self._suppressed else ""
        log.warning("peer TLS handshake refused (%s): %s%s", direction, reason, more)
        self._last, self._suppressed = now, 0
        return True


def check_peer_identity(peercert: dict | None, proven_key: bytes, tls_on: bool) -> None:
    """On a TLS link, raise ``PeerError(reason="tls_identity")`` unless the peer's certificate names
    ``proven_key`` (the key the node-key challenge proved, or the key a dial meant to reach)."""
    if not tls_on:
        return
    named = read_node_key(peercert)
    if named != proven_key:
        seen = named.hex()[:16] + "…" if named else "no node key"
        raise PeerError(f"the peer's TLS certificate names {seen}; expected {proven_key.hex()[:16]}…",
                        "tls_identity")


def to_tls_url(url: str) -> str:
    """``ws://`` -> ``wss://`` and ``http://`` -> ``https://`` (a TLS network dials every peer over TLS, also
    one whose on-chain address was written without it)."""
    for plain, secure in (("ws://", "wss://"), ("http://", "https://")):
        if url.startswith(plain):
            return secure + url[len(plain):]
    return url


def load_peer_tls(ca_pem: str | None, files, where: str, on_refused: OnRefused | None = None) -> PeerTls | None:
    """The node's peer TLS: None when genesis pins no CA; else built from ``files`` (a ``TlsFiles``), which a
    node of a TLS network must have (``ConfigError`` naming ``where`` otherwise)."""
    if ca_pem is None:
        return None
    if files is None:
        raise ConfigError(f"{where}: genesis pins a TLS CA, so [peer] tls_cert_file and tls_key_file are required "
                          f"(written by `carecoin network init` / `add-branch`)")
    return build_peer_tls(ca_pem, files.cert_file, files.key_file, on_refused)
