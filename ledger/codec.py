"""Canonical msgpack: the one encoding for wire, disk and hashing.

Values are arrays (lists or tuples), ints, bytes (msgpack ``bin``) and str. No maps, floats, booleans,
nil or ext types: a format with one way to write each value is what lets every node hash the same bytes.
``decode`` re-encodes what it read and refuses input that differs (non-minimal ints or lengths, str/bin
confusion) as well as trailing bytes.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ledger.errors import DecodeError, EncodeError

# Bounds on what a decoder will allocate for one value; a frame larger than these is refused.
MAX_BIN = 16 * 1024 * 1024
MAX_ARRAY = 1_000_000
MAX_DEPTH = 32

Value = int | bytes | str | list  # recursive: list of Value

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise EncodeError(f"nesting deeper than {MAX_DEPTH} levels")
    t = type(value)
    if t is list or t is tuple:
        if value and depth >= MAX_DEPTH:
            raise EncodeError(f"nesting deeper than {MAX_DEPTH} levels")
        # Scalars are checked inline: one call per array, not per item (hot on blocks of many txs).
        for item in value:
            it = type(item)
            if it is bytes or it is str:
                continue
            if it is int:
                if not _INT_MIN <= item <= _INT_MAX:
                    raise EncodeError(f"integer {item} outside the 64-bit range")
                continue
            _check(item, depth + 1)
        return
    if t is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise EncodeError(f"integer {value} outside the 64-bit range")
        return
    if t is bytes or t is str:
        return
    raise EncodeError(f"cannot encode {t.__name__}; expected int, bytes, str or array")


def encode(value: Any) -> bytes:
    """Return the canonical msgpack bytes of ``value`` (arrays, ints, bytes, str only)."""
    _check(value, 0)
    try:
        return msgpack.packb(value, use_bin_type=True)
    except UnicodeEncodeError as exc:  # a str holding a lone surrogate has no UTF-8 form
        raise EncodeError(f"a str is not valid UTF-8 ({exc.reason} at position {exc.start}); "
                          "expected text without lone surrogates") from None


def _reject_map(pairs: Any) -> None:
    raise DecodeError("found a map; canonical encoding uses arrays only")


def _reject_ext(code: int, data: bytes) -> None:
    raise DecodeError(f"found ext type {code}; canonical encoding has no ext types")


def decode(data: bytes) -> Any:
    """Decode canonical msgpack bytes; raise ``DecodeError`` if they are not canonical."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise DecodeError("empty input; expected one msgpack value")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            object_pairs_hook=_reject_map,
            ext_hook=_reject_ext,
            max_bin_len=MAX_BIN,
            max_str_len=MAX_BIN,
            max_array_len=MAX_ARRAY,
            max_map_len=0,
            max_ext_len=0,
        )
    except DecodeError:
        raise
    except msgpack.ExtraData:
        raise DecodeError("trailing bytes after the value") from None
    except UnicodeDecodeError:
        raise DecodeError("a str field is not valid UTF-8") from None
    except (ValueError, msgpack.UnpackException, TypeError, RecursionError) as exc:
        raise DecodeError(f"not valid msgpack: {exc}") from None
    try:
        again = encode(value)
    except EncodeError as exc:
        raise DecodeError(f"non-canonical value: {exc}") from None
    if again != data:
        raise DecodeError("non-canonical encoding (re-encoding gives different bytes)")
    return value
