"""Real node processes on 127.0.0.1: a network fixture that inits, starts, kills and restarts nodes.

Every wait is bounded; teardown always kills whatever is still running (SIGKILL after a short SIGTERM).
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import tomli_w

from cli.network import init_network
from cli.ports import free_port_base
from ledger.genesis import load_genesis
from ledger.keys import load_key
from tests.node.signing import read_headers

ROOT = Path(__file__).resolve().parents[2]
FAST_CONSENSUS = {"base_timeout_ms": 500, "max_timeout_ms": 2000, "block_interval_ms": 100, "max_future_ms": 2000}


def http_json(url: str, body: dict | None = None, timeout_s: float = 3.0,
              headers: dict | None = None, context: ssl.SSLContext | None = None) -> tuple[int, dict]:
    """GET (or POST ``body``) with extra ``headers`` and return (status, JSON); connection failures give (0, {});
    ``context`` for https:// (the network CA)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s, context=context) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, {}
    except (urllib.error.URLError, OSError, ValueError):
        return 0, {}


class Network:
    """N node processes from one `network init` directory."""

    def __init__(self, root: Path, count: int, api_tls: bool = False, hosts: list[str] | None = None) -> None:
        self.root = root
        self.count = count
        base = free_port_base(2 * count, tuple(dict.fromkeys(hosts or ['127.0.0.1'])))
        self.summary = init_network(root / "net", count, base_port=base, api_tls=api_tls, hosts=hosts)
        # https:// APIs (network init --tls) are reached trusting the network's CA
        self.ssl = ssl.create_default_context(cafile=str(self.summary.ca_file)) if api_tls else None
        self.dir = self.summary.dir
        self.names = [b.name for b in self.summary.branches]
        for name in self.names:
            path = self.dir / name / "node.toml"
            doc = tomllib.loads(path.read_text())
            doc["consensus"].update(FAST_CONSENSUS)
            path.write_text(tomli_w.dumps(doc))
        self.apis = [b.api_url for b in self.summary.branches]
        self.genesis = load_genesis(self.summary.genesis_path)
        self.chain_id = self.genesis.chain_id
        self._auditor = self.auditor
        self.procs: list[subprocess.Popen | None] = [None] * count
        self.logs: list[Path] = [root / f"{name}.log" for name in self.names]

    def key(self, i: int, role: str):
        return load_key(self.dir / self.names[i] / "keys" / f"{role}.key")

    @property
    def auditor(self):
        """The company auditor's key (`network init` writes company/auditor.key): reads every account and block."""
        return load_key(self.dir / "company" / "auditor.key")

    def start(self, i: int) -> None:
        if self.procs[i] is not None and self.procs[i].poll() is None:
            raise RuntimeError(f"node {i} is already running")
        log = self.logs[i].open("ab")
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "cli.node", "start", "--config", str(self.dir / self.names[i] / "node.toml")],
            cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()

    def start_all(self, timeout_s: float = 30.0) -> None:
        for i in range(self.count):
            self.start(i)
        for i in range(self.count):
            self.wait_ready(i, timeout_s)

    def wait_ready(self, i: int, timeout_s: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            proc = self.procs[i]
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"node {i} exited with {proc.returncode}:\n{self.tail(i)}")
            code, doc = http_json(self.apis[i] + "/v1/status", timeout_s=1.0, context=self.ssl)
            if code == 200:
                return doc
            time.sleep(0.1)
        raise AssertionError(f"node {i} not ready after {timeout_s} s:\n{self.tail(i)}")

    def kill(self, i: int) -> None:
        """SIGKILL: no cleanup at all, like a power cut."""
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        self.procs[i] = None

    def stop(self, i: int, timeout_s: float = 10.0) -> int:
        """SIGTERM and wait for a clean exit; return the exit code."""
        proc = self.procs[i]
        if proc is None:
            return 0
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError(f"node {i} did not stop within {timeout_s} s:\n{self.tail(i)}")
        self.procs[i] = None
        return code

    def close(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for i, proc in enumerate(self.procs):
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            self.procs[i] = None

    def tail(self, i: int, lines: int = 40) -> str:
        try:
            return "\n".join(self.logs[i].read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # ---- API helpers ----

    def get(self, i: int, path: str, key=None) -> tuple[int, dict]:
        """GET ``path`` from node ``i``, signed by ``key`` (default: the company auditor; /v1/status unsigned)."""
        if path == "/v1/status":
            return http_json(self.apis[i] + path, context=self.ssl)
        headers = read_headers(key or self._auditor, self.chain_id, path)
        return http_json(self.apis[i] + path, headers=headers, context=self.ssl)

    def height(self, i: int) -> int:
        code, doc = self.get(i, "/v1/status")
        return doc["height"] if code == 200 else -1

    def block_hash(self, i: int, height: int) -> str | None:
        code, doc = self.get(i, f"/v1/blocks/{height}")
        return doc["block_hash"] if code == 200 else None

    def submit(self, i: int, tx) -> dict:
        code, doc = http_json(self.apis[i] + "/v1/tx", {"tx": tx.raw.hex()}, context=self.ssl)
        assert code == 202, (code, doc)
        return doc

    def wait_until(self, what: str, predicate, timeout_s: float, interval_s: float = 0.1):
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                logs = "\n".join(f"--- {self.names[i]}\n{self.tail(i, 15)}" for i in range(self.count))
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{logs}")
            time.sleep(interval_s)

    def wait_committed(self, i: int, tx_hash: bytes, timeout_s: float = 20.0) -> dict:
        def check():
            code, doc = self.get(i, f"/v1/tx/{tx_hash.hex()}")
            return doc if code == 200 and doc.get("status") == "committed" else None
        return self.wait_until(f"tx {tx_hash.hex()[:16]} committed on node {i}", check, timeout_s)

    def wait_height(self, nodes, height: int, timeout_s: float = 20.0) -> None:
        self.wait_until(f"nodes {list(nodes)} at height {height}",
                        lambda: all(self.height(i) >= height for i in nodes), timeout_s)

    def assert_same_hashes(self, nodes, upto: int) -> None:
        for h in range(upto + 1):
            hashes = {i: self.block_hash(i, h) for i in nodes}
            assert len(set(hashes.values())) == 1 and None not in hashes.values(), (h, hashes)


@pytest.fixture
def network_factory(tmp_path):
    """Make networks of N nodes (not started); every process is killed at teardown."""
    made: list[Network] = []

    def make(count: int = 4) -> Network:
        net = Network(tmp_path / f"n{len(made)}", count)
        made.append(net)
        return net

    yield make
    for net in made:
        net.close()


@pytest.fixture
def network4(network_factory) -> Network:
    """A running 4-node network."""
    net = network_factory(4)
    net.start_all()
    return net
