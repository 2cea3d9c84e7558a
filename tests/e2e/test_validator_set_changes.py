"""Validator-set changes on real node processes: governance adds a fifth branch, then removes an original one.

Four nodes under a light continuous load (mints from two issuers over HTTP). Branch-4 is stopped first. The
fifth branch is prepared with `carecoin network add-branch` and added by running the governance commands it
prints (one admin proposes, admins of a quorum of branches approve, through the CLI); its node, started with
`carecoin node start`, catches up and seals. Then branch-3 is removed (3 of the 4 governing branches approve:
branch-5 has no admin yet) and stopped, and branch-4 restarts and catches up through both changes. No fork, no lost acknowledged tx, and receipts
from before, between and after the changes verify offline with only genesis.json.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from cli.network import add_branch
from ledger.block import validator_set_hash
from ledger.tx import make_tx
from tests.e2e.conftest import Network, http_json

pytestmark = pytest.mark.e2e


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def tx_cli(command: str) -> dict:
    """Run a printed `carecoin tx ... --wait` command; it must commit as applied."""
    doc = json.loads(cli(*shlex.split(command)[1:], "--json", "--timeout", "20"))
    assert (doc["status"], doc["outcome"]) == ("committed", "applied"), (command, doc)
    return doc


class Load:
    """Mints from the issuers of branches 1 and 2, each to its own node, a few per second, until stopped.

    A tx counts as acknowledged when its node answered 202; each issuer keeps its nonces in order.
    """

    def __init__(self, net: Network, nodes=(0, 1), period_s: float = 0.15) -> None:
        self.net, self.nodes, self.period_s = net, nodes, period_s
        self.acked: list[tuple[float, bytes]] = []  # (monotonic time, tx hash)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in nodes]

    def _run(self, i: int) -> None:
        issuer, nonce = self.net.key(i, "issuer"), 1
        while not self._stop.is_set():
            tx = make_tx(self.net.chain_id, "mint", issuer, nonce, [issuer.public_key, 1])
            code, _ = http_json(self.net.apis[i] + "/v1/tx", {"tx": tx.raw.hex()})
            if code == 202:
                self.acked.append((time.monotonic(), tx.tx_hash))
                nonce += 1
            self._stop.wait(self.period_s)

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def last_acked_after(self, t0: float) -> bytes:
        return next(h for t, h in reversed(self.acked) if t >= t0)


def add_node(net: Network, name: str, config: Path) -> int:
    """Make the Network fixture run one more node (the new branch's)."""
    from node.config import load_config
    cfg = load_config(config)
    net.names.append(name)
    net.apis.append(f"http://{cfg.api.host}:{cfg.api.port}")
    net.procs.append(None)
    net.logs.append(net.root / f"{name}.log")
    net.count += 1
    return net.count - 1


def certificate_signers(net: Network, i: int, height: int) -> set[str]:
    code, doc = net.get(i, f"/v1/blocks/{height}")
    assert code == 200, (height, doc)
    return {s["validator"] for s in doc["certificate"]}


def header_sets(net: Network, i: int, height: int) -> tuple[str, str]:
    code, doc = net.get(i, f"/v1/blocks/{height}")
    assert code == 200, (height, doc)
    return doc["validator_set_hash"], doc["next_validator_set_hash"]


def verify_receipt_offline(net: Network, tx_hash: bytes, tmp: Path) -> str:
    """`carecoin receipt get` from a node, then `carecoin receipt verify` given only genesis.json."""
    out = tmp / f"{tx_hash.hex()[:16]}.json"
    cli("receipt", "get", tx_hash.hex(), "-o", str(out), "--node", net.apis[0], "--key",
        str(net.dir / "company" / "auditor.key"))
    text = cli("receipt", "verify", str(out), "--genesis", str(net.summary.genesis_path))
    assert text.startswith("valid receipt"), text
    return text


def wait_signs(net: Network, i: int, key_hex: str, after: int, timeout_s: float = 30.0) -> int:
    """The first height above ``after`` whose certificate node ``i`` serves carries ``key_hex``'s seal."""
    def check():
        for h in range(after + 1, net.height(i) + 1):
            if key_hex in certificate_signers(net, i, h):
                return h
        return None
    return net.wait_until(f"a seal of {key_hex[:16]} above height {after}", check, timeout_s, 0.3)


def test_governance_adds_a_branch_then_removes_one_and_every_node_follows(network_factory, tmp_path):
    net = network_factory(4)
    net.start_all()
    genesis_keys = [v.public_key.hex() for v in net.genesis.validators]
    with Load(net) as load:
        net.wait_until("some load committed", lambda: len(load.acked) >= 4, 20)
        net.stop(3)  # branch-4 sleeps through both changes
        t_before = time.monotonic()
        net.wait_until("a mint acknowledged", lambda: load.acked and load.acked[-1][0] >= t_before, 10)
        before_tx = load.last_acked_after(t_before)
        net.wait_committed(0, before_tx)

        # ---- add branch-5: prepared by add-branch, decided by the commands it prints
        new = add_branch(net.dir, "branch-5")
        five = add_node(net, "branch-5", new.config_path)
        propose, approve1, approve2, start = new.commands[:4]
        tx_cli(propose)
        tx_cli(approve1)
        decided = tx_cli(approve2)["height"]
        assert start.endswith(str(new.config_path))
        net.start(five)  # the same `carecoin node start --config ...` as printed
        net.wait_ready(five)
        # the new node catches up and seals from decided + 2 on; its seal appears in later certificates
        joined = wait_signs(net, 0, new.node_key.hex(), decided + 1)
        assert header_sets(net, 0, decided + 1)[1] == validator_set_hash(
            [bytes.fromhex(k) for k in genesis_keys] + [new.node_key]).hex()
        assert all(new.node_key.hex() not in certificate_signers(net, 0, h) for h in range(1, decided + 2))
        t_between = time.monotonic()
        net.wait_until("a mint acknowledged", lambda: load.acked[-1][0] >= t_between, 10)
        between_tx = load.last_acked_after(t_between)
        net.wait_committed(0, between_tx)

        # ---- remove branch-3 (branch-5 has no admin yet, so the 4 governing branches decide with a quorum of
        # 3: branch-1 proposes, branches 2 and 3 approve)
        removed = net.genesis.validators[2].public_key
        admin = {i: str(net.dir / net.names[i] / "keys" / "admin.key") for i in range(4)}
        node0 = net.apis[0]
        tx_cli(f"carecoin tx propose-remove-validator --node {node0} --key {admin[0]} --proposal-id rm-3 "
               f"--node-public-key {removed.hex()} --wait")
        tx_cli(f"carecoin tx approve-proposal --node {net.apis[1]} --key {admin[1]} --proposal-id rm-3 --wait")
        decided_rm = tx_cli(f"carecoin tx approve-proposal --node {node0} --key {admin[2]} --proposal-id rm-3 "
                            f"--wait")["height"]
        net.wait_height([0, 1, five], decided_rm + 2)
        net.stop(2)  # it left the set: the rest (3 of 4 running) go on without it
        t_after = time.monotonic()
        net.wait_until("a mint acknowledged", lambda: load.acked[-1][0] >= t_after, 10)
        after_tx = load.last_acked_after(t_after)
        for h in range(decided_rm + 2, net.height(0) + 1):
            assert removed.hex() not in certificate_signers(net, 0, h)

        # ---- branch-4 comes back and catches up through both changes, then seals again
        net.start(3)
        net.wait_ready(3)
        top = net.height(0)
        net.wait_height([3], top, 30)
        wait_signs(net, 3, genesis_keys[3], top)  # a member again: it seals (its own certificates hold it)
    running = [0, 1, 3, five]
    for tx_hash in [h for _, h in load.acked]:
        net.wait_committed(0, tx_hash, 20)  # no acknowledged tx is lost
    upto = min(net.height(i) for i in running)
    net.assert_same_hashes(running, upto)  # no fork, through both changes
    assert joined > decided + 1
    for changes, tx_hash in enumerate((before_tx, between_tx, after_tx)):
        text = verify_receipt_offline(net, tx_hash, tmp_path)
        assert f"validator_set_changes: {changes} validator-set change(s) walked" in text, text


def test_a_single_admins_proposal_without_approvals_changes_nothing(network_factory):
    net = network_factory(4)
    net.start_all()
    new = add_branch(net.dir, "branch-5")
    doc = tx_cli(new.commands[0])  # the proposal alone: one branch of the three needed
    net.wait_height(range(4), doc["height"] + 3)
    sets = {header_sets(net, 0, h) for h in range(doc["height"], doc["height"] + 4)}
    assert sets == {(net.genesis.validator_set_hash.hex(), net.genesis.validator_set_hash.hex())}
    code, status = net.get(0, "/v1/status")
    assert code == 200
    for h in range(doc["height"], doc["height"] + 4):
        assert new.node_key.hex() not in certificate_signers(net, 0, h)
