"""A client sending bytes that start no msgpack value, or arrays nested past msgpack's own stack, gets a
refusal that names the problem (the API returns this message in its 400), never an empty ``not valid msgpack: ``."""

from __future__ import annotations

import pytest

from ledger import codec
from ledger.errors import DecodeError


def test_attacker_sending_the_reserved_byte_gets_a_refusal_naming_it():
    with pytest.raises(DecodeError) as info:
        codec.decode(b"\x91\xc1")
    assert "0xc1" in info.value.message and "reserved" in info.value.message


@pytest.mark.parametrize("depth", [1100, 5000])
def test_attacker_nesting_past_the_decoder_stack_gets_a_refusal_naming_the_depth_limit(depth):
    with pytest.raises(DecodeError) as info:
        codec.decode(b"\x91" * depth + b"\x01")
    assert f"nesting deeper than {codec.MAX_DEPTH} levels" in info.value.message
