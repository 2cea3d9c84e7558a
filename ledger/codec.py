"""Canonical msgpack: the one encoding for wire, disk and hashing.

Values are arrays (lists or tuples), ints, bytes (msgpack ``bin``) and str. No maps, floats, booleans,
nil or ext types: a format with one way to write each value is what lets every node hash the same bytes.
``decode`` re-encodes what it read and refuses input that differs (non-minimal ints or lengths, str/bin
confusion) as well as trailing bytes.

Speed: ``msgpack.packb`` builds a new ``Packer`` (and its 256 KiB buffer) at every call, which cost several
times the packing itself; both ``encode`` and ``decode``'s re-encoding use one ``Packer`` per thread instead
(the same bytes: ``packb`` is ``Packer(**kw).pack``). ``fast_pack`` is that packer for callers that have
already checked their value (``ledger.state``'s typed setters).
"""

from __future__ import annotations

import threading
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


_LOCAL = threading.local()


def _new_pack() -> Any:
    # One Packer per thread: its buffer is reused between calls (a Packer resets it after each pack, also
    # after an error), and no two threads ever share one.
    pack = _LOCAL.pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack
    return pack


def fast_pack(value: Any) -> bytes:
    """``msgpack.packb(value, use_bin_type=True)`` without building a Packer; NO canonicity check (callers that
    checked ``value`` already: non-negative 64-bit ints and arrays of them, for instance)."""
    try:
        pack = _LOCAL.pack
    except AttributeError:
        pack = _new_pack()
    return pack(value)


def encode(value: Any) -> bytes:
    """Return the canonical msgpack bytes of ``value`` (arrays, ints, bytes, str only)."""
    _check(value, 0)
    try:
        pack = _LOCAL.pack
    except AttributeError:
        pack = _new_pack()
    try:
        return pack(value)
    except UnicodeEncodeError as exc:  # a str holding a lone surrogate has no UTF-8 form
        raise EncodeError(f"a str is not valid UTF-8 ({exc.reason} at position {exc.start}); "
                          "expected text without lone surrogates") from None


def _check_decoded(value: list, depth: int) -> None:
    """``_check`` for a non-empty list msgpack decoded at ``depth`` < ``MAX_DEPTH``, raising ``DecodeError``.

    Same refusals, same messages, same order as ``_check`` (a non-empty array at depth ``MAX_DEPTH`` or deeper,
    then any nil, bool or float); it skips the range test of ints, which msgpack never decodes out of range.
    """
    for item in value:
        t = type(item)
        if t is list:
            if item:
                if depth + 1 >= MAX_DEPTH:
                    raise DecodeError(f"non-canonical value: nesting deeper than {MAX_DEPTH} levels")
                _check_decoded(item, depth + 1)
        elif t is not bytes and t is not str and t is not int:
            raise DecodeError(f"non-canonical value: cannot encode {t.__name__}; expected int, bytes, str or array")


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
    except msgpack.StackError:  # msgpack's own stack (~1024 levels) ran out: say which limit was passed
        raise DecodeError(f"non-canonical value: nesting deeper than {MAX_DEPTH} levels") from None
    except msgpack.FormatError:  # the one byte that starts no msgpack value (msgpack's message is empty)
        raise DecodeError("not valid msgpack: a byte that starts no value (such as the reserved 0xc1)") from None
    except (ValueError, msgpack.UnpackException, TypeError, RecursionError) as exc:
        raise DecodeError(f"not valid msgpack: {exc}") from None
    # What msgpack decoded is an int in the 64-bit range, bytes, str, nil, bool, float or a list of them: the walk
    # refuses nil/bool/float and deep nesting (exactly as ``encode`` would), the re-encoding everything else.
    t = type(value)
    if t is list:
        if value:
            _check_decoded(value, 0)
    elif t is not int and t is not bytes and t is not str:
        raise DecodeError(f"non-canonical value: cannot encode {t.__name__}; expected int, bytes, str or array")
    try:
        pack = _LOCAL.pack
    except AttributeError:
        pack = _new_pack()
    if pack(value) != data:
        raise DecodeError("non-canonical encoding (re-encoding gives different bytes)")
    return value
