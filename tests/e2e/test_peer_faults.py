"""A real node's peer port under hostile peers: unknown keys are refused; a bad frame closes only its own link.

The hostile side is this test process acting as a peer through ``node.peers.PeerNetwork`` (``send_raw`` lets it
write bytes that are not a valid frame), against real node processes on 127.0.0.1. The links are mutual TLS, so the
hostile peer holds a certificate of the network CA (an insider's: outsiders are refused earlier, tests/e2e/test_tls.py).
"""

from __future__ import annotations

import asyncio

import pytest

from ledger.keys import KeyPair, load_key
from node.config import compute_peer_url, load_config
from node.peers import PeerAddress, PeerNetwork
from node.tls import PeerTls, build_peer_tls, read_pinned_ca
from node.tls_certs import make_peer_cert
from tests.e2e.conftest import Network


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    network = Network(tmp_path_factory.mktemp("peer-faults"), 4)
    try:
        for i in range(3):  # the fourth branch stays down: the test borrows its genuine key
            network.start(i)
        for i in range(3):
            network.wait_ready(i)
        network.wait_until("three nodes linked", lambda: all(network.get(i, "/v1/status")[1].get("peers", 0) >= 2
                                                             for i in range(3)), 20)
        yield network
    finally:
        network.close()


def target(net: Network) -> PeerAddress:
    branch = net.summary.branches[0]
    return PeerAddress(branch.name, branch.node_key, compute_peer_url(branch.peer.host, branch.peer.port))


async def _noop(peer_key: bytes, channel: str, payload: bytes) -> None:
    return None


def validators(net: Network) -> dict[bytes, str]:
    return {v.public_key: v.name for v in net.genesis.validators}


def peer_tls(net: Network, node_key: bytes, tmp_path) -> PeerTls:
    """A certificate of the network CA for ``node_key`` (the CA key is in the network's company dir)."""
    ca = ((net.dir / "company" / "tls-ca.key").read_bytes(), (net.dir / "company" / "tls-ca.pem").read_bytes())
    key_pem, cert_pem = make_peer_cert(*ca, "hostile", node_key)
    (tmp_path / "peer.key").write_bytes(key_pem)
    (tmp_path / "peer.pem").write_bytes(cert_pem)
    return build_peer_tls(read_pinned_ca(net.genesis.extra), tmp_path / "peer.pem", tmp_path / "peer.key")


def test_a_key_outside_the_validator_set_is_refused_by_a_real_node(net, tmp_path):
    key = KeyPair.generate()
    tls = peer_tls(net, key.public_key, tmp_path)

    async def attempt() -> bool:
        stranger = PeerNetwork(net.chain_id, key, validators(net), [target(net)], _noop, tls=tls)
        await stranger.start()
        try:
            return await stranger.wait_connected(1, 3.0)
        finally:
            await stranger.stop()

    assert asyncio.run(attempt()) is False
    assert "peer link refused" in net.tail(0, 200)
    assert net.get(0, "/v1/status")[1]["healthy"] is True


@pytest.mark.parametrize("frame", ["oversized", "malformed"])
def test_a_bad_frame_closes_only_that_link_and_the_node_keeps_committing(net, frame, tmp_path):
    fourth = net.names[3]
    key = load_key(net.dir / fourth / "node.key")
    tls = peer_tls(net, key.public_key, tmp_path)
    limit = load_config(net.dir / net.names[0] / "node.toml").max_frame_bytes
    bad = b"\x00" * (limit + 1) if frame == "oversized" else b"\xc1 not msgpack"
    before = net.height(0)

    async def attack() -> tuple[bool, bool]:
        peer = PeerNetwork(net.chain_id, key, validators(net), [target(net)], _noop, max_frame_bytes=4 * limit,
                           tls=tls)
        await peer.start()
        try:
            if not await peer.wait_connected(1, 10.0):
                return False, False
            await peer.send_raw(net.summary.branches[0].node_key, bad)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10.0
            while peer.connected() and loop.time() < deadline:
                await asyncio.sleep(0.05)
            return True, not peer.connected()
        finally:
            await peer.stop()

    linked, dropped = asyncio.run(attack())
    assert linked, "a genuine validator key must be able to link"
    assert dropped, f"the node kept a link that sent a {frame} frame"
    status = net.get(0, "/v1/status")[1]
    assert status["healthy"] is True and status["peers"] >= 2, status  # the honest links stayed up
    net.wait_until("the chain keeps growing", lambda: net.height(0) > before, 15)
