"""Refund with clawback and debt through `carecoin tx` and `carecoin account show` against a live in-process
node: the headline attack of issue 12 (earn 20,000 coins, move 19,998 away, refund) leaves a visible debt."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.keys import KeyPair, save_key
from tests.node.live_node import LiveNode
from tests.node.local_chain import LocalChain, h


@pytest.fixture
def shop(tmp_path):
    """One branch with a clerk (staff of north) and Alice, a KYC 2 customer with a second-factor key."""
    c = LocalChain(tmp_path / "db")
    clerk, alice, second = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    c.block(c.tx(c.admin, "propose-grant-role", ["clerk", clerk.public_key, "staff", "north"]))
    c.block(c.tx(clerk, "register-customer", [alice.public_key, 2, h("commitment")]),
            c.tx(alice, "set-second-factor", [second.public_key]))
    c.store.close()
    files = {}
    for name, k in (("clerk", clerk), ("alice", alice), ("second", second)):
        files[name] = str(tmp_path / f"{name}.key")
        save_key(files[name], k)
    node = LiveNode(c.node, c.genesis, tmp_path / "db")
    yield node, files, clerk, alice
    node.close()


def run(*args: str, expect: int = 0) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == expect, (args, result.output)
    return result.output


def send(node: LiveNode, key_file: str, kind: str, *args: str, expect: int = 0) -> dict:
    return json.loads(run("tx", kind, "--key", key_file, *args, "--node", node.url, "--wait", "--timeout", "20",
                          "--json", expect=expect))


def test_customer_who_moved_earned_coins_away_then_refunded_is_shown_in_debt_and_cannot_send(shop):
    node, files, clerk, alice = shop
    assert send(node, files["clerk"], "create-order", "--order-id", "BIG", "--customer", alice.public_key.hex(),
                "--fiat-amount", "2000000", "--items", "one television")["status"] == "committed"
    send(node, files["alice"], "pay-order", "--order-id", "BIG", "--coins", "0")
    send(node, files["clerk"], "confirm-order", "--order-id", "BIG")
    account = json.loads(run("account", "show", alice.public_key.hex(), "--node", node.url, "--json",
                             "--key", files["alice"]))
    assert (account["balance"], account["debt"]) == (20_000, 0)

    moved = send(node, files["alice"], "transfer", "--second-key", files["second"], "--to", clerk.public_key.hex(),
                 "--amount", "19998")
    refund = send(node, files["alice"], "request-refund", "--second-key", files["second"], "--order-id", "BIG",
                  "--reason", "changed my mind")
    assert (moved["reason"], refund["reason"]) == ("", "")
    account = json.loads(run("account", "show", alice.public_key.hex(), "--node", node.url, "--json",
                             "--key", files["alice"]))
    assert (account["balance"], account["debt"]) == (0, 19_998)
    assert "debt: 19998" in run("account", "show", alice.public_key.hex(), "--node", node.url, "--key", files["clerk"])
    order = json.loads(run("order", "show", "BIG", "--node", node.url, "--json", "--key", files["clerk"]))
    assert (order["status"], order["clawed_back"], order["debt_incurred"], order["fiat_refunded"]) == (
        "refunded", 2, 19_998, 2_000_000)
    history = json.loads(run("history", alice.public_key.hex(), "--node", node.url, "--json",
                             "--key", files["alice"]))
    refund_item = next(i for i in history["items"] if i["tx_hash"] == refund["tx_hash"])
    assert ["debt_incurred", alice.public_key.hex(), 19_998, "refund:BIG", 19_998] in refund_item["events"]

    refused = send(node, files["alice"], "transfer", "--to", clerk.public_key.hex(), "--amount", "1", expect=1)
    assert refused["reason"] == "in_debt" and refused["detail"]
