"""Fuzzing what peers send: any frame raises only the module's typed error (never anything else).

The consensus wire decoder (``consensus.wire.decode_message``: ``WireError``, a ``ConsensusError``), the peer
frame decoder (``node.handshake.decode_frame`` and ``node.peer_link.parse_frame``: ``PeerError``) and both
sides of the peer handshake fed hostile messages by a fake socket (``PeerError``). Seeds are valid messages of
every type, so mutations reach the shape checks behind the msgpack layer.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiohttp import WSMsgType
from hypothesis import given, strategies as st

from consensus.errors import ConsensusError
from consensus.wire import decode_message, encode_message
from ledger import codec
from ledger.keys import KeyPair
from node.errors import PeerError
from node.handshake import (
    CHALLENGE_LEN, PROTOCOL_VERSION, accept_handshake, decode_frame, dial_handshake, encode_frame,
)
from node.peer_link import parse_frame
from tests.consensus.fakenet import Solo
from tests.fuzz.mutations import FUZZ, hostile_bytes


def _message_seeds() -> list[bytes]:
    s = Solo(4)
    block = s.block(salt=3)
    prepared_rc = s.prepared_rc(1, 2, block, 1, [0, 1, 2])
    msgs = [s.prepare(1, 0, block.hash), s.commit(2, 5, block.hash), s.rc(3, 1), prepared_rc, s.proposal(0),
            s.proposal(2, block=block, rcs=[prepared_rc, s.rc(2, 2), s.rc(3, 2)], prepares=prepared_rc.prepares)]
    return [encode_message(m) for m in msgs]


MESSAGE_SEEDS = _message_seeds()
FRAME_SEEDS = [encode_frame("consensus", MESSAGE_SEEDS[0]), encode_frame("txs", b""), encode_frame("", b"\x00")]
ME, PEER = KeyPair.from_seed(b"\x01" * 32), KeyPair.from_seed(b"\x02" * 32)
VALIDATORS = {ME.public_key: "me", PEER.public_key: "peer"}
HELLO_SEEDS = [codec.encode(["hello", PROTOCOL_VERSION, "chain", PEER.public_key, b"\x07" * CHALLENGE_LEN]),
               codec.encode(["hello", PROTOCOL_VERSION, "chain", PEER.public_key, b"\x07" * CHALLENGE_LEN,
                             b"\x09" * 64]),
               codec.encode(["auth", b"\x09" * 64]), codec.encode(["ok"])]


@FUZZ
@given(hostile_bytes(MESSAGE_SEEDS, max_size=256))
def test_the_consensus_wire_decoder_raises_only_consensus_errors(data):
    try:
        msg = decode_message(data)
    except ConsensusError:
        return
    assert encode_message(msg) == data


@FUZZ
@given(hostile_bytes(FRAME_SEEDS, max_size=256))
def test_the_peer_frame_decoders_raise_only_peer_errors(data):
    try:
        channel, payload = decode_frame(data)
    except PeerError:
        channel = None
    try:
        parsed = parse_frame(data, 1024, ("consensus", "txs"))
    except PeerError:
        return
    assert parsed == (channel, payload) and channel in ("consensus", "txs")


class FakeSocket:
    """Answers ``receive()`` with the given frames in turn (then a close), records what is sent."""

    def __init__(self, frames: list[bytes]) -> None:
        self.frames, self.sent, self.close_code = list(frames), [], None

    async def receive(self):
        if not self.frames:
            return SimpleNamespace(type=WSMsgType.CLOSE, data=None)
        return SimpleNamespace(type=WSMsgType.BINARY, data=self.frames.pop(0))

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)


@FUZZ
@given(frames=st.lists(hostile_bytes(HELLO_SEEDS, max_size=128), min_size=1, max_size=3), dialer=st.booleans())
def test_both_sides_of_the_peer_handshake_raise_only_peer_errors(frames, dialer):
    ws = FakeSocket(frames)
    if dialer:
        handshake = dial_handshake(ws, "chain", ME, VALIDATORS, PEER.public_key, "ws://127.0.0.1:1")
    else:
        handshake = accept_handshake(ws, "chain", ME, VALIDATORS)
    try:
        asyncio.run(asyncio.wait_for(handshake, 2))
    except PeerError:
        return
    raise AssertionError(f"a handshake of unsigned frames was accepted: {frames!r}")
