"""The peer handshake, its admission slots, and the post-handshake frame codec.

Theory of operation
-------------------
A link is usable only after a handshake in which each side proves it holds the genesis node key it claims,
over a fresh challenge from the other side:

    dialer   -> listener  ["hello", 1, chain_id, pk_D, c_D]
    listener -> dialer    ["hello", 1, chain_id, pk_L, c_L, sig_L]
    dialer   -> listener  ["auth", sig_D]
    listener -> dialer    ["ok"]

where ``sig_X = Ed25519_X(compute_auth_message(chain_id, c_other, c_X, pk_X, pk_other))`` and
``compute_auth_message = H("carecoin/v1/peer-auth", P([chain_id, verifier_challenge, signer_challenge,
signer_key, verifier_key]))``. A signature is bound to a challenge the verifier drew itself (no replay),
names signer and verifier in a fixed order (a signature cannot be reflected back at its author, and a
link to ourselves is refused) and carries the chain id (no cross-network reuse). The listener refuses a
key outside the validator set before signing anything; the dialer also checks that it reached the key it
meant to dial. Any refusal is a ``PeerError`` whose ``reason`` the caller counts.

Handshake slots. Before a listener has authenticated anyone, a socket costs the attacker nothing, so
pending inbound handshakes are bounded twice: at most ``per_address`` per remote IP and ``total`` in all
(``HandshakeSlots``), and each must finish within a deadline from the moment its request arrived or it is
closed. Silent sockets from one address therefore hold a few slots for a few seconds at most, and a genuine
validator dialing from its own address always finds a free one. (Sockets that never even send the HTTP
upgrade are closed by the listener's idle timeout: ``server_options``.)

After the handshake every message is a websocket binary frame holding canonical msgpack
``[channel: str, payload: bin]`` (``encode_frame`` / ``decode_frame``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from aiohttp import WSMsgType

from ledger import codec
from ledger.errors import DecodeError
from ledger.hashing import TAG_PEER_AUTH, H
from ledger.keys import KeyPair, verify
from node.errors import PeerError

PROTOCOL_VERSION = 1
CHALLENGE_LEN = 32
MAX_HANDSHAKE_BYTES = 1024
DEFAULT_HANDSHAKES_PER_ADDRESS = 4
DEFAULT_MAX_HANDSHAKES = 64


def compute_auth_message(chain_id: str, verifier_challenge: bytes, signer_challenge: bytes,
                         signer_key: bytes, verifier_key: bytes) -> bytes:
    """The 32 bytes a peer signs to prove its key to ``verifier_key`` (see the module docstring)."""
    return H(TAG_PEER_AUTH, codec.encode([chain_id, verifier_challenge, signer_challenge, signer_key,
                                          verifier_key]))


def encode_frame(channel: str, payload: bytes) -> bytes:
    """A post-handshake frame: canonical msgpack ``[channel, payload]``."""
    return codec.encode([channel, payload])


def decode_frame(data: bytes) -> tuple[str, bytes]:
    """Parse a frame; raise ``PeerError(reason="malformed")`` if it is not ``[str, bin]``."""
    try:
        obj = codec.decode(data)
    except DecodeError as exc:
        raise PeerError(f"frame is not canonical msgpack: {exc.message}", "malformed") from None
    if not (isinstance(obj, list) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], bytes)):
        raise PeerError("frame is not [channel: str, payload: bin]", "malformed")
    return obj[0], obj[1]


class HandshakeSlots:
    """Pending inbound handshakes, bounded per remote address and in total."""

    def __init__(self, per_address: int = DEFAULT_HANDSHAKES_PER_ADDRESS,
                 total: int = DEFAULT_MAX_HANDSHAKES) -> None:
        self.per_address = per_address
        self.total = total
        self._by_address: dict[str, int] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def get_pending(self, address: str) -> int:
        """Handshakes pending from ``address`` now."""
        return self._by_address.get(address, 0)

    def acquire(self, address: str) -> None:
        """Take a slot for ``address``; raise ``PeerError(reason="busy")`` when its share or the total is used."""
        mine = self._by_address.get(address, 0)
        if mine >= self.per_address:
            raise PeerError(f"{mine} handshakes already pending from {address}; limit per address "
                            f"{self.per_address}", "busy_address")
        if self._count >= self.total:
            raise PeerError(f"{self._count} handshakes pending; limit {self.total}", "busy")
        self._by_address[address] = mine + 1
        self._count += 1

    def release(self, address: str) -> None:
        """Give back a slot taken by ``acquire``."""
        left = self._by_address.get(address, 0) - 1
        if left > 0:
            self._by_address[address] = left
        else:
            self._by_address.pop(address, None)
        self._count = max(0, self._count - 1)


def server_options(handshake_timeout_s: float) -> dict[str, float]:
    """``web.AppRunner`` keyword options for the peer listener: idle sockets close after the deadline.

    aiohttp keeps a connection that never sends a request for ``keepalive_timeout`` (an hour by default);
    on the peer listener that is a free socket for anyone, so it gets the handshake deadline instead.
    """
    return {"keepalive_timeout": handshake_timeout_s}


def check_peer(chain_id: str, me: bytes, validators: Mapping[bytes, str], version: object, their_chain: str,
               peer_key: bytes) -> None:
    """Version, chain and key checks of a hello; raise ``PeerError`` naming what was seen and expected."""
    if version != PROTOCOL_VERSION:
        raise PeerError(f"peer protocol version {version!r}; expected {PROTOCOL_VERSION}", "bad_version")
    if their_chain != chain_id:
        raise PeerError(f"peer is on chain {their_chain!r}; expected {chain_id!r}", "wrong_chain")
    if peer_key == me:
        raise PeerError("peer presented our own key (a link to ourselves?)", "self_key")
    if peer_key not in validators:
        raise PeerError(f"key {peer_key.hex()[:16]}… is not in the validator set", "unknown_key")


async def recv_handshake(ws) -> list:
    """One handshake message: a binary frame of at most ``MAX_HANDSHAKE_BYTES`` holding a msgpack array."""
    msg = await ws.receive()
    if msg.type != WSMsgType.BINARY:
        raise PeerError(f"link closed or sent {msg.type.name} during the handshake (close code {ws.close_code})",
                        "handshake_closed")
    if len(msg.data) > MAX_HANDSHAKE_BYTES:
        raise PeerError(f"handshake message of {len(msg.data)} bytes; limit {MAX_HANDSHAKE_BYTES}",
                        "bad_handshake")
    try:
        obj = codec.decode(msg.data)
    except DecodeError as exc:
        raise PeerError(f"handshake message is not canonical msgpack: {exc.message}", "bad_handshake") from None
    if not isinstance(obj, list) or not obj:
        raise PeerError("handshake message is not a non-empty array", "bad_handshake")
    return obj


async def accept_handshake(ws, chain_id: str, key: KeyPair, validators: Mapping[bytes, str]) -> bytes:
    """The listener's side; return the authenticated peer key or raise ``PeerError``."""
    hello = await recv_handshake(ws)
    if not (len(hello) == 5 and hello[0] == "hello" and isinstance(hello[2], str)
            and _is_bin(hello[3], 32) and _is_bin(hello[4], CHALLENGE_LEN)):
        raise PeerError("malformed hello; expected ['hello', version, chain_id, key, challenge]", "bad_handshake")
    _, version, their_chain, peer_key, their_challenge = hello
    me = key.public_key
    check_peer(chain_id, me, validators, version, their_chain, peer_key)
    my_challenge = os.urandom(CHALLENGE_LEN)
    sig = key.sign(compute_auth_message(chain_id, their_challenge, my_challenge, me, peer_key))
    await ws.send_bytes(codec.encode(["hello", PROTOCOL_VERSION, chain_id, me, my_challenge, sig]))
    auth = await recv_handshake(ws)
    if not (len(auth) == 2 and auth[0] == "auth" and _is_bin(auth[1], 64)):
        raise PeerError("malformed auth; expected ['auth', signature]", "bad_handshake")
    if not verify(peer_key, compute_auth_message(chain_id, my_challenge, their_challenge, peer_key, me), auth[1]):
        raise PeerError(f"signature of {_name(validators, peer_key)} does not verify over our challenge",
                        "bad_signature")
    await ws.send_bytes(codec.encode(["ok"]))
    return peer_key


