"""Encryption in transit on real node processes: every validator link and catch-up request crosses a capturing
relay and shows no plaintext while blocks commit; outsiders are refused at the TLS layer and counted; the
client API serves HTTPS (`network init --tls`) and the CLI trusts the network CA."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import threading
import time
import tomllib
import urllib.request

import pytest
import tomli_w
from click.testing import CliRunner

from cli.main import main
from ledger import codec
from ledger.keys import KeyPair
from ledger.tx import make_tx
from node.tls import build_peer_tls
from node.tls_certs import make_ca, make_peer_cert
from tests.e2e.conftest import Network

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


class CapturingRelay:
    """One asyncio TCP relay per directed peer link (its own thread and loop); records every byte both ways."""

    def __init__(self) -> None:
        self.captured = bytearray()
        self.connections = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.base_events.Server] = []
        self._thread.start()

    def add(self, target_port: int) -> int:
        """Listen on a free loopback port that forwards to ``target_port``; return the port."""
        return asyncio.run_coroutine_threadsafe(self._serve(target_port), self._loop).result(10)

    async def _serve(self, target_port: int) -> int:
        async def on_client(reader, writer):
            self.connections += 1
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", target_port), 3)
            except (OSError, asyncio.TimeoutError):
                writer.close()
                return
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        self._servers.append(server)
        return server.sockets[0].getsockname()[1]

    async def _pipe(self, reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                with self._lock:
                    self.captured += data
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def snapshot(self) -> bytes:
        with self._lock:
            return bytes(self.captured)

    def close(self) -> None:
        async def stop():
            for server in self._servers:
                server.close()
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture(scope="module")
def relayed(tmp_path_factory):
    """4 validators with HTTPS APIs whose every [[peers]] URL points at a capturing relay."""
    net = Network(tmp_path_factory.mktemp("tls-net"), 4, api_tls=True)
    relay = CapturingRelay()
    peer_ports = {}
    for name in net.names:
        doc = tomllib.loads((net.dir / name / "node.toml").read_text())
        peer_ports[name] = doc["peer"]["port"]
    for name in net.names:
        path = net.dir / name / "node.toml"
        doc = tomllib.loads(path.read_text())
        for peer in doc["peers"]:
            peer["url"] = f"wss://127.0.0.1:{relay.add(peer_ports[peer['name']])}/peer"
        path.write_text(tomli_w.dumps(doc))
    try:
        net.start_all()
        yield net, relay, peer_ports
    finally:
        net.close()
        relay.close()


def test_blocks_commit_through_the_relay_and_nothing_crosses_it_in_clear(relayed):
    net, relay, _ = relayed
    net.wait_height(range(4), 2, timeout_s=30)
    alice = KeyPair.generate()
    tx = make_tx(net.chain_id, "mint", net.key(0, "issuer"), 1, [alice.public_key, 321])
    net.submit(0, tx)
    net.wait_committed(1, tx.tx_hash)
    # catch-up crosses the relay too: node 3 misses blocks, then fetches them from its peers' listeners
    net.stop(3)
    top = max(net.height(i) for i in range(3))
    net.wait_height(range(3), top + 3, timeout_s=30)
    net.start(3)
    net.wait_height([3], top + 3, timeout_s=30)
    net.assert_same_hashes(range(4), top + 3)

    seen = relay.snapshot()
    assert relay.connections >= 6 and len(seen) > 20_000, (relay.connections, len(seen))
    secrets = {
        "chain id": net.chain_id.encode(),
        "hash tag": b"carecoin/v1",
        "the tx's envelope": tx.raw,
        "the minted-to account": alice.public_key,
        "a consensus frame": codec.encode("consensus"),
        "a handshake hello": codec.encode("hello"),
        "catch-up HTTP": b"/v1/blocks",
        "websocket upgrade": b"Upgrade",
        "a branch name": net.names[1].encode(),
    }
    leaked = [what for what, needle in secrets.items() if needle in seen]
    assert not leaked, f"in clear on the peer links: {leaked}"


def _metric(net: Network, i: int, name: str) -> float:
    with urllib.request.urlopen(net.apis[i] + "/metrics", timeout=3, context=net.ssl) as resp:
        text = resp.read().decode()
    return sum(float(m) for m in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.M))


def test_an_outsider_with_a_self_made_certificate_or_plain_tcp_is_refused_and_counted(relayed, tmp_path):
    net, _, peer_ports = relayed
    port = peer_ports[net.names[0]]
    before = _metric(net, 0, "carecoin_peer_tls_refused_total")

    rogue_ca = make_ca("rogue")
    key_pem, cert_pem = make_peer_cert(*rogue_ca, "branch-2", net.summary.branches[1].node_key)
    (tmp_path / "rogue.key").write_bytes(key_pem)
    (tmp_path / "rogue.pem").write_bytes(cert_pem)
    outsider = build_peer_tls(rogue_ca[1].decode(), tmp_path / "rogue.pem", tmp_path / "rogue.key").client
    outsider.verify_mode = ssl.CERT_NONE  # the outsider does not even check the node: the node checks it
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        try:
            with outsider.wrap_socket(raw) as tls:
                tls.sendall(b"GET /v1/blocks/latest HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = tls.recv(4096)
        except (ssl.SSLError, ConnectionError, socket.timeout):
            pass
    assert b"HTTP/1.1" not in answer

    # plain TCP speaking HTTP / a ws:// upgrade gets no HTTP answer at all
    with socket.create_connection(("127.0.0.1", port), timeout=3) as plain:
        plain.sendall(b"GET /peer HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        try:
            plain_answer = plain.recv(4096)
        except (ConnectionError, socket.timeout):
            plain_answer = b""
    assert b"HTTP/1.1" not in plain_answer and b"101" not in plain_answer

    deadline = time.monotonic() + 10
    while _metric(net, 0, "carecoin_peer_tls_refused_total") < before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _metric(net, 0, "carecoin_peer_tls_refused_total") >= before + 2
    assert "peer TLS handshake refused (inbound)" in net.logs[0].read_text(errors="replace")
    assert net.get(0, "/v1/status")[1]["peers"] == 3  # the genuine links stay up


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)


def test_the_cli_speaks_https_trusting_the_network_ca_and_says_so_without_it(relayed):
    net, _, _ = relayed
    assert net.apis[0].startswith("https://")
    ca = str(net.summary.ca_file)

    out = run("status", "--node", net.apis[1], "--ca", ca, "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["chain_id"] == net.chain_id
    out = run("status", "--node", net.apis[1], "--json", env={"CARECOIN_CA": ca})
    assert out.exit_code == 0, out.output

    out = run("status", "--node", net.apis[1], "--json", env={"CARECOIN_CA": None})
    assert out.exit_code != 0
    assert "not trusted" in out.output and "--ca" in out.output

    # a tx with a key of the network directory: the CLI finds company/tls-ca.pem itself
    bob = KeyPair.generate()
    out = run("tx", "mint", "--node", net.apis[2], "--key", str(net.dir / net.names[2] / "keys" / "issuer.key"),
              "--to", bob.hex, "--amount", "5", "--wait", "--json", env={"CARECOIN_CA": None})
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["status"] == "committed"
