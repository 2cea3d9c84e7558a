"""`carecoin doctor` against real node processes: a healthy running network passes; a peer whose clock is off
by more than the consensus bound fails the clock check naming that peer and the fix."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e


def doctor(config) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "cli.main", "doctor", "--config", str(config), "--json"],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    return proc.returncode, json.loads(proc.stdout)


def by_name(doc: dict) -> dict:
    return {c["name"]: c for c in doc["checks"]}


def test_doctor_passes_on_a_running_network_and_names_a_peer_with_a_skewed_clock(network_factory, monkeypatch):
    net = network_factory(4)
    monkeypatch.setenv("CARECOIN_CLOCK_OFFSET_MS", "6000")
    net.start(1)
    monkeypatch.delenv("CARECOIN_CLOCK_OFFSET_MS")
    for i in (0, 2, 3):
        net.start(i)
    for i in range(4):
        net.wait_ready(i)
    net.wait_height([0, 2, 3], 2, timeout_s=30)

    code, doc = doctor(net.dir / net.names[0] / "node.toml")
    checks = by_name(doc)
    assert code == 1 and not doc["ok"]
    assert checks["store"]["level"] == "ok" and "running" in checks["store"]["message"]
    assert checks["api port"]["level"] == "ok" and "held by this node" in checks["api port"]["message"]
    for name in net.names[1:]:
        assert checks[f"peer {name}"]["level"] == "ok" and "key checked" in checks[f"peer {name}"]["message"]
    assert checks["peers"]["level"] == "ok"
    skewed = checks[f"clock vs {net.names[1]}"]
    assert skewed["level"] == "fail" and "NTP" in skewed["fix"]
    assert checks[f"clock vs {net.names[2]}"]["level"] == "ok"
    assert [c["name"] for c in doc["checks"] if c["level"] == "fail"] == [f"clock vs {net.names[1]}"]

    net.stop(1)
    net.start(1)  # a true clock now
    net.wait_ready(1)
    code, doc = doctor(net.dir / net.names[0] / "node.toml")
    assert code == 0 and doc["ok"], [c for c in doc["checks"] if c["level"] != "ok"]
