"""A real node process with ``[node] verify_workers = 1``: it checks a batch's signatures in a worker process,
commits what it admitted, and leaves no worker behind when it stops."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from ledger import codec
from ledger.keys import KeyPair
from ledger.tx import make_tx
from tests.e2e.conftest import Network, http_json

pytestmark = pytest.mark.e2e


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out.update(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_node_with_one_verify_worker_commits_a_batch_and_stops_leaving_no_child_process(tmp_path):
    net = Network(tmp_path, 1)
    try:
        path = net.dir / net.names[0] / "node.toml"
        doc = tomllib.loads(path.read_text())
        doc["node"]["verify_workers"] = 1
        path.write_text(tomli_w.dumps(doc))
        net.start_all()
        node_pid = net.procs[0].pid
        net.wait_until("the verify worker answering", lambda: "signature checks run in 1 worker" in net.tail(0, 200),
                       timeout_s=60)
        workers = children(node_pid)
        assert len(workers) >= 1, "no worker process under the node"
        issuer = net.key(0, "issuer")
        txs = [make_tx(net.chain_id, "mint", issuer, n, [KeyPair.generate().public_key, n]) for n in range(1, 151)]
        bad = codec.encode([txs[10].body.to_list(), [[issuer.public_key, bytes(64)]]])
        raws = [t.raw for t in txs[:10]] + [bad] + [t.raw for t in txs[10:]]
        code, doc = http_json(net.apis[0] + "/v1/txs", {"txs": [r.hex() for r in raws]}, timeout_s=30)
        assert code == 200, doc
        results = doc["results"]
        assert results[10]["error"]["code"] == "tx_rejected" and "does not verify" in results[10]["error"]["message"]
        assert [r.get("tx_hash") for r in results[:10] + results[11:]] == [t.tx_hash.hex() for t in txs]
        net.wait_committed(0, txs[-1].tx_hash, timeout_s=30)
        assert net.stop(0, timeout_s=15) == 0
        deadline = time.monotonic() + 5
        while any(is_running(p) for p in workers):
            assert time.monotonic() < deadline, f"worker processes {workers} outlived the node"
            time.sleep(0.05)
        assert "verifying in the event loop" not in net.tail(0, 400)  # the pool served; no fallback
    finally:
        net.close()
