"""Four branches on four hosts (127.0.0.2-127.0.0.5), as real processes: each listens only on its own address,
they reach each other there, commit the same blocks, and /readyz tells an orchestrator which are fit to serve."""

from __future__ import annotations

import socket

import pytest

from tests.e2e.conftest import Network, http_json

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]


def _connects(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


@pytest.fixture
def net(tmp_path):
    n = Network(tmp_path, 4, hosts=HOSTS)
    yield n
    n.close()


def test_branches_on_their_own_hosts_agree_and_report_ready_then_not_ready(net):
    net.start_all()
    net.wait_height(range(4), 3, timeout_s=30)
    net.assert_same_hashes(range(4), 3)
    for i, b in enumerate(net.summary.branches):
        assert b.api_url.startswith(f"http://{HOSTS[i]}:")
        assert _connects(HOSTS[i], b.api.port) and not _connects("127.0.0.1", b.api.port)
        assert _connects(HOSTS[i], b.peer.port) and not _connects("127.0.0.1", b.peer.port)
    net.wait_until("every node ready", lambda: all(
        http_json(net.apis[i] + "/readyz")[0] == 200 for i in range(4)), timeout_s=20)
    code, doc = http_json(net.apis[0] + "/readyz")
    assert doc["peers"] == 3 and doc["peers_needed"] == 2 and doc["reasons"] == []

    net.stop(2)
    net.stop(3)

    def not_ready():
        code, doc = http_json(net.apis[0] + "/readyz")
        return code == 503 and "1 peer links up; expected at least 2" in doc["error"]["message"]
    net.wait_until("node 0 not ready with 2 of 4 down", not_ready, timeout_s=20)
    code, doc = http_json(net.apis[0] + "/livez")
    assert code == 200 and doc["node"] == net.names[0]
