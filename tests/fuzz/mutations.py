"""Hypothesis strategies of hostile input: random bytes, mutated valid bytes, mutated valid JSON documents.

Every fuzzer in this package feeds these to one decoder or verifier and accepts only that module's typed
errors. Sizes are bounded, so each example is fast; ``FUZZ`` sets the shared example count and a deadline
per example (a hang fails the test instead of eating CI time). ``CARECOIN_FUZZ_EXAMPLES=20000`` runs a longer,
randomised campaign (``derandomize`` off) by hand.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from hypothesis import HealthCheck, settings, strategies as st

_CAMPAIGN = int(os.environ.get("CARECOIN_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_CAMPAIGN or 300, deadline=2000, database=None, derandomize=not _CAMPAIGN,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_BYTE_OPS = ("flip", "set", "insert", "delete", "truncate", "duplicate", "splice")


@st.composite
def mutated_bytes(draw, seeds: list[bytes], max_ops: int = 6) -> bytes:
    """One of ``seeds`` after up to ``max_ops`` byte-level mutations (bit flips, inserts, cuts, splices)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(_BYTE_OPS))
        pos = draw(st.integers(0, max(len(data), 1) - 1)) if data else 0
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x90, 0xC0, 0xC1, 0xC2, 0xC4, 0xCC, 0xCF, 0xD3,
                                              0xD9, 0xDC, 0xDD, 0xDE, 0xFF]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
        elif op == "duplicate" and data:
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 16))]
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            data[pos:] = other[draw(st.integers(0, max(len(other), 1) - 1)):] if other else b""
    return bytes(data)


def hostile_bytes(seeds: list[bytes], max_size: int = 512) -> st.SearchStrategy[bytes]:
    """Random bytes or mutated ``seeds``."""
    return st.one_of(st.binary(max_size=max_size), mutated_bytes(seeds))


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=16), st.text("0123456789abcdefABCDEF", max_size=130), st.sampled_from(["", "00" * 32, "latest"]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(_paths(v, prefix + (i,)))
    return out


def _mutate_hex(draw, text: str) -> str:
    op = draw(st.sampled_from(["flip", "cut", "grow", "case", "space", "odd"]))
    if not text:
        return draw(st.text("0123456789abcdef", max_size=8))
    i = draw(st.integers(0, len(text) - 1))
    if op == "flip":
        return text[:i] + draw(st.sampled_from("0123456789abcdefg ")) + text[i + 1:]
    if op == "cut":
        return text[:i]
    if op == "grow":
        return text + draw(st.text("0123456789abcdef", min_size=1, max_size=8))
    if op == "case":
        return text.upper()
    if op == "space":
        return text[:i] + " " + text[i:]
    return text[:-1]


@st.composite
def mutated_doc(draw, doc: dict, max_ops: int = 3) -> Any:
    """A deep copy of the JSON document ``doc`` with up to ``max_ops`` edits (replace, delete, hex edit)."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, max_ops))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            if draw(st.integers(0, 9)) == 0:
                return draw(JSON_VALUES)
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last, value = path[-1], parent[path[-1]]
        op = draw(st.sampled_from(["replace", "delete", "hex"] if isinstance(value, str) else ["replace", "delete"]))
        if op == "replace":
            parent[last] = draw(JSON_VALUES)
        elif op == "hex":
            parent[last] = _mutate_hex(draw, value)
        elif isinstance(parent, dict):
            del parent[last]
        else:
            parent.pop(last)
    return doc
