"""The node's one wall clock: ``CARECOIN_CLOCK_OFFSET_MS`` shifts block timestamps, the future-timestamp bound
and the staff guard's skew check; a value that is not an integer refuses the start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.network import init_network
from cli.ports import free_port_base
from consensus.events import ValidateBlock
from consensus.bodies import compute_body_digest
from ledger import chain
from node import clock
from node.clock import CLOCK_OFFSET_ENV, ClockOffsetInvalid, configure_from_env, parse_offset
from node.staff_auth import StaffGuard
from node.vault import VaultUnauthorized, compute_request_headers
from tests.node.local_chain import CHAIN
from tests.node.test_service import FAST, keys, open_service, wait_height  # noqa: F401 (keys: fixture)

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3_600_000


@pytest.fixture(autouse=True)
def reset_clock():
    clock.set_offset(0)
    yield
    clock.set_offset(0)


def real_now() -> int:
    return int(time.time() * 1000)


def test_the_offset_is_an_integer_of_milliseconds_either_way():
    assert parse_offset("1500") == 1500 and parse_offset(" -2000 ") == -2000
    for bad in ("1.5", "2s", "abc", "0x10"):
        with pytest.raises(ClockOffsetInvalid, match=f"{CLOCK_OFFSET_ENV}='{bad}' is not an integer"):
            parse_offset(bad)
    with pytest.raises(ClockOffsetInvalid, match="at most 86400000 ms"):
        parse_offset(str(10**12))
    assert configure_from_env({}) == 0 and configure_from_env({CLOCK_OFFSET_ENV: "-250"}) == -250
    assert clock.get_offset_ms() == -250 and abs(clock.now_ms() + 250 - real_now()) < 1000


@pytest.mark.asyncio
async def test_a_node_an_hour_ahead_stamps_its_blocks_an_hour_ahead(tmp_path, keys):
    clock.set_offset(HOUR)
    svc = open_service(tmp_path / "db", *keys)
    await svc.start()
    try:
        before = real_now()
        await wait_height(svc, 1)
        stamp = svc.store.get_header(1).timestamp_ms
        assert before + HOUR - 5_000 <= stamp <= real_now() + HOUR + 1_000
    finally:
        await svc.stop()
        svc.close()


def test_max_future_ms_is_judged_on_the_shifted_clock(tmp_path, keys):
    node, _ = keys
    svc = open_service(tmp_path / "db", *keys)
    try:
        parent = svc.store.get_header(0)
        ahead = real_now() + FAST.max_future_ms + 3_000  # beyond the bound on a true clock
        execution, _ = chain.build_block(svc.store, svc.store, parent, [], ahead, node.public_key,
                                         svc.genesis.validator_set_hash, chain_id=svc.chain_id)
        block = execution.block
        action = ValidateBlock(1, block, compute_body_digest(block))
        refused = svc.pipeline.process_validate_block(action)
        assert not refused.valid and "timestamp" in refused.reason
        clock.set_offset(5_000)  # this node's clock runs 5 s ahead: the block is within its bound now
        assert svc.pipeline.process_validate_block(action).valid
    finally:
        svc.close()


def test_the_staff_guard_judges_request_time_on_the_shifted_clock(story):
    c, _ = story
    guard = StaffGuard(c.store, CHAIN)
    path = "/v1/vault/anything"
    clock.set_offset(HOUR)
    stale = compute_request_headers(c.staff, CHAIN, "GET", path, b"", real_now())
    with pytest.raises(VaultUnauthorized, match="ms from the node's clock"):
        guard.verify("GET", path, stale, b"")
    fresh = compute_request_headers(c.staff, CHAIN, "GET", path, b"", real_now() + HOUR)
    assert guard.verify("GET", path, fresh, b"") == c.staff.public_key


def start_node(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    summary = init_network(tmp_path / "net", 1, base_port=free_port_base(2))
    config = summary.dir / summary.branches[0].name / "node.toml"
    return subprocess.run([sys.executable, "-m", "cli.node", "start", "--config", str(config)], cwd=str(ROOT),
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_a_node_given_a_non_integer_offset_refuses_to_start_and_says_why(tmp_path):
    proc = start_node(tmp_path, {CLOCK_OFFSET_ENV: "3 seconds"})
    assert proc.returncode == 1, proc.stderr
    assert f"{CLOCK_OFFSET_ENV}='3 seconds' is not an integer" in proc.stderr
    assert "Traceback" not in proc.stderr
