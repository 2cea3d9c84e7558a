"""The faster canonical codec answers exactly as the reference one did: same value, or the same refusal.

The reference below is the codec as it was before the per-thread Packer (``msgpack.packb`` at every call). It
is compared with ``ledger.codec`` on random valid values, on random NON-canonical encodings of them (every
non-minimal width msgpack allows, str/bin swaps, nil/bool/float/map/ext tokens, deep nesting, trailing bytes)
and on random byte mutations (flip, insert, delete, truncate) of valid encodings.
"""

from __future__ import annotations

import struct
import threading
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.errors import DecodeError, EncodeError


# --- the reference: ledger.codec before this change ----------------------------------------------------------

def _ref_check(value: Any, depth: int) -> None:
    if depth > codec.MAX_DEPTH:
        raise EncodeError(f"nesting deeper than {codec.MAX_DEPTH} levels")
    t = type(value)
    if t is list or t is tuple:
        if value and depth >= codec.MAX_DEPTH:
            raise EncodeError(f"nesting deeper than {codec.MAX_DEPTH} levels")
        for item in value:
            it = type(item)
            if it is bytes or it is str:
                continue
            if it is int:
                if not -(2**63) <= item <= 2**64 - 1:
                    raise EncodeError(f"integer {item} outside the 64-bit range")
                continue
            _ref_check(item, depth + 1)
        return
    if t is int:
        if not -(2**63) <= value <= 2**64 - 1:
            raise EncodeError(f"integer {value} outside the 64-bit range")
        return
    if t is bytes or t is str:
        return
    raise EncodeError(f"cannot encode {t.__name__}; expected int, bytes, str or array")


def ref_encode(value: Any) -> bytes:
    _ref_check(value, 0)
    try:
        return msgpack.packb(value, use_bin_type=True)
    except UnicodeEncodeError as exc:
        raise EncodeError(f"a str is not valid UTF-8 ({exc.reason} at position {exc.start}); "
                          "expected text without lone surrogates") from None


def ref_decode(data: bytes) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise DecodeError("empty input; expected one msgpack value")
    try:
        value = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True,
                                object_pairs_hook=codec._reject_map, ext_hook=codec._reject_ext,
                                max_bin_len=codec.MAX_BIN, max_str_len=codec.MAX_BIN,
                                max_array_len=codec.MAX_ARRAY, max_map_len=0, max_ext_len=0)
    except DecodeError:
        raise
    except msgpack.ExtraData:
        raise DecodeError("trailing bytes after the value") from None
    except UnicodeDecodeError:
        raise DecodeError("a str field is not valid UTF-8") from None
    # (since: the two refusals msgpack gives no message for are named; tests/ledger/test_codec_refusals.py)
    except msgpack.StackError:
        raise DecodeError(f"non-canonical value: nesting deeper than {codec.MAX_DEPTH} levels") from None
    except msgpack.FormatError:
        raise DecodeError("not valid msgpack: a byte that starts no value (such as the reserved 0xc1)") from None
    except (ValueError, msgpack.UnpackException, TypeError, RecursionError) as exc:
        raise DecodeError(f"not valid msgpack: {exc}") from None
    try:
        again = ref_encode(value)
    except EncodeError as exc:
        raise DecodeError(f"non-canonical value: {exc}") from None
    if again != data:
        raise DecodeError("non-canonical encoding (re-encoding gives different bytes)")
    return value


def _outcome(fn, arg) -> tuple:
    try:
        value = fn(arg)
    except (DecodeError, EncodeError) as exc:
        return ("refused", type(exc).__name__, str(exc))
    return ("value", repr(value))  # repr tells bytes from str and int from bool


def assert_same(fn_new, fn_ref, arg) -> None:
    assert _outcome(fn_new, arg) == _outcome(fn_ref, arg)


# --- random values and random (mostly non-canonical) encodings -----------------------------------------------

scalars = (st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.binary(max_size=40)
           | st.text(max_size=40))
values = st.recursive(scalars, lambda children: st.lists(children, max_size=5), max_leaves=25)
# Values with no canonical form, for encode: floats, bools, None, maps, out-of-range ints, lone surrogates, depth
bad_leaves = (st.floats(allow_nan=False) | st.booleans() | st.none() | st.dictionaries(st.text(max_size=3),
              st.integers(0, 9), max_size=2) | st.integers(min_value=2**64, max_value=2**70)
              | st.integers(min_value=-(2**70), max_value=-(2**63) - 1) | st.just("\ud800"))
any_values = st.recursive(scalars | bad_leaves, lambda children: st.lists(children, max_size=4), max_leaves=20)


def _int_forms(v: int) -> list[bytes]:
    """Every msgpack encoding of the int ``v`` (canonical first)."""
    forms = [msgpack.packb(v)]
    for fmt, code, lo, hi in (("B", 0xCC, 0, 2**8 - 1), (">H", 0xCD, 0, 2**16 - 1), (">I", 0xCE, 0, 2**32 - 1),
                              (">Q", 0xCF, 0, 2**64 - 1), ("b", 0xD0, -(2**7), 2**7 - 1),
                              (">h", 0xD1, -(2**15), 2**15 - 1), (">i", 0xD2, -(2**31), 2**31 - 1),
                              (">q", 0xD3, -(2**63), 2**63 - 1)):
        if lo <= v <= hi:
            forms.append(bytes([code]) + struct.pack(fmt, v))
    if 0 <= v <= 0x7F:
        forms.append(bytes([v]))
    if -32 <= v < 0:
        forms.append(struct.pack("b", v))
    return forms


