"""A client that opens more sockets than the node has file descriptors must not stop the node.

Before the listeners were capped (``node.conn_budget``), 200 idle TCP connections to the client API of a node
run with ``ulimit -n 128`` made its next WAL write fail with EMFILE: "stopping after a local fault: cannot write
the consensus WAL: [Errno 24] Too many open files" and the process exited. Real processes: one node (a quorum
of one), started with a low soft RLIMIT_NOFILE so the flood stays small.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time

import pytest

from ledger.tx import make_tx
from tests.e2e.conftest import ROOT, Network, http_json

SOFT_NOFILE = 400  # the node's cap is then min(400 - 256, 300) = 144 sockets
FLOOD = 600        # idle sockets the attacker holds: far more than the node has descriptors


def _low_nofile() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT_NOFILE, hard))


@pytest.fixture
def lone_node(tmp_path):
    net = Network(tmp_path, 1)
    log = net.logs[0].open("ab")
    net.procs[0] = subprocess.Popen(
        [sys.executable, "-m", "cli.node", "start", "--config", str(net.dir / net.names[0] / "node.toml")],
        cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_low_nofile)
    log.close()
    try:
        net.wait_ready(0)
        yield net
    finally:
        net.close()


def _open_idle(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=2.0))
        except OSError:
            break
    return socks


def test_idle_connection_flood_neither_stops_the_node_nor_loses_a_tx(lone_node):
    net = lone_node
    port = int(net.apis[0].rsplit(":", 1)[1])
    issuer = net.key(0, "issuer")
    before = net.height(0)
    socks = _open_idle(port, FLOOD)
    try:
        time.sleep(3.0)  # several empty-block intervals: the node writes its WAL and commits meanwhile
        proc = net.procs[0]
        assert proc is not None and proc.poll() is None, f"node exited under the flood:\n{net.tail(0)}"
        # over the cap a request gets a clear refusal naming the limit, not a hang or a reset
        code, doc = http_json(net.apis[0] + "/v1/status", timeout_s=3.0)
        assert code == 503, (code, doc)
        assert doc["error"]["code"] == "too_many_connections" and "limit" in doc["error"]["message"]
    finally:
        for s in socks:
            s.close()
    assert len(socks) == FLOOD  # every connect was accepted (then refused at once past the cap)
    # the slots come back: the node serves, has kept committing, and commits a tx
    net.wait_until("status answers again", lambda: http_json(net.apis[0] + "/v1/status")[0] == 200, 10.0)
    assert net.height(0) > before
    tx = make_tx(net.chain_id, "mint", issuer, 1, [net.auditor.public_key, 5])
    assert net.submit(0, tx)["status"] == "pending"
    net.wait_committed(0, tx.tx_hash)
    assert "Too many open files" not in net.tail(0, 400)
