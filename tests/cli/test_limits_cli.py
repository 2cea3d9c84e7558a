"""The gaming cases of the limits, tried as one would: `carecoin tx` with CliRunner against a live in-process node
(one branch). Splitting a transfer into 9,999s does not avoid the second factor, and three complaint tickets on
one order do not pay three compensation caps."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.keys import KeyPair, save_key
from tests.node.live_node import LiveNode
from tests.node.local_chain import LocalChain, h


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A one-branch chain: a north clerk, Alice (KYC 2) with 60,000 coins and a confirmed order with three
    complaint tickets the clerk opened on it; then a live node serving it."""
    tmp = tmp_path_factory.mktemp("limits")
    c = LocalChain(tmp / "db")
    clerk, alice, second, bob = (KeyPair.generate() for _ in range(4))
    c.block(c.tx(c.admin, "propose-grant-role", ["clerk", clerk.public_key, "staff", "north"]))
    c.block(c.tx(clerk, "register-customer", [alice.public_key, 2, h("commitment")]),
            c.tx(c.issuer, "mint", [alice.public_key, 60_000]))
    c.block(c.tx(clerk, "create-order", ["O1", alice.public_key, 10_000, "EUR", h("items")]))
    c.block(c.tx(alice, "pay-order", ["O1", 0]))
    c.block(c.tx(clerk, "confirm-order", ["O1"]))
    results = c.block(*(c.tx(clerk, "open-ticket", [f"T{i}", "complaint", 2, "O1", h(f"late {i}")])
                        for i in (1, 2, 3)))
    assert all(r.status == 0 for r in results), results
    c.store.close()
    files = {}
    for name, key in (("clerk", clerk), ("alice", alice), ("second", second), ("bob", bob)):
        files[name] = str(tmp / f"{name}.key")
        save_key(files[name], key)
    node = LiveNode(c.node, c.genesis, tmp / "db")
    yield node, files, {"alice": alice, "second": second, "bob": bob}
    node.close()


def tx(node: LiveNode, *args: str) -> dict:
    result = CliRunner().invoke(main, ["tx", *args, "--node", node.url, "--wait", "--timeout", "20", "--json"])
    doc = json.loads(result.output)
    assert result.exit_code == (1 if doc["outcome"] == "failed" else 0), (args, result.output)  # refused: exit 1
    return doc


def account(node: LiveNode, who: KeyPair, key_file: str) -> dict:
    """``who``'s account document, read with ``key_file`` (their own key, or staff of their branch)."""
    result = CliRunner().invoke(main, ["account", "show", who.public_key.hex(), "--node", node.url, "--json",
                                       "--key", key_file])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_customer_splitting_transfers_of_9999_is_stopped_by_the_second_factor_at_the_second_one(world):
    node, files, keys = world
    bob = keys["bob"].public_key.hex()
    first = tx(node, "transfer", "--key", files["alice"], "--to", bob, "--amount", "9999")
    assert first["outcome"] == "applied"
    second = tx(node, "transfer", "--key", files["alice"], "--to", bob, "--amount", "9999")
    assert (second["outcome"], second["reason"]) == ("failed", "second_factor_required")
    assert tx(node, "set-second-factor", "--key", files["alice"], "--second-public-key",
              keys["second"].public_key.hex())["outcome"] == "applied"
    for _ in range(5):  # with the second key, the rest of the split goes through
        done = tx(node, "transfer", "--key", files["alice"], "--second-key", files["second"], "--to", bob,
                  "--amount", "9999")
        assert done["outcome"] == "applied", done
    assert account(node, keys["bob"], files["bob"])["balance"] == 6 * 9_999


def test_staff_compensating_three_tickets_on_one_order_stop_at_the_cap_per_customer(world):
    node, files, keys = world
    paid = [tx(node, "compensate", "--key", files["clerk"], "--ticket-id", f"T{i}", "--amount", "2000")
            for i in (1, 2, 3)]
    assert [d["outcome"] for d in paid] == ["applied", "applied", "failed"]
    assert paid[2]["reason"] == "customer_compensation_cap_exceeded"
    doc = account(node, keys["alice"], files["clerk"])
    assert doc["tier"] == "base" and doc["tier_earned"] == 100  # the order's 100 coins; compensation is no earning
