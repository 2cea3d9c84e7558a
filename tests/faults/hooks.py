"""Feature checks for the node hooks some scenarios need.

A hook counts as present when its environment variable is named in the node's source (``node/``,
``cli/node.py``): a scenario that needs an absent hook is never drawn and the campaign reports why.

- ``CARECOIN_CLOCK_OFFSET_MS`` (integer ms, may be negative, at most a day; ``node/clock.py``): added to every
  wall-clock read of the node (``node.clock.now_ms``) — block timestamps, the ``max_future_ms`` check of a
  proposal, ``validate_block``'s now, the staff guard's skew check — so one node runs ahead of or behind the
  others. Read once when the node is built; a value that is not an integer refuses the start (exit 1).
  Monotonic timers stay as they are.
- ``CARECOIN_TEST_BYZANTINE`` (comma list of behaviours; ``node/byzantine.py``), honoured only with
  ``CARECOIN_TEST_MODE=1`` (otherwise, and for an unknown behaviour, the node refuses to start, exit 1). It wraps
  the consensus driver's send port; nothing is installed when it is unset:
  ``equivocate`` (as proposer, a second valid signed block for the same (h, r): the honest proposal to one group
  of peers, the twin with a PREPARE and COMMIT for it to the other; as voter, its vote to one group and a vote
  for another hash to the rest), ``corrupt_body`` (one peer first gets a copy of a proposal with one tx
  signature bit flipped, same header and proposal signature), ``replay`` (re-send its messages of earlier
  heights/rounds, bounded per period), ``flood_future`` (signed votes for heights h+1..h+12, far rounds and far
  heights, and a ~256 KB proposal for a future height, bounded per period). The honest nodes must keep one
  chain, every acknowledged tx, the supply, make blocks during the attack and within 10 s of the heal, keep
  their RSS under 500 MB, and never blame an honest validator.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLOCK_ENV = "CARECOIN_CLOCK_OFFSET_MS"
BYZANTINE_ENV = "CARECOIN_TEST_BYZANTINE"
NEEDS = {"clock_offset": CLOCK_ENV, "byzantine": BYZANTINE_ENV}


@lru_cache(maxsize=None)
def _node_source() -> str:
    files = list((ROOT / "node").glob("*.py")) + [ROOT / "cli" / "node.py"]
    return "\n".join(p.read_text(errors="replace") for p in files if p.is_file())


def missing(kind: str) -> str | None:
    """None when ``kind`` can run against this node; else the reason (the hook it needs)."""
    env = NEEDS.get(kind)
    if env is None or env in _node_source():
        return None
    return f"needs node hook {env} (see tests/faults/hooks.py)"
