"""Field checks for TOML tables: typed getters that name the file and field in every ``ConfigError``.

Hosts are taken as given: an IP literal or ``localhost``; nothing here resolves a name or touches the network.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from node.config.defaults import PEER_PATH
from node.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A TLS certificate (PEM, may hold the chain) and its private key (PEM, 0600)."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class PeerEntry:
    name: str
    public_key: bytes
    url: str


class _Reader:
    """Typed getters over one TOML table that name the file and field in every error."""

    def __init__(self, where: str, table: Any, section: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] must be a table, got {type(table).__name__}")
        self.where, self.table, self.section = where, table, section

    def _field(self, key: str) -> str:
        return f"{self.section}.{key}" if self.section else key

    def int(self, key: str, lo: int, hi: int, default: int | None = None) -> int:
        value = self.table.get(key, default)
        if value is None:
            raise ConfigError(f"{self.where}: {self._field(key)} is missing; expected an integer {lo}..{hi}")
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(f"{self.where}: {self._field(key)} must be an integer {lo}..{hi}, got {value!r}")
        return value

    def str(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self.table.get(key, default)
        if value is None:
            raise ConfigError(f"{self.where}: {self._field(key)} is missing; expected a string")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.where}: {self._field(key)} must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise ConfigError(
                f"{self.where}: {self._field(key)} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def host(self, key: str, default: str | None = None) -> str:
        value = self.str(key, default)
        if not is_valid_host(value):
            raise ConfigError(
                f"{self.where}: {self._field(key)} must be an IP address or 'localhost', got {value!r}")
        return value


def read_tls_files(where: str, r: _Reader, base: Path) -> TlsFiles | None:
    """``tls_cert_file`` + ``tls_key_file`` of a section (both or neither), resolved against ``base``."""
    cert, key = r.table.get("tls_cert_file"), r.table.get("tls_key_file")
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError(f"{where}: {r.section}.tls_cert_file and {r.section}.tls_key_file go together; "
                          f"got only {'tls_cert_file' if key is None else 'tls_key_file'}")
    return TlsFiles(_path(base, r.str("tls_cert_file")), _path(base, r.str("tls_key_file")))


def is_valid_host(host: str) -> bool:
    """True for an IP literal or ``localhost`` (names are never resolved here)."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_local_or_any_host(host: str) -> bool:
    """True for a loopback address, ``localhost`` or the any-address (0.0.0.0 / ::)."""
    if host == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return addr.is_loopback or addr.is_unspecified


def compute_peer_url(host: str, port: int, tls: bool = False) -> str:
    """The URL a peer dials to reach a node listening on ``host:port`` (any-address dials loopback);
    ``wss://`` when the peer links are TLS."""
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{'wss' if tls else 'ws'}://{host}:{port}{PEER_PATH}"


def _peer_entry(where: str, i: int, doc: Any) -> PeerEntry:
    r = _Reader(where, doc, f"peers[{i}]")
    name = r.str("name")
    key_hex = r.str("public_key")
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{where}: peers[{i}].public_key must be 64 hex digits, got {key_hex[:20]!r}")
    url = r.str("url")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("ws", "wss") or not parts.hostname or port is None or \
            not is_valid_host(parts.hostname):
        raise ConfigError(
            f"{where}: peers[{i}].url must look like ws://127.0.0.1:PORT{PEER_PATH}, got {url!r}")
    return PeerEntry(name, key, url)


def _path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()



def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; raise ``ConfigError`` for a missing or malformed file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from None

