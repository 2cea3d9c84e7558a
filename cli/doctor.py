"""`carecoin doctor --config node.toml`: check a node's setup and say, for each problem, how to fix it.

Each check answers ``ok``, ``warn`` or ``fail`` with what was seen and, when not ok, a fix. The command exits 1
when any check fails (0 with warnings). It reads files and probes the network; it changes nothing (the data
dir probe writes and deletes one temporary file). Checks, in order:

config      node.toml parses (every later check needs it)
genesis     genesis.json loads; its chain id
node key    the key file loads (mode 0600) and is a genesis validator (else: a follower until governance adds it);
            every configured peer key is a genesis validator
tls         on a network whose genesis pins a CA: the peer certificate is valid now (warn within 30 days of its
            end), signed by the pinned CA and names this node's key; the API certificate, when configured, is
            valid and names the API host
vault key   the vault master key (file or ``CARECOIN_VAULT_MASTER_KEY``) loads
store       the data dir's store opens with this genesis (or is in use: the node runs)
ports       the API and peer ports are free to bind on their hosts (or held by this node, running)
disk        free space on the data dir's file system, and a file can be written and fsynced there
peers       each configured peer answers a TLS handshake with the certificate of the key configured for it,
            and ``/livez`` over that link; a quorum of them must be reachable
clock       the skew against each reachable peer's clock (its ``/livez`` ``time_ms`` against the midpoint of
            the request): warn above 500 ms, fail above ``consensus.max_future_ms`` (blocks get refused)
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import shutil
import socket
import ssl
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import click
from cryptography import x509

from ledger.block import quorum
from ledger.chain import genesis_block
from ledger.errors import LedgerError, StorageError
from ledger.genesis import Genesis, load_genesis
from ledger.keys import load_key
from ledger.storage import Store
from node.config import NodeConfig, load_config
from node.errors import NodeError
from node.tls import NODE_URI_PREFIX, load_peer_tls, read_node_key, read_pinned_ca
from node.vault_master import load_master_key

OK, WARN, FAIL = "ok", "warn", "fail"
CERT_WARN_DAYS = 30
DISK_FAIL_BYTES = 256 * 1024 * 1024
DISK_WARN_BYTES = 2 * 1024 * 1024 * 1024
SKEW_WARN_MS = 500
PEER_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    level: str  # ok | warn | fail
    message: str
    fix: str = ""


class Doctor:
    """Runs the checks of one node.toml and collects their results."""

    def __init__(self, config_path: str | Path, now: Callable[[], float] = time.time) -> None:
        self.config_path, self.now = Path(config_path), now
        self.results: list[Check] = []
        self.cfg: NodeConfig | None = None
        self.genesis: Genesis | None = None
        self.node_key: bytes | None = None
        self.running = False

    def add(self, name: str, level: str, message: str, fix: str = "") -> None:
        self.results.append(Check(name, level, message, fix))

    def run(self) -> list[Check]:
        self.check_config()
        if self.cfg is None:
            return self.results
        self.check_genesis()
        self.check_node_key()
        if self.genesis is not None:
            self.check_tls()
        self.check_vault_key()
        self.check_store()
        self.check_ports()
        self.check_disk()
        if self.genesis is not None:
            self.check_peers()
        return self.results

    # ---- files ------------------------------------------------------------------------------------------

    def check_config(self) -> None:
        try:
            self.cfg = load_config(self.config_path)
        except NodeError as exc:
            self.add("config", FAIL, exc.message, "fix the named field (`carecoin network init` writes a valid one)")
            return
        self.add("config", OK, f"{self.config_path} parses: node {self.cfg.name}, API {self.cfg.api.host}:"
                               f"{self.cfg.api.port}, peer {self.cfg.peer.host}:{self.cfg.peer.port}")

    def check_genesis(self) -> None:
        try:
            self.genesis = load_genesis(self.cfg.genesis_file)
        except (LedgerError, NodeError, OSError) as exc:
            self.add("genesis", FAIL, f"{self.cfg.genesis_file}: {getattr(exc, 'message', exc)}",
                     "point [node] genesis_file at the network's genesis.json")
            return
        self.add("genesis", OK, f"chain {self.genesis.chain_id}, {len(self.genesis.validators)} genesis validators")

    def check_node_key(self) -> None:
        try:
            self.node_key = load_key(self.cfg.key_file).public_key
        except LedgerError as exc:
            self.add("node key", FAIL, exc.message, f"chmod 600 {self.cfg.key_file} if only the mode is wrong; "
                                                    f"else restore the node's key file")
            return
        if self.genesis is None:
            return
        names = {v.public_key: v.name for v in self.genesis.validators}
        if self.node_key in names:
            self.add("node key", OK, f"{self.node_key.hex()[:16]}… is validator {names[self.node_key]} in genesis")
        else:
            self.add("node key", WARN, f"{self.node_key.hex()[:16]}… is not a genesis validator: the node follows "
                                       f"until governance adds it", "see `carecoin network add-branch`")
        strangers = [p.name for p in self.cfg.peers if p.public_key not in names]
        if strangers:
            self.add("peer keys", WARN, f"peers {', '.join(strangers)} are not genesis validators (added later by "
                                        f"governance, or a wrong key)", "compare [[peers]] public_key with genesis")

    def check_tls(self) -> None:
        ca_pem = read_pinned_ca(self.genesis.extra)
        if ca_pem is None:
            self.add("tls", WARN, "genesis pins no CA: peer links are plaintext",
                     "new networks from `carecoin network init` pin one")
            return
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
        if self.cfg.peer_tls is None:
            self.add("tls peer", FAIL, "genesis pins a CA but [peer] names no tls_cert_file/tls_key_file",
                     "add the files `network init` wrote in <branch>/tls/")
        else:
            self._check_cert("tls peer", self.cfg.peer_tls.cert_file, ca, want_uri=NODE_URI_PREFIX + (
                self.node_key.hex() if self.node_key else ""))
            self._check_key_mode("tls peer key", self.cfg.peer_tls.key_file)
        if self.cfg.api_tls is not None:
            self._check_cert("tls api", self.cfg.api_tls.cert_file, ca, want_host=self.cfg.api.host)
            self._check_key_mode("tls api key", self.cfg.api_tls.key_file)

    def _check_cert(self, name: str, path: Path, ca: x509.Certificate, *, want_uri: str = "",
                    want_host: str = "") -> None:
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as exc:
            self.add(name, FAIL, f"{path} does not load as a PEM certificate: {exc}", "restore it from the network")
            return
        now = datetime.datetime.fromtimestamp(self.now(), datetime.timezone.utc)
        end = cert.not_valid_after_utc
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, Exception) as exc:  # InvalidSignature or a mismatched issuer
            self.add(name, FAIL, f"{path} is not signed by the CA genesis pins ({type(exc).__name__})",
                     "issue it with the network CA (company/tls-ca.key), as `network init` does")
            return
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if want_uri and want_uri not in sans.get_values_for_type(x509.UniformResourceIdentifier):
            self.add(name, FAIL, f"{path} names {sans.get_values_for_type(x509.UniformResourceIdentifier)}; "
                                 f"expected {want_uri[:40]}… (this node's key)",
                     "issue the peer certificate for this node's key (the handshake refuses any other)")
            return
        if want_host and want_host not in ("0.0.0.0", "::"):
            names = [str(v) for v in sans.get_values_for_type(x509.IPAddress)] + sans.get_values_for_type(
                x509.DNSName)
            if want_host not in names:
                self.add(name, FAIL, f"{path} names {', '.join(names)}; expected the API host {want_host}",
                         "issue the API certificate for the [api] host")
                return
        if now < cert.not_valid_before_utc or now >= end:
            self.add(name, FAIL, f"{path} is valid {cert.not_valid_before_utc:%Y-%m-%d} to {end:%Y-%m-%d}; "
                                 f"now is {now:%Y-%m-%d}", "issue a new certificate with the network CA")
        elif end - now < datetime.timedelta(days=CERT_WARN_DAYS):
            self.add(name, WARN, f"{path} expires on {end:%Y-%m-%d} ({(end - now).days} days)",
                     "issue a new certificate with the network CA before then")
        else:
            self.add(name, OK, f"{path.name} signed by the pinned CA, valid until {end:%Y-%m-%d}")

    def _check_key_mode(self, name: str, path: Path) -> None:
        try:
            mode = path.stat().st_mode & 0o777
        except OSError as exc:
            self.add(name, FAIL, f"{path}: {exc.strerror}", "restore the key file")
            return
        if mode & 0o077:
            self.add(name, FAIL, f"{path} has mode {mode:04o}; expected 0600", f"chmod 600 {path}")

    def check_vault_key(self) -> None:
        try:
            key = load_master_key(self.cfg.vault_master_key_file)
        except NodeError as exc:
            self.add("vault key", FAIL, exc.message, "give one key: CARECOIN_VAULT_MASTER_KEY or "
                                                     "[node] vault_master_key_file (0600)")
            return
        self.add("vault key", OK, "master key outside the data dir loads" if key is not None
                 else "master key in the data dir (vault/master.key; local networks)")

    def check_store(self) -> None:
        if not self.cfg.data_dir.exists():
            self.add("store", OK, f"{self.cfg.data_dir} does not exist yet: the first start creates it")
            return
        try:
            store = Store.open(str(self.cfg.data_dir), create=False)
        except StorageError as exc:
            if "in use" in exc.message:
                self.running = True
                self.add("store", OK, f"{self.cfg.data_dir} is in use: the node is running")
            elif "holds no store" in exc.message:
                self.add("store", OK, f"{self.cfg.data_dir} holds no store yet: the first start creates it")
            else:
                self.add("store", FAIL, exc.message, "restore the data dir from a backup (`carecoin node restore`)")
            return
        try:
            head = store.head()
            if head is not None and self.genesis is not None and \
                    store.get_block(0).hash != genesis_block(self.genesis)[0].hash:
                self.add("store", FAIL, f"{self.cfg.data_dir} holds another chain than {self.cfg.genesis_file.name}",
                         "point [node] data_dir or genesis_file at the right files")
            else:
                self.add("store", OK, f"stopped at height {head.height if head else 0}")
        finally:
            store.close()

    # ---- this machine -----------------------------------------------------------------------------------

    def check_ports(self) -> None:
        for name, addr in (("api port", self.cfg.api), ("peer port", self.cfg.peer)):
            family = socket.AF_INET6 if ":" in addr.host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((addr.host, addr.port))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE and self.running:
                        self.add(name, OK, f"{addr.host}:{addr.port} is held by this node (running)")
                    elif exc.errno == errno.EADDRINUSE:
                        self.add(name, FAIL, f"{addr.host}:{addr.port} is in use by another process",
                                 f"stop it (ss -ltnp 'sport = :{addr.port}') or change the port in node.toml")
                    else:
                        self.add(name, FAIL, f"cannot bind {addr.host}:{addr.port}: {exc.strerror}",
                                 "the host must be an address of this machine")
                    continue
            self.add(name, OK, f"{addr.host}:{addr.port} is free to bind")

    def check_disk(self) -> None:
        where = self.cfg.data_dir if self.cfg.data_dir.exists() else self.cfg.data_dir.parent
        try:
            free = shutil.disk_usage(where).free
            probe = where / f".doctor-{os.getpid()}"
            with probe.open("wb") as fh:
                fh.write(b"carecoin doctor")
                fh.flush()
                os.fsync(fh.fileno())
            probe.unlink()
        except OSError as exc:
            self.add("disk", FAIL, f"cannot write in {where}: {exc.strerror}",
                     f"make {where} writable by the node's user")
            return
        text = f"{free / 2**30:.1f} GiB free on {where}'s file system"
        if free < DISK_FAIL_BYTES:
            self.add("disk", FAIL, text, "free space: LevelDB stops writing on a full disk")
        elif free < DISK_WARN_BYTES:
            self.add("disk", WARN, text, "free space soon")
        else:
            self.add("disk", OK, text + "; writable")

    # ---- the network ------------------------------------------------------------------------------------

    def check_peers(self) -> None:
        try:
            tls = load_peer_tls(read_pinned_ca(self.genesis.extra), self.cfg.peer_tls, self.cfg.path.name)
        except NodeError as exc:
            self.add("peers", FAIL, exc.message, "fix the peer TLS files first")
            return
        reachable = 0
        for peer in self.cfg.peers:
            parts = urlsplit(peer.url)
            try:
                cert, doc, rtt_ms, mid_ms = probe_peer(parts.hostname, parts.port,
                                                       tls.client if tls is not None else None)
            except ssl.SSLError as exc:
                self.add(f"peer {peer.name}", FAIL, f"{parts.hostname}:{parts.port} refused the TLS handshake: "
                                                    f"{getattr(exc, 'verify_message', None) or exc.reason}",
                         "both sides need certificates of the CA genesis pins")
                continue
            except (OSError, ValueError) as exc:
                self.add(f"peer {peer.name}", WARN, f"{parts.hostname}:{parts.port} unreachable: {exc}",
                         "is that node running? is a firewall in the way?")
                continue
            if tls is not None and read_node_key(cert) != peer.public_key:
                named = read_node_key(cert)
                self.add(f"peer {peer.name}", FAIL, f"{parts.hostname}:{parts.port} presents a certificate of key "
                                                    f"{named.hex()[:16] + '…' if named else 'none'}; expected "
                                                    f"{peer.public_key.hex()[:16]}…",
                         "the [[peers]] url or public_key is wrong")
                continue
            reachable += 1
            self.add(f"peer {peer.name}", OK, f"{parts.hostname}:{parts.port} answers"
                                              f"{' (mutual TLS, key checked)' if tls else ''} in {rtt_ms:.0f} ms")
            self._check_clock(peer.name, doc, mid_ms, rtt_ms)
        validators = len(self.genesis.validators)
        need = quorum(validators) - 1
        level = OK if reachable >= need else FAIL
        self.add("peers", level, f"{reachable} of {len(self.cfg.peers)} peers reachable; a quorum of "
                                 f"{validators} validators needs {need} besides this node",
                 "" if level == OK else "start the other nodes or fix the network between them")

    def _check_clock(self, name: str, doc: dict | None, mid_ms: float, rtt_ms: float) -> None:
        if not isinstance(doc, dict) or not isinstance(doc.get("time_ms"), int):
            self.add(f"clock vs {name}", WARN, "the peer's /livez gives no time_ms (an older node?)",
                     "upgrade that node to compare clocks")
            return
        skew = doc["time_ms"] - mid_ms
        text = f"{name}'s clock is {skew:+.0f} ms from ours (± {rtt_ms / 2:.0f} ms)"
        limit = self.cfg.consensus.max_future_ms
        if abs(skew) - rtt_ms / 2 > limit:
            self.add(f"clock vs {name}", FAIL, text + f"; blocks more than {limit} ms ahead are refused",
                     "run NTP (chrony/systemd-timesyncd) on both machines")
        elif abs(skew) - rtt_ms / 2 > SKEW_WARN_MS:
            self.add(f"clock vs {name}", WARN, text, "check NTP on both machines")
        else:
            self.add(f"clock vs {name}", OK, text)


def probe_peer(host: str, port: int, context: ssl.SSLContext | None) -> tuple[dict | None, dict | None, float, float]:
    """Connect (TLS when ``context``), GET /livez; return (peer certificate, JSON body or None, round trip ms,
    local wall-clock midpoint ms)."""
    with socket.create_connection((host, port), timeout=PEER_TIMEOUT_S) as raw:
        sock = context.wrap_socket(raw) if context is not None else raw
        cert = sock.getpeercert() if context is not None else None
        t0 = time.time()
        sock.sendall(f"GET /livez HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while sum(map(len, chunks)) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
        t1 = time.time()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    try:
        doc = json.loads(body) if head.split(b" ")[1:2] == [b"200"] else None
    except ValueError:
        doc = None
    return cert, doc, (t1 - t0) * 1000, (t0 + t1) * 500


def print_checks(results: list[Check]) -> None:
    colour = {OK: "green", WARN: "yellow", FAIL: "red"}
    for c in results:
        label = click.style(f"{c.level.upper():<5}", fg=colour[c.level], bold=c.level != OK)
        click.echo(f"{label} {c.name:<18} {c.message}")
        if c.fix:
            click.echo(f"{'':<24} fix: {c.fix}")
    counts = {lvl: sum(c.level == lvl for c in results) for lvl in (OK, WARN, FAIL)}
    click.echo(f"{counts[OK]} ok, {counts[WARN]} warnings, {counts[FAIL]} failed")


@click.command("doctor")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The node's node.toml.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(config_path: str, as_json: bool) -> None:
    """Check a node's config, keys, certificates, ports, disk, peers and clock; say how to fix each problem.
    Exit status: 0 all ok (or warnings only), 1 when a check failed.

    \b
    Example:
      carecoin doctor --config net/branch-1/node.toml
    """
    results = Doctor(config_path).run()
    if as_json:
        click.echo(json.dumps({"ok": all(c.level != FAIL for c in results),
                               "checks": [asdict(c) for c in results]}, indent=2))
    else:
        print_checks(results)
    if any(c.level == FAIL for c in results):
        sys.exit(1)