def _len_forms(n: int, fix: int | None, fix_max: int, codes: tuple[int | None, int, int]) -> list[bytes]:
    """Every header for a length ``n``: fix form (``fix`` base), then 8/16/32-bit forms (``codes``)."""
    out = []
    if fix is not None and n <= fix_max:
        out.append(bytes([fix | n]))
    for code, fmt, limit in zip(codes, ("B", ">H", ">I"), (2**8, 2**16, 2**32)):
        if code is not None and n < limit:
            out.append(bytes([code]) + struct.pack(fmt, n))
    return out


@st.composite
def encodings(draw, value=None) -> bytes:
    """A msgpack encoding of a random value, each header chosen among all the widths msgpack allows."""
    if value is None:
        value = draw(values)
    t = type(value)
    if t is int:
        return draw(st.sampled_from(_int_forms(value)))
    if t is bytes:
        heads = _len_forms(len(value), None, 0, (0xC4, 0xC5, 0xC6))
        # a bin written as a str (valid UTF-8 only decodes) is str/bin confusion
        heads += _len_forms(len(value), 0xA0, 31, (0xD9, 0xDA, 0xDB))
        return draw(st.sampled_from(heads)) + value
    if t is str:
        raw = value.encode("utf-8", "surrogatepass")
        heads = _len_forms(len(raw), 0xA0, 31, (0xD9, 0xDA, 0xDB)) + _len_forms(len(raw), None, 0, (0xC4, 0xC5, 0xC6))
        return draw(st.sampled_from(heads)) + raw
    heads = _len_forms(len(value), 0x90, 15, (None, 0xDC, 0xDD))
    return draw(st.sampled_from(heads)) + b"".join(draw(encodings(item)) for item in value)


tokens = st.sampled_from([b"\xc0", b"\xc2", b"\xc3", msgpack.packb(1.5), msgpack.packb(2.5, use_single_float=True),
                          b"\x81\x01\x02", b"\x80", b"\xd4\x01\x00", b"\xc7\x00\x05", b"\xc1", b"\x91" * 40 + b"\x90",
                          b"\x91" * 33 + b"\x01", b"\x91" * 31 + b"\x90", b"\x91" * 32 + b"\x90"])


@st.composite
def mutated(draw) -> bytes:
    """A valid or non-canonical encoding, then random edits: flips, inserted tokens, deletions, truncation."""
    data = bytearray(draw(encodings()))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["flip", "insert", "token", "delete", "truncate", "append"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            data[min(at, len(data) - 1)] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[at:at] = bytes([draw(st.integers(0, 255))])
        elif op == "token":
            data[at:at] = draw(tokens)
        elif op == "delete" and data:
            del data[min(at, len(data) - 1)]
        elif op == "truncate":
            del data[at:]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=3))
    return bytes(data)


# --- the promises ----------------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(values)
def test_valid_values_encode_and_decode_as_the_reference_did(value):
    assert_same(codec.encode, ref_encode, value)
    raw = ref_encode(value)
    assert_same(codec.decode, ref_decode, raw)


@settings(max_examples=200, deadline=None)
@given(any_values)
def test_values_without_canonical_form_are_refused_as_the_reference_refused_them(value):
    assert_same(codec.encode, ref_encode, value)


@settings(max_examples=150, deadline=None)
@given(encodings())
def test_non_canonical_encodings_are_refused_as_the_reference_refused_them(raw):
    assert_same(codec.decode, ref_decode, raw)


@settings(max_examples=200, deadline=None)
@given(mutated())
def test_mutated_bytes_decode_or_are_refused_as_the_reference_did(raw):
    assert_same(codec.decode, ref_decode, raw)


@settings(max_examples=200, deadline=None)
@given(st.lists(tokens, min_size=1, max_size=4).map(b"".join) | st.binary(max_size=64))
def test_arbitrary_tokens_and_bytes_decode_or_are_refused_as_the_reference_did(raw):
    assert_same(codec.decode, ref_decode, raw)


def test_a_refused_encode_leaves_the_next_encoding_intact():
    # the per-thread Packer resets its buffer after an error: the next value's bytes carry nothing of the last
    for bad in (["ok", "\ud800"], [b"x" * 100, 2**64]):
        try:
            codec.encode(bad)
        except EncodeError:
            pass
        assert codec.encode([1, "a"]) == ref_encode([1, "a"])


def test_encodings_made_in_many_threads_at_once_are_each_canonical():
    vals = [[i, b"k" * (i % 40), "v" * (i % 33), [i, [i]]] for i in range(300)]
    expected = [ref_encode(v) for v in vals]
    seen: list[list[bytes]] = []

    def work() -> None:
        seen.append([codec.encode(v) for v in vals for _ in range(3)][::3])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(seen) == 4 and all(s == expected for s in seen)
