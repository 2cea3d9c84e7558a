"""Real node processes on 127.0.0.1 whose peer links all run through a ``ProxyMesh``.

``Cluster`` writes a network with ``cli.network.init_network`` (fast consensus timings), starts the proxy
mesh, rewrites every node.toml so that node ``i``'s URL for peer ``j`` is the ``i -> j`` proxy, and then
starts, kills (-9), stops (SIGTERM), pauses (SIGSTOP/SIGCONT) and restarts ``python -m cli.node start``.
Every process it started is killed in ``close`` and, should the harness itself die, by an ``atexit`` hook.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import aiohttp
import tomli_w

from cli.network import init_network
from cli.ports import free_port_base
from ledger.genesis import load_genesis
from ledger.keys import KeyPair, load_key
from tests.faults.proxy import ProxyMesh
from tests.node.signing import read_headers

ROOT = Path(__file__).resolve().parents[2]
FAST_CONSENSUS = {"base_timeout_ms": 500, "max_timeout_ms": 2000, "block_interval_ms": 100,
                  "max_future_ms": 2000, "empty_block_interval_ms": 500}
HTTP_TIMEOUT_S = 3.0

_LIVE: set[subprocess.Popen] = set()


def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            except OSError:
                pass


atexit.register(_kill_leftovers)


class Cluster:
    """n validator processes, a proxy mesh between them, and an HTTP session to their APIs."""

    def __init__(self, root: Path, n: int, rng: random.Random, env: dict[str, str] | None = None) -> None:
        self.root, self.n, self.rng = root, n, rng
        self.extra_env = dict(env or {})
        # Plain ws:// peer links: the proxy reads and faults websocket frames (peer mTLS is tested in tests/e2e).
        base = free_port_base(2 * n, rng=random.Random(rng.random() + os.getpid()))
        self.summary = init_network(root / "net", n, base_port=base, peer_tls=False)
        self.dir = self.summary.dir
        self.names = [b.name for b in self.summary.branches]
        self.apis = [f"http://{b.api.host}:{b.api.port}" for b in self.summary.branches]
        self.peer_ports = [b.peer.port for b in self.summary.branches]
        self.genesis = load_genesis(self.summary.genesis_path)
        self.chain_id = self.genesis.chain_id
        self.auditor = load_key(self.dir / "company" / "auditor.key")
        self.starts: dict[int, int] = {}  # node -> process starts so far
        self.validator_keys = [v.public_key for v in self.genesis.validators]
        self.procs: list[subprocess.Popen | None] = [None] * n
        self.paused: set[int] = set()
        self.logs = [root / f"{name}.log" for name in self.names]
        self.mesh = ProxyMesh(n, self.peer_ports, random.Random(rng.random()))
        self.session: aiohttp.ClientSession | None = None

    # ---- lifecycle ----

    async def open(self) -> None:
        await self.mesh.start()
        for i, name in enumerate(self.names):
            path = self.dir / name / "node.toml"
            doc = tomllib.loads(path.read_text())
            doc["consensus"].update(FAST_CONSENSUS)
            index = {n: j for j, n in enumerate(self.names)}
            for peer in doc["peers"]:
                peer["url"] = f"ws://127.0.0.1:{self.mesh.port(i, index[peer['name']])}/peer"
            path.write_text(tomli_w.dumps(doc))
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S))

    async def close(self) -> None:
        for i in range(self.n):
            self.kill(i)
        await self.mesh.close()
        if self.session is not None:
            await self.session.close()
            self.session = None

    def key(self, i: int, role: str) -> KeyPair:
        return load_key(self.dir / self.names[i] / "keys" / f"{role}.key")

    def data_dir(self, i: int) -> Path:
        return self.dir / self.names[i] / "data"

    def running(self, i: int) -> bool:
        proc = self.procs[i]
        return proc is not None and proc.poll() is None

    def start(self, i: int) -> None:
        if self.running(i):
            return
        log = self.logs[i].open("ab")
        log.write(f"\n=== start at {time.time():.3f}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.node", "start", "--config", str(self.dir / self.names[i] / "node.toml")],
            cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.extra_env})
        log.close()
        self.procs[i] = proc
        self.starts[i] = self.starts.get(i, 0) + 1  # the checks re-verify everything on a restarted node
        _LIVE.add(proc)
        self.paused.discard(i)

    def kill(self, i: int) -> None:
        """SIGKILL: no cleanup at all, like a power cut (a paused process is killed too)."""
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if proc is not None:
            _LIVE.discard(proc)
        self.procs[i] = None
        self.paused.discard(i)

    async def stop(self, i: int, timeout_s: float = 10.0) -> int | None:
        """SIGTERM and wait (bounded) for a clean exit; SIGKILL after the timeout."""
        proc = self.procs[i]
        if proc is None:
            return None
        if i in self.paused:
            self.resume(i)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        code = proc.poll()
        self.kill(i)
        return code

    def pause(self, i: int) -> None:
        if self.running(i):
            self.procs[i].send_signal(signal.SIGSTOP)
            self.paused.add(i)

    def resume(self, i: int) -> None:
        if self.running(i):
            self.procs[i].send_signal(signal.SIGCONT)
        self.paused.discard(i)

    def rss_mb(self, i: int) -> float | None:
        """Resident memory of node ``i``'s process in MB (Linux ``/proc``), None when it is not running."""
        proc = self.procs[i]
        if proc is None or proc.poll() is not None:
            return None
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except (OSError, ValueError, IndexError):
            return None
        return None

    def exit_code(self, i: int) -> int | None:
        proc = self.procs[i]
        return None if proc is None else proc.poll()

    def tail(self, i: int, lines: int = 20) -> str:
        try:
            return "\n".join(self.logs[i].read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def snapshot_data(self, i: int, dest: Path) -> None:
        """Copy a stopped node's data dir (used to put it back after a refused start)."""
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(self.data_dir(i), dest)

    def restore_data(self, i: int, src: Path) -> None:
        shutil.rmtree(self.data_dir(i), ignore_errors=True)
        shutil.copytree(src, self.data_dir(i))

    # ---- HTTP ----

    async def get(self, i: int, path: str) -> tuple[int, dict]:
        """GET a node's API, signed by the company auditor (reads every account, tx and block); (0, {}) when it
        does not answer."""
        assert self.session is not None
        headers = {} if path == "/v1/status" else read_headers(self.auditor, self.chain_id, path)
        try:
            async with self.session.get(self.apis[i] + path, headers=headers) as resp:
                return resp.status, await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError):
            return 0, {}

    async def post(self, i: int, path: str, body: dict) -> tuple[int, dict]:
        assert self.session is not None
        try:
            async with self.session.post(self.apis[i] + path, json=body) as resp:
                return resp.status, await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError):
            return 0, {}

    async def height(self, i: int) -> int:
        code, doc = await self.get(i, "/v1/status")
        return doc.get("height", -1) if code == 200 else -1

    async def wait_ready(self, i: int, timeout_s: float = 30.0) -> bool:
        """True once node ``i`` answers /v1/status; False if it exited or the time ran out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running(i):
                return False
            code, _ = await self.get(i, "/v1/status")
            if code == 200:
                return True
            await asyncio.sleep(0.1)
        return False

    async def wait_exit(self, i: int, timeout_s: float) -> int | None:
        """The exit code if node ``i`` exits within ``timeout_s``, else None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.exit_code(i)
            if code is not None:
                return code
            await asyncio.sleep(0.05)
        return None
