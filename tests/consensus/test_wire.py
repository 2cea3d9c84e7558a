"""Wire and WAL codecs: round trips, size limit before decoding, strict shapes, typed errors."""

import pytest
from hypothesis import given, strategies as st

from consensus.errors import MalformedMessage, MessageTooLarge, WalError, WireError
from consensus.events import WalRecord
from consensus.messages import NO_ROUND, Commit, Prepare, verify_message
from consensus.wal import decode_record, encode_record
from consensus.wire import decode_message, encode_message
from ledger import codec
from tests.consensus.fakenet import CHAIN, Solo


@pytest.fixture()
def s():
    return Solo(4)


def _samples(s):
    block = s.block(salt=3)
    prepared_rc = s.prepared_rc(1, 2, block, 1, [0, 1, 2])
    return [
        s.prepare(1, 0, block.hash),
        s.commit(2, 5, block.hash),
        s.rc(3, 1),
        prepared_rc,
        s.proposal(0),
        s.proposal(2, block=block, rcs=[prepared_rc, s.rc(2, 2), s.rc(3, 2)], prepares=prepared_rc.prepares),
    ]


def test_every_message_type_round_trips_and_still_verifies(s):
    for msg in _samples(s):
        raw = encode_message(msg)
        back = decode_message(raw)
        assert back == msg and encode_message(back) == raw
        assert verify_message(CHAIN, back)


def test_oversized_frame_is_refused_before_decoding():
    with pytest.raises(MessageTooLarge) as err:
        decode_message(b"\xc1" * 101, max_bytes=100)  # 0xc1 is never valid msgpack: proves no decoding ran
    assert err.value.code == "consensus_message_too_large" and "101 bytes" in err.value.message


def test_non_canonical_bytes_are_a_wire_error(s):
    raw = encode_message(s.prepare(1, 0, b"\x01" * 32))
    with pytest.raises(WireError):
        decode_message(raw + b"\x00")
    with pytest.raises(WireError):
        decode_message(b"")


@pytest.mark.parametrize("obj, fragment", [
    (["VOTE", 1, 0, b"\x01" * 32, b"\x02" * 32, b"\x03" * 64], "message type"),
    (["PREPARE", 1, 0, b"\x01" * 32, b"\x02" * 32], "expected 6 fields"),
    (["PREPARE", 1, 0, b"\x01" * 31, b"\x02" * 32, b"\x03" * 64], "block_hash: expected 32 bytes"),
    (["PREPARE", -1, 0, b"\x01" * 32, b"\x02" * 32, b"\x03" * 64], "height"),
    (["PREPARE", 1, "0", b"\x01" * 32, b"\x02" * 32, b"\x03" * 64], "round"),
    (["COMMIT", 1, 0, b"\x01" * 32, b"\x04" * 63, b"\x02" * 32, b"\x03" * 64], "seal"),
    (["ROUND-CHANGE", 1, 1, 0, b"", [], b"\x02" * 32, b"\x03" * 64], "both absent or both present"),
    (["ROUND-CHANGE", 1, 1, -2, b"", [], b"\x02" * 32, b"\x03" * 64], "prepared_round"),
    (["PROPOSAL", 1, 0, b"not a block", [], [], b"\x02" * 32, b"\x03" * 64], "proposal.block"),
    ([1, 2, 3], "message type"),
    (b"\x01", "expected an array"),
])
def test_malformed_frames_name_what_was_seen(obj, fragment):
    with pytest.raises(MalformedMessage) as err:
        decode_message(codec.encode(obj))
    assert fragment in err.value.message and err.value.code == "consensus_malformed"


def test_nested_justification_of_the_wrong_type_is_refused(s):
    prop = s.proposal(1, rcs=[s.rc(1, 1)])
    obj = codec.decode(encode_message(prop))
    obj[4][0][0] = "PREPARE"
    with pytest.raises(MalformedMessage, match="round_changes\\[0\\]"):
        decode_message(codec.encode(obj))


@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_wire_errors(raw):
    try:
        decode_message(raw)
    except WireError:
        pass


@given(st.integers(0, 2**40), st.integers(0, 1000), st.binary(min_size=32, max_size=32))
def test_prepare_fields_round_trip(height, round_, block_hash):
    msg = Prepare(height, round_, block_hash, b"\x05" * 32, b"\x06" * 64)
    assert decode_message(encode_message(msg)) == msg


def test_wal_record_round_trips(s):
    block = s.block(salt=2)
    proof = tuple(s.prepare(i, 1, block.hash) for i in (0, 1, 2))
    rec = WalRecord(7, 3, 1, block, proof, ((1, block.hash), (3, b"\x09" * 32)), ((1, block.hash),),
                    ((0, b"\x07" * 32),))
    assert decode_record(encode_record(rec)) == rec
    empty = WalRecord(1, 0, NO_ROUND, None, (), (), ())
    assert decode_record(encode_record(empty)) == empty


def test_corrupt_wal_record_is_a_wal_error(s):
    with pytest.raises(WalError, match="9 fields"):
        decode_record(codec.encode([1, 2]))
    with pytest.raises(WalError, match="version"):
        decode_record(codec.encode([1, 1, 0, -1, b"", [], [], [], []]))
    with pytest.raises(WalError, match="both set or both unset"):
        decode_record(codec.encode([2, 1, 0, -1 + 1, b"", [], [], [], []]))
    with pytest.raises(WalError, match="proposal_votes"):
        decode_record(codec.encode([2, 1, 0, -1, b"", [], [], [], [[0, b"short"]]]))
    with pytest.raises(WalError):
        decode_record(b"\xc1")


def test_commit_encoding_keeps_the_seal(s):
    c = s.commit(1, 0, b"\x01" * 32)
    back = decode_message(encode_message(c))
    assert isinstance(back, Commit) and back.seal == c.seal
