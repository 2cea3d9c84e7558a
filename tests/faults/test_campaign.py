"""The fault campaign: real node processes behind faulty links keep one chain, every acknowledged tx and the supply.

The e2e test runs 12 seeded scenarios, every kind once (kill -9 and restart, kill mid-commit, SIGSTOP, all-crash,
partitions, lossy links, truncated LevelDB files, a skewed clock, a byzantine validator), on 4 real nodes, so the
default suite stays within its time budget; ``CARECOIN_FAULT_SCENARIOS=20`` runs more, ``make faults`` runs 200. The unit tests pin the two
pieces the campaign's verdicts rest on: the websocket frame parser of the proxy and the seeded plan.
"""

from __future__ import annotations

import asyncio
import os
import struct

import pytest

from tests.faults import hooks
from tests.faults.campaign import run_campaign
from tests.faults.proxy import parse_frames
from tests.faults.scenarios import KINDS, plan

SCENARIOS = int(os.environ.get("CARECOIN_FAULT_SCENARIOS", str(len(KINDS))))  # every kind once by default


def _frame(payload: bytes, mask: bytes | None) -> bytes:
    n = len(payload)
    head = bytes([0x82])
    size = bytes([n | (0x80 if mask else 0)]) if n < 126 else bytes([126 | (0x80 if mask else 0)]) + struct.pack(">H", n)
    if mask is None:
        return head + size + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + size + mask + masked


def test_proxy_cuts_masked_and_unmasked_frames_whole_and_keeps_a_partial_tail():
    small, big = b"hello", bytes(range(256)) * 3
    stream = bytearray(_frame(small, b"\x01\x02\x03\x04") + _frame(big, None) + _frame(b"tail", None)[:3])
    frames = parse_frames(stream)
    assert [(f[1], f[2], f[3]) for f in frames] == [(2, True, small), (2, True, big)]
    assert frames[0][0] == _frame(small, b"\x01\x02\x03\x04")  # a duplicate re-sends the exact masked bytes
    assert bytes(stream) == _frame(b"tail", None)[:3]  # the incomplete frame waits for more bytes


def test_the_same_seed_gives_the_same_plan_and_another_seed_another():
    assert plan(7, 30, 4) == plan(7, 30, 4)
    assert plan(7, 30, 4) != plan(8, 30, 4)
    kinds = {s.kind for s in plan(1, 200, 4)}
    assert {"kill_restart", "kill_mid_commit", "pause", "all_crash", "partition_halves", "lossy_links",
            "truncate_wal_log"} <= kinds
    for kind in ("clock_offset", "byzantine"):  # gated kinds are drawn only once the node has the hook
        assert (kind in kinds) == (hooks.missing(kind) is None)


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_every_fault_kind_on_real_nodes_keeps_one_chain_every_acked_tx_and_the_supply():
    summary = asyncio.run(run_campaign(SCENARIOS, seed=1, n=4, quick=True, per_network=10))
    assert summary["scenarios"] == SCENARIOS
    assert summary["acked_txs"] > 10 * SCENARIOS, summary  # the workload really ran during the faults
    assert summary["forks"] == 0, summary["failures"]
    assert summary["lost"] == 0 and summary["duplicated"] == 0 and summary["misplaced"] == 0, summary["failures"]
    assert summary["supply_errors"] == 0, (summary["store_errors"], summary["failures"])
    assert summary["double_signs"] == 0, summary["failures"]
    assert summary["max_recovery_s"] <= 10.0, summary["failures"]
    assert summary["rss_over_limit"] == 0, (summary["max_rss_mb"], summary["failures"])
