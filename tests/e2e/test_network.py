"""Four real node processes on 127.0.0.1, driven over HTTP exactly as a user would."""

from __future__ import annotations

import time
import urllib.request

import pytest

from ledger.keys import KeyPair
from ledger.receipt import verify
from ledger.tx import make_tx

pytestmark = pytest.mark.e2e


def mint_from_each_branch(net, nonce: int, to: bytes, amount: int):
    """One mint per branch issuer, each submitted to that branch's node."""
    txs = []
    for i in range(net.count):
        tx = make_tx(net.chain_id, "mint", net.key(i, "issuer"), nonce, [to, amount])
        net.submit(i, tx)
        txs.append(tx)
    return txs


def test_txs_sent_to_different_nodes_commit_everywhere_with_the_same_chain(network4):
    net = network4
    alice, bob = KeyPair.generate(), KeyPair.generate()
    txs = mint_from_each_branch(net, 1, alice.public_key, 1000)
    for tx in txs:
        net.wait_committed(0, tx.tx_hash)
    transfers = [make_tx(net.chain_id, "transfer", alice, n, [bob.public_key, 10 * n, bytes([n]) * 32])
                 for n in (1, 2, 3)]
    for n, tx in enumerate(transfers):
        net.submit(n + 1, tx)  # nodes 2, 3, 4: gossip brings them to whoever proposes
    docs = [net.wait_committed(3, tx.tx_hash) for tx in transfers]
    assert all(d["outcome"] == "applied" for d in docs), docs
    top = max(d["height"] for d in docs)
    net.wait_height(range(4), top)
    net.assert_same_hashes(range(4), top)
    for i in range(4):
        code, acct = net.get(i, f"/v1/accounts/{bob.public_key.hex()}")
        assert code == 200 and acct["balance"] == 60
        code, acct = net.get(i, f"/v1/accounts/{alice.public_key.hex()}")
        assert acct["balance"] == 4000 - 60 and acct["nonce"] == 3
    # A receipt from any node verifies offline with nothing but the genesis file.
    for i, tx in enumerate(txs + transfers):
        code, receipt = net.get(i % 4, f"/v1/tx/{tx.tx_hash.hex()}/receipt")
        assert code == 200
        assert verify(receipt, net.genesis).tx_hash == tx.tx_hash


def test_one_node_killed_the_rest_commit_and_it_catches_up_after_restart(network4):
    net = network4
    alice = KeyPair.generate()
    first = mint_from_each_branch(net, 1, alice.public_key, 5)
    net.wait_committed(0, first[-1].tx_hash)
    net.kill(3)
    issuers = [net.key(i, "issuer") for i in range(3)]
    later = [make_tx(net.chain_id, "mint", issuers[i], 2, [alice.public_key, 7]) for i in range(3)]
    for i, tx in enumerate(later):
        net.submit(i, tx)
    for tx in later:
        net.wait_committed(1, tx.tx_hash, timeout_s=30)
    top = net.height(0)
    net.start(3)
    net.wait_ready(3)
    net.wait_height([3], top, timeout_s=30)
    net.assert_same_hashes(range(4), top)
    metrics = urllib.request.urlopen(net.apis[3] + "/metrics", timeout=3).read().decode()
    synced = [line for line in metrics.splitlines() if line.startswith("carecoin_synced_blocks_total ")]
    assert synced and float(synced[0].split()[1]) >= 1, synced  # it caught up through certified blocks
    code, doc = net.get(3, f"/v1/tx/{later[0].tx_hash.hex()}")
    assert code == 200 and doc["status"] == "committed"
    # ...and it votes again: a tx sent to it commits everywhere.
    tx = make_tx(net.chain_id, "mint", net.key(3, "issuer"), 2, [alice.public_key, 1])
    net.submit(3, tx)
    net.wait_committed(0, tx.tx_hash, timeout_s=30)


def test_two_of_four_down_stalls_and_one_back_resumes_within_10_s(network4):
    net = network4
    alice = KeyPair.generate()
    net.wait_height(range(4), 1)
    net.kill(2)
    net.kill(3)
    time.sleep(0.5)  # let a block in flight land
    stuck = net.height(0)
    tx = make_tx(net.chain_id, "mint", net.key(0, "issuer"), 1, [alice.public_key, 9])
    net.submit(0, tx)
    time.sleep(3.0)
    assert net.height(0) <= stuck + 1 and net.height(1) <= stuck + 1, "no quorum, yet blocks were committed"
    code, doc = net.get(0, f"/v1/tx/{tx.tx_hash.hex()}")
    assert doc["status"] == "pending", doc
    net.start(2)
    net.wait_ready(2)
    t0 = time.monotonic()
    net.wait_committed(0, tx.tx_hash, timeout_s=10)
    assert time.monotonic() - t0 <= 10.0
    top = net.height(0)
    net.wait_height([1, 2], top, timeout_s=10)
    net.assert_same_hashes([0, 1, 2], top)


def test_all_stopped_and_restarted_the_chain_continues_without_loss_or_duplicates(network4):
    net = network4
    alice = KeyPair.generate()
    sent = mint_from_each_branch(net, 1, alice.public_key, 100)
    sent += mint_from_each_branch(net, 2, alice.public_key, 10)
    for tx in sent:
        net.wait_committed(0, tx.tx_hash)
    before = max(net.height(i) for i in range(4))
    for i in range(4):
        assert net.stop(i) == 0, net.tail(i)
    net.start_all()
    top = max(net.height(i) for i in range(4))
    assert top >= before >= 1  # the chain continues from its last block (an idle chain makes few blocks)
    more = mint_from_each_branch(net, 3, alice.public_key, 1)
    for tx in more:
        net.wait_committed(2, tx.tx_hash, timeout_s=30)
    final = net.height(2)
    net.wait_height(range(4), final)
    net.assert_same_hashes(range(4), final)
    locations = set()
    for tx in sent + more:
        code, doc = net.get(1, f"/v1/tx/{tx.tx_hash.hex()}")
        assert doc["status"] == "committed" and doc["outcome"] == "applied", doc
        locations.add((doc["height"], doc["index"]))
    assert len(locations) == len(sent + more)  # each tx once, at its own place
    code, acct = net.get(0, f"/v1/accounts/{alice.public_key.hex()}")
    assert acct["balance"] == 4 * 100 + 4 * 10 + 4 * 1


def test_a_second_node_on_the_same_data_dir_is_refused(network4):
    import subprocess
    import sys
    from tests.e2e.conftest import ROOT
    net = network4
    out = subprocess.run([sys.executable, "-m", "cli.node", "start", "--config",
                          str(net.dir / net.names[0] / "node.toml")],
                         cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "in use by another node" in out.stderr
    assert net.height(0) >= 0  # the first node is unharmed
