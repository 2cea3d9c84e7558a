"""Canonical msgpack: round-trips, and refusal of every non-canonical form."""

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import codec
from ledger.errors import DecodeError, EncodeError

values = st.recursive(
    st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.binary(max_size=64) | st.text(max_size=32),
    lambda children: st.lists(children, max_size=6),
    max_leaves=30,
)


@given(values)
def test_roundtrip_is_identity(value):
    assert codec.decode(codec.encode(value)) == value


@given(values)
def test_encoding_is_deterministic(value):
    assert codec.encode(value) == codec.encode(codec.decode(codec.encode(value)))


@pytest.mark.parametrize("value", [1.5, {"a": 1}, True, None, object()])
def test_encode_refuses_values_without_canonical_form(value):
    with pytest.raises(EncodeError):
        codec.encode(value)


def test_encode_refuses_ints_outside_64_bits():
    with pytest.raises(EncodeError, match="64-bit"):
        codec.encode(2**64)


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"\xcc\x01", "non-minimal uint8 for 1"),
        (b"\xcd\x00\x05", "non-minimal uint16"),
        (b"\xd0\x05", "int8 for a positive fixint"),
        (b"\xd9\x01a", "str8 for a fixstr"),
        (b"\xc5\x00\x01a", "bin16 for a bin8"),
        (b"\xdc\x00\x01\x01", "array16 for a fixarray"),
        (msgpack.packb({"a": 1}), "map"),
        (msgpack.packb(1.5), "float"),
        (msgpack.packb(True), "bool"),
        (msgpack.packb(None), "nil"),
        (msgpack.packb(msgpack.ExtType(1, b"x")), "ext"),
        (codec.encode([1, 2]) + b"\x00", "trailing bytes"),
        (b"\x92\x01", "truncated array"),
        (b"\xa2\xff\xfe", "invalid utf-8"),
        (b"", "empty"),
    ],
)
def test_decode_refuses_non_canonical_bytes(raw, why):
    with pytest.raises(DecodeError):
        codec.decode(raw)


@given(values, st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=255))
def test_any_flipped_byte_is_refused_or_decodes_to_what_it_encodes(value, pos, byte):
    raw = bytearray(codec.encode(value))
    raw[pos % len(raw)] = byte
    try:
        decoded = codec.decode(bytes(raw))
    except DecodeError:
        return
    assert codec.encode(decoded) == bytes(raw)


def test_decode_refuses_non_bytes_input():
    with pytest.raises(DecodeError, match="expected bytes"):
        codec.decode("not bytes")
