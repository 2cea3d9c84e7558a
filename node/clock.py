"""The node's one wall clock: ``now_ms()``, shifted by ``CARECOIN_CLOCK_OFFSET_MS`` (fault tests).

Every wall-clock read of the node goes through ``now_ms()``: block timestamps (build and pre-build), the
``max_future_ms`` check and "now" of ``validate_block``, and the staff-signed guard's clock-skew check.
Consensus timers, pacing and latency figures use ``time.monotonic()`` and are never shifted.

``CARECOIN_CLOCK_OFFSET_MS`` (an integer, may be negative, at most ``MAX_OFFSET_MS`` in size) is read once
when the node starts (``configure_from_env``, called by ``node.app`` before the node is built): it lets the
fault campaign run one node ahead of or behind the others. A value that is not an integer refuses the start
(``ClockOffsetInvalid``) instead of being ignored. Unset or empty means 0.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Mapping

from node.errors import NodeError

log = logging.getLogger("carecoin.node")

CLOCK_OFFSET_ENV = "CARECOIN_CLOCK_OFFSET_MS"
MAX_OFFSET_MS = 24 * 3600 * 1000  # a day: beyond that it is a typo, not a skewed clock

_offset_ms = 0


class ClockOffsetInvalid(NodeError):
    """``CARECOIN_CLOCK_OFFSET_MS`` is set to something that is not an integer within a day."""

    code = "bad_clock_offset"
    http_status = 500


def parse_offset(text: str) -> int:
    """The offset in ms that ``text`` names; raise ``ClockOffsetInvalid`` with what was seen."""
    stripped = text.strip()
    try:
        value = int(stripped, 10)
    except ValueError:
        raise ClockOffsetInvalid(f"{CLOCK_OFFSET_ENV}={text!r} is not an integer; expected milliseconds "
                                 f"such as 1500 or -2000") from None
    if abs(value) > MAX_OFFSET_MS:
        raise ClockOffsetInvalid(f"{CLOCK_OFFSET_ENV}={value} is {abs(value)} ms; expected at most "
                                 f"{MAX_OFFSET_MS} ms either way")
    return value


def configure_from_env(environ: Mapping[str, str] | None = None) -> int:
    """Read ``CARECOIN_CLOCK_OFFSET_MS`` once (at start) and use it from now on; return the offset."""
    env = os.environ if environ is None else environ
    text = env.get(CLOCK_OFFSET_ENV, "")
    offset = parse_offset(text) if text.strip() else 0
    set_offset(offset)
    if offset:
        log.warning("wall clock shifted by %+d ms (%s)", offset, CLOCK_OFFSET_ENV)
    return offset


def set_offset(offset_ms: int) -> None:
    """Shift every later ``now_ms()`` by ``offset_ms`` (tests; ``configure_from_env`` at start)."""
    global _offset_ms
    _offset_ms = int(offset_ms)


def get_offset_ms() -> int:
    """The shift in force."""
    return _offset_ms


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch, plus the configured offset."""
    return time.time_ns() // 1_000_000 + _offset_ms
