"""Mutual TLS: the certificates `network init` makes, the CA pin in genesis, and the TLS contexts' refusals."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import stat

import pytest
from aiohttp import web

from cli.network import init_network
from ledger import chain
from ledger.genesis import load_genesis
from ledger.keys import KeyPair
from node.config import TlsFiles, load_config
from node.errors import ConfigError, PeerError
from node.peers import Backoff, PeerAddress, PeerNetwork
from node.tls import (RefusalLog, build_peer_tls, check_peer_identity, load_peer_tls, read_node_key,
                      read_pinned_ca)
from node.tls_certs import compute_fingerprint, make_ca, make_peer_cert, read_node_key_of_pem

pytestmark = [pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return init_network(tmp_path_factory.mktemp("tls") / "net", 4, base_port=32000, chain_id="tls-test")


def _files(tmp_path, name: str, key_pem: bytes, cert_pem: bytes) -> TlsFiles:
    (tmp_path / f"{name}.key").write_bytes(key_pem)
    (tmp_path / f"{name}.pem").write_bytes(cert_pem)
    return TlsFiles(tmp_path / f"{name}.pem", tmp_path / f"{name}.key")


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[BaseException | None, dict | None]:
    """A TLS handshake in memory; (the server's error or None, the client certificate the server saw)."""
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    cli = client.wrap_bio(c_in, c_out, server_side=False)
    server_error = None
    done = [False, False]
    for _ in range(20):
        for i, (obj, out, peer_in) in enumerate(((cli, c_out, s_in), (srv, s_out, c_in))):
            if done[i]:
                continue
            try:
                obj.do_handshake()
                done[i] = True
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except ssl.SSLError as exc:
                if obj is srv:
                    server_error = exc
                done[i] = True
            peer_in.write(out.read())
        if all(done):
            break
    if server_error is None:  # TLS 1.3: the server sees the client certificate after the client's last flight
        try:
            srv.read(1)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            server_error = exc
    return server_error, (srv.getpeercert() if server_error is None else None)


def test_init_pins_the_network_ca_in_genesis_and_keeps_its_key_private(net):
    genesis = load_genesis(net.genesis_path)
    ca_pem = (net.dir / "company" / "tls-ca.pem").read_bytes()
    assert read_pinned_ca(genesis.extra) == ca_pem.decode()
    assert genesis.extra["tls"]["ca_sha256"] == compute_fingerprint(ca_pem)
    for path in [net.dir / "company" / "tls-ca.key"] + [net.dir / b.name / "tls" / "peer.key" for b in net.branches]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_ca_pin_does_not_change_the_chain_id_or_the_genesis_block(net):
    genesis = load_genesis(net.genesis_path)
    doc = json.loads(net.genesis_path.read_text())
    del doc["tls"]
    plain = net.dir / "plain-genesis.json"
    plain.write_text(json.dumps(doc))
    without = load_genesis(plain)
    assert without.chain_id == genesis.chain_id
    assert chain.genesis_block(without)[0].hash == chain.genesis_block(genesis)[0].hash


def test_each_branch_certificate_names_its_node_key_and_chains_to_the_pinned_ca(net):
    genesis = load_genesis(net.genesis_path)
    ca_pem = read_pinned_ca(genesis.extra)
    for b in net.branches:
        cfg = load_config(b.config_path)
        assert read_node_key_of_pem(cfg.peer_tls.cert_file.read_bytes()) == b.node_key
        assert all(p.url.startswith("wss://") for p in cfg.peers)
    one, two = (load_config(b.config_path).peer_tls for b in net.branches[:2])
    server = build_peer_tls(ca_pem, one.cert_file, one.key_file).server
    client = build_peer_tls(ca_pem, two.cert_file, two.key_file).client
    error, seen = _handshake(server, client)
    assert error is None
    assert read_node_key(seen) == net.branches[1].node_key


def test_an_outsider_with_a_self_made_certificate_is_refused_in_the_handshake_and_reported(net, tmp_path):
    genesis = load_genesis(net.genesis_path)
    own = load_config(net.branches[0].config_path).peer_tls
    refused: list[tuple[str, str]] = []
    server = build_peer_tls(read_pinned_ca(genesis.extra), own.cert_file, own.key_file,
                            lambda d, r: refused.append((d, r))).server
    rogue_ca = make_ca("rogue")
    rogue = _files(tmp_path, "rogue", *make_peer_cert(*rogue_ca, "branch-2", net.branches[1].node_key))
    outsider = build_peer_tls(rogue_ca[1].decode(), rogue.cert_file, rogue.key_file).client
    error, _ = _handshake(server, outsider)
    assert error is not None
    assert refused and refused[0][0] == "inbound"

    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.check_hostname, anonymous.verify_mode = False, ssl.CERT_NONE
    refused.clear()
    error, _ = _handshake(server, anonymous)
    assert error is not None and refused, "a client without a certificate must be refused"


def test_a_node_of_a_tls_network_without_its_certificate_does_not_start(net):
    ca = read_pinned_ca(load_genesis(net.genesis_path).extra)
    with pytest.raises(ConfigError, match="tls_cert_file and tls_key_file are required"):
        load_peer_tls(ca, None, "node.toml")
    assert load_peer_tls(None, None, "node.toml") is None  # a network from before the pin stays plain


def test_a_certificate_naming_another_key_than_the_proven_one_is_refused():
    key, other = KeyPair.generate().public_key, KeyPair.generate().public_key
    cert = {"subjectAltName": (("URI", "carecoin:node:" + other.hex()),)}
    with pytest.raises(PeerError) as err:
        check_peer_identity(cert, key, tls_on=True)
    assert err.value.reason == "tls_identity"
    check_peer_identity({"subjectAltName": (("URI", "carecoin:node:" + key.hex()),)}, key, tls_on=True)
    with pytest.raises(PeerError):
        check_peer_identity(None, key, tls_on=True)


def test_refusals_are_logged_at_most_once_per_interval(caplog):
    now = [0.0]
    log = RefusalLog(every_s=10.0, clock=lambda: now[0])
    assert log.note("inbound", "self-signed") is True
    assert [log.note("inbound", "x") for _ in range(50)] == [False] * 50
    now[0] = 10.5
    assert log.note("inbound", "again") is True
    assert "50 more refused" in caplog.text


# ---- in process: a CA-signed certificate of one validator cannot carry another validator's key ------------

async def _listen(net_obj: PeerNetwork, tls) -> tuple[web.AppRunner, int]:
    app = web.Application()
    net_obj.add_routes(app)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    site = web.SockSite(runner, sock, ssl_context=tls.server)
    await site.start()
    return runner, sock.getsockname()[1]


@pytest.mark.asyncio
async def test_validators_link_over_mutual_tls_and_a_stolen_certificate_is_refused(net, tmp_path):
    genesis = load_genesis(net.genesis_path)
    ca_pem = read_pinned_ca(genesis.extra)
    ca = ((net.dir / "company" / "tls-ca.key").read_bytes(), (net.dir / "company" / "tls-ca.pem").read_bytes())
    a, b, c = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    names = {a.public_key: "a", b.public_key: "b", c.public_key: "c"}

    def tls_for(kp: KeyPair, cert_key: bytes):
        files = _files(tmp_path, kp.public_key.hex()[:8], *make_peer_cert(*ca, "x", cert_key))
        return build_peer_tls(ca_pem, files.cert_file, files.key_file)

    opts = dict(backoff=Backoff(initial_s=0.05, max_s=0.3), handshake_timeout_s=2.0, close_timeout_s=0.5)

    async def handler(*_):
        return None

    tls_a = tls_for(a, a.public_key)
    net_a = PeerNetwork("tls-test", a, names, [], handler, tls=tls_a, **opts)
    runner, port = await _listen(net_a, tls_a)
    await net_a.start()
    url = f"wss://127.0.0.1:{port}/peer"
    honest = PeerNetwork("tls-test", b, names, [PeerAddress("a", a.public_key, url)], handler,
                         tls=tls_for(b, b.public_key), **opts)
    # c holds a CA-signed certificate that names b's key: the TLS layer accepts it, the binding does not.
    thief = PeerNetwork("tls-test", c, names, [PeerAddress("a", a.public_key, url)], handler,
                        tls=tls_for(c, b.public_key), **opts)
    try:
        await honest.start()
        assert await honest.wait_connected(1, 10.0)
        await thief.start()
        for _ in range(100):
            if net_a.get_counters().get("refused_tls_identity"):
                break
            await asyncio.sleep(0.05)
        assert net_a.get_counters().get("refused_tls_identity", 0) >= 1
        assert c.public_key not in net_a.connected()
        assert b.public_key in net_a.connected()
    finally:
        await thief.stop()
        await honest.stop()
        await net_a.stop()
        await runner.cleanup()
