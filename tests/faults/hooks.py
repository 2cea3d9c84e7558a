"""Feature checks for the node hooks some scenarios need (the node does not have them yet).

A hook counts as present when its environment variable is named in the node's source (``node/``,
``cli/node.py``): a scenario that needs an absent hook is never drawn and the campaign reports why.

- ``CARECOIN_CLOCK_OFFSET_MS`` (integer, may be negative): added to every wall-clock read of the node —
  block timestamps, the ``max_future_ms`` check of a proposal, ``validate_block``'s now, the vault's skew
  check — so one node runs ahead of or behind the others. Monotonic timers stay as they are.
- ``CARECOIN_TEST_BYZANTINE`` (comma list of behaviours, test builds only, refused unless
  ``CARECOIN_TEST_MODE=1`` is also set): ``equivocate`` (as proposer, sign two different blocks for the same
  round and send one to each half of the peers; as voter, PREPARE/COMMIT both), ``corrupt_body`` (send a
  proposal whose block body differs from its header's ``tx_root`` to some peers), ``replay`` (re-send
  messages of earlier heights/rounds), ``flood_future`` (sign votes for heights h+1..h+K). The honest nodes
  must keep one chain and never blame an honest validator.
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