async def dial_handshake(ws, chain_id: str, key: KeyPair, validators: Mapping[bytes, str], expected_key: bytes,
                         url: str) -> None:
    """The dialer's side against ``expected_key`` at ``url``; raise ``PeerError`` on any refusal."""
    me = key.public_key
    my_challenge = os.urandom(CHALLENGE_LEN)
    await ws.send_bytes(codec.encode(["hello", PROTOCOL_VERSION, chain_id, me, my_challenge]))
    hello = await recv_handshake(ws)
    if not (len(hello) == 6 and hello[0] == "hello" and isinstance(hello[2], str) and _is_bin(hello[3], 32)
            and _is_bin(hello[4], CHALLENGE_LEN) and _is_bin(hello[5], 64)):
        raise PeerError("malformed hello reply", "bad_handshake")
    _, version, their_chain, peer_key, their_challenge, sig = hello
    check_peer(chain_id, me, validators, version, their_chain, peer_key)
    name = _name(validators, expected_key)
    if peer_key != expected_key:
        raise PeerError(f"{url} answered with key {peer_key.hex()[:16]}…; expected {name}'s "
                        f"{expected_key.hex()[:16]}…", "unexpected_key")
    if their_challenge == my_challenge:
        raise PeerError("peer echoed our challenge (reflection)", "bad_handshake")
    if not verify(peer_key, compute_auth_message(chain_id, my_challenge, their_challenge, peer_key, me), sig):
        raise PeerError(f"signature of {name} does not verify over our challenge", "bad_signature")
    mine = key.sign(compute_auth_message(chain_id, their_challenge, my_challenge, me, peer_key))
    await ws.send_bytes(codec.encode(["auth", mine]))
    if await recv_handshake(ws) != ["ok"]:
        raise PeerError("expected ['ok'] to end the handshake", "bad_handshake")


def _name(validators: Mapping[bytes, str], peer_key: bytes) -> str:
    return validators.get(peer_key) or peer_key.hex()[:16] + "…"


def _is_bin(value: object, length: int) -> bool:
    return isinstance(value, bytes) and len(value) == length
