"""Backup and restore of a real node process: a stopped node is backed up, loses its disk later, is restored
from the backup, starts, catches up past what it missed and serves receipts of txs from before and after."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from ledger.keys import KeyPair
from ledger.receipt import verify
from ledger.tx import make_tx
from tests.e2e.conftest import ROOT, http_json

pytestmark = pytest.mark.e2e


def carecoin(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=str(ROOT), capture_output=True, text=True,
                          timeout=60)


def test_a_node_restored_from_its_backup_catches_up_and_serves_receipts(network4, tmp_path):
    net = network4
    alice = KeyPair.generate()
    before = make_tx(net.chain_id, "mint", net.key(0, "issuer"), 1, [alice.public_key, 100])
    net.submit(0, before)
    net.wait_committed(3, before.tx_hash)
    config = str(net.dir / net.names[3] / "node.toml")

    refused = carecoin("node", "backup", "--config", config, "--out", str(tmp_path / "live"))
    assert refused.returncode == 1 and "in use by a running node; stop it first" in refused.stderr

    assert net.stop(3) == 0
    done = carecoin("node", "backup", "--config", config, "--out", str(tmp_path / "backup"), "--json")
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    backed_height = manifest["head"]["height"]
    net.start(3)
    net.wait_ready(3)

    after = make_tx(net.chain_id, "mint", net.key(1, "issuer"), 1, [alice.public_key, 50])
    net.submit(1, after)
    doc = net.wait_committed(3, after.tx_hash)
    assert doc["height"] > backed_height
    net.kill(3)  # ... and its disk is lost
    shutil.rmtree(net.dir / net.names[3] / "data")

    restored = carecoin("node", "restore", "--from", str(tmp_path / "backup"), "--config", config)
    assert restored.returncode == 0, restored.stderr
    assert f"at height {backed_height}" in restored.stdout
    net.start(3)
    net.wait_ready(3)
    top = max(net.height(i) for i in range(3))
    net.wait_height([3], top, timeout_s=30)
    net.assert_same_hashes(range(4), top)
    for tx in (before, after):
        code, receipt = net.get(3, f"/v1/tx/{tx.tx_hash.hex()}/receipt")
        assert code == 200 and verify(receipt, net.genesis).tx_hash == tx.tx_hash
    net.wait_until("the restored node ready", lambda: http_json(net.apis[3] + "/readyz")[0] == 200, timeout_s=20)
