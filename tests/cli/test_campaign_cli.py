"""Campaigns end to end through the CLI on a live one-branch node (its admin is a quorum): `gov propose campaign`
decides a bonus, `gov show` describes it, a confirmed order pays the bonus (seen in the account and history),
`gov campaigns` shows what is left of the budget, and a campaign's coupon is issued and redeemed."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.keys import KeyPair, save_key
from tests.node.live_node import LiveNode
from tests.node.local_chain import LocalChain


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("campaign-cli")
    chain = LocalChain(tmp / "db")
    chain.store.close()
    live = LiveNode(chain.node, chain.genesis, tmp / "db")
    live.files = {}
    live.alice = KeyPair.generate()
    for name, key in (("admin", chain.admin), ("staff", chain.staff), ("issuer", chain.issuer),
                      ("alice", live.alice)):
        live.files[name] = str(tmp / f"{name}.key")
        save_key(live.files[name], key)
    yield live
    live.close()


def run(*args: str, expect: int = 0) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == expect, (args, result.output)
    return result.output


def tx(node: LiveNode, who: str, kind: str, *args: str) -> dict:
    doc = json.loads(run("tx", kind, *args, "--key", node.files[who], "--node", node.url, "--wait", "--timeout",
                         "20", "--json"))
    assert doc["outcome"] == "applied", doc
    return doc


def test_a_campaign_decided_through_the_cli_pays_a_bonus_on_a_confirmed_order(node):
    out = run("gov", "propose", "campaign", "--proposal-id", "welcome-p", "--campaign-id", "welcome",
              "--trigger", "order_confirmed", "--effect", "bonus", "--amount", "250", "--budget", "1000",
              "--currency", "EUR", "--key", node.files["admin"], "--node", node.url, "--wait", "--timeout", "20")
    assert re.search(r"decided at height \d+: campaign welcome runs from \d+ with a budget of 1000", out)
    shown = run("gov", "show", "welcome-p", "--node", node.url)
    assert ("proposal welcome-p (campaign): campaign welcome: on order_confirmed, a bonus of 250 coins; "
            "1 per customer, budget 1000; only in EUR") in shown

    alice = node.alice.public_key.hex()
    tx(node, "staff", "register-customer", "--customer", alice, "--kyc-level", "1", "--commitment", "11" * 32)
    tx(node, "staff", "create-order", "--order-id", "O1", "--customer", alice, "--fiat-amount", "10000",
       "--currency", "EUR", "--items", "a teapot")
    tx(node, "alice", "pay-order", "--order-id", "O1", "--coins", "0")
    tx(node, "staff", "confirm-order", "--order-id", "O1")

    account = json.loads(run("account", "show", alice, "--node", node.url, "--json", "--key", node.files["alice"]))
    assert account["balance"] == 100 + 250  # earned on 10,000 at 1 %, plus the campaign's bonus
    items = json.loads(run("history", alice, "--node", node.url, "--json", "--key", node.files["alice"]))["items"]
    confirm = next(i for i in items if i["kind"] == "confirm-order")
    assert ["credited", alice, 250, "campaign"] in [e[:4] for e in confirm["events"]]
    assert ["campaign_applied", "welcome", alice, "bonus", 250, "O1"] in confirm["events"]
    listed = run("gov", "campaigns", "--node", node.url)
    assert re.search(r"welcome\s+on order_confirmed\s+bonus 250  budget 750 of 1000 left, 1 per customer; "
                     r"only currency EUR", listed)


def test_a_coupon_campaign_lets_the_issuer_issue_a_coupon_the_customer_redeems_once(node):
    run("gov", "propose", "campaign", "--campaign-id", "spring", "--trigger", "feedback", "--effect", "coupon",
        "--amount", "500", "--budget", "5000", "--coupon-currency", "EUR", "--coupon-lifetime-ms", "86400000",
        "--key", node.files["admin"], "--node", node.url, "--wait", "--timeout", "20")
    listed = json.loads(run("gov", "campaigns", "--node", node.url, "--json"))
    spring = next(c for c in listed["items"] if c["campaign_id"] == "spring")
    tx(node, "issuer", "issue-coupon", "--coupon-id", "SPRING", "--campaign", "spring", "--value", "500",
       "--currency", "EUR", "--expires-at-ms", str(spring["starts_at_ms"] + 3_600_000), "--total", "10")
    alice = node.alice.public_key.hex()
    tx(node, "staff", "create-order", "--order-id", "O2", "--customer", alice, "--fiat-amount", "2000",
       "--currency", "EUR", "--items", "cups")
    tx(node, "alice", "redeem-coupon", "--coupon-id", "SPRING", "--order-id", "O2")
    order = json.loads(run("order", "show", "O2", "--node", node.url, "--json", "--key", node.files["alice"]))
    assert order["discount"] == 500
    doc = json.loads(run("gov", "campaigns", "--node", node.url, "--json"))
    assert next(c for c in doc["items"] if c["campaign_id"] == "spring")["remaining"] == 0  # 10 × 500 reserved
