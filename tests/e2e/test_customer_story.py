"""A whole customer story on 4 real nodes, played through the CLI as branch staff and a customer would.

Register (personal data into branch 1's vault), order, a coupon campaign decided by governance, its coupon (twice:
the second is refused), pay partly in coins, confirm and earn, complaint ticket, response, compensation,
resolution, feedback reward, refund inside the window and one outside it, coin expiry at block time under a short policy
lifetime, freeze and a refused transfer; then the read commands, receipts of several steps verified offline, and
a balance proof.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.genesis import load_genesis
from ledger.keys import KeyPair, save_key
from ledger.receipt import verify as verify_receipt
from tests.e2e.conftest import Network

PERSON = {"name": "Amélie Poulain", "email": "amelie@montmartre.example", "phone": "+33 1 42 00 00 00"}


def cli(*args: str, expect: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == expect, (args, result.output)
    return result.output


class Story:
    """CLI helpers bound to a running network: keys on disk, txs with --wait --json, reads with --json."""

    def __init__(self, net: Network, tmp: Path) -> None:
        self.net, self.tmp = net, tmp
        self.files: dict[str, str] = {name: str(net.dir / net.names[0] / "keys" / f"{name}.key")
                                      for name in ("admin", "issuer", "staff")}
        # the admins of three of the four branches: governance needs a quorum of 3 distinct branches
        self.files.update({f"admin{i}": str(net.dir / net.names[i] / "keys" / "admin.key") for i in range(3)})
        self.files["auditor"] = str(net.dir / "company" / "auditor.key")  # reads every account and block
        self.keys: dict[str, KeyPair] = {}
        self.proposals = 0

    def govern(self, action: str, *args: str) -> dict:
        """Decide ``action`` by governance: branch-1's admin proposes, two other branches' admins approve."""
        self.proposals += 1
        pid = f"p{self.proposals}"
        self.ok(f"propose-{action}", "admin0", "--proposal-id", pid, *args)
        self.ok("approve-proposal", "admin1", "--proposal-id", pid, node=1)
        return self.ok("approve-proposal", "admin2", "--proposal-id", pid, node=2)

    def new_key(self, name: str) -> KeyPair:
        key = KeyPair.generate()
        path = self.tmp / f"{name}.key"
        save_key(path, key)
        self.files[name], self.keys[name] = str(path), key
        return key

    def tx(self, kind: str, who: str, *args: str, node: int = 0, expect: int = 0) -> dict:
        doc = json.loads(cli("tx", kind, "--key", self.files[who], "--node", self.net.apis[node], "--wait",
                             "--timeout", "20", "--json", *args, expect=expect))
        assert doc["status"] == "committed", doc
        return doc

    def ok(self, kind: str, who: str, *args: str, node: int = 0) -> dict:
        doc = self.tx(kind, who, *args, node=node)
        assert doc["outcome"] == "applied", (kind, doc)
        return doc

    def refused(self, kind: str, who: str, reason: str, *args: str, node: int = 0) -> dict:
        doc = self.tx(kind, who, *args, node=node, expect=1)  # a rule refused it: exit 1, with the rule's message
        assert (doc["outcome"], doc["reason"]) == ("failed", reason), (kind, doc)
        assert doc["detail"], (kind, doc)
        return doc

    def read(self, *args: str, node: int = 0, who: str = "auditor") -> dict:
        """A read signed by ``who``'s key (default: the company auditor), as JSON."""
        return json.loads(cli(*args, "--node", self.net.apis[node], "--json", "--key", self.files[who]))

    def receipt(self, tx_hash: str, node: int = 0):
        _, doc = self.net.get(node, f"/v1/tx/{tx_hash}/receipt")
        return verify_receipt(doc, load_genesis(self.net.dir / "genesis.json"))


def setup_cast(s: Story) -> None:
    """A first-branch clerk, a compliance officer, and two customers (Alice registered with her data).

    Roles are granted by governance (issue 11): one admin's grant alone no longer takes effect.
    """
    for name in ("clerk", "officer", "alice", "bob"):
        s.new_key(name)
    s.govern("grant-role", "--account", s.keys["clerk"].hex, "--role", "staff", "--branch", s.net.names[0])
    s.govern("grant-role", "--account", s.keys["officer"].hex, "--role", "compliance")
    out = json.loads(cli("customer", "register", "--key", s.files["clerk"], "--customer", s.keys["alice"].hex,
                         "--kyc-level", "1", "--name", PERSON["name"], "--email", PERSON["email"], "--phone",
                         PERSON["phone"], "--node", s.net.apis[0], "--wait", "--json"))
    assert out["outcome"] == "applied" and len(bytes.fromhex(out["commitment"])) == 32
    s.commitment, s.register_tx = out["commitment"], out["tx_hash"]


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    net = Network(tmp_path_factory.mktemp("story-net"), 4)
    try:
        net.start_all()
        yield Story(net, tmp_path_factory.mktemp("story-keys"))
    finally:
        net.close()


def test_the_customer_story_through_the_cli(story):
    s = story
    setup_cast(s)
    alice, bob = s.keys["alice"].hex, s.keys["bob"].hex
    receipts = {}

    s.ok("mint", "issuer", "--to", alice, "--amount", "1000", node=1)
    s.ok("create-order", "clerk", "--order-id", "O1", "--customer", alice, "--fiat-amount", "10000",
         "--currency", "EUR", "--items", "2 mugs, 1 teapot", node=2)
    # Coupons belong to a campaign governance decided (its own trigger, registration, has passed for Alice)
    s.govern("campaign", "--campaign-id", "spring", "--trigger", "registration", "--effect", "coupon", "--amount",
             "500", "--budget", "50000", "--coupon-currency", "EUR", "--coupon-lifetime-ms", str(2 * 86_400_000))
    s.ok("issue-coupon", "admin", "--coupon-id", "SPRING", "--campaign", "spring", "--value", "500",
         "--currency", "EUR", "--expires-at-ms", str(int(time.time() * 1000) + 86_400_000), "--total", "100")
    s.ok("redeem-coupon", "alice", "--coupon-id", "SPRING", "--order-id", "O1", node=3)
    s.refused("redeem-coupon", "alice", "coupon_limit_reached", "--coupon-id", "SPRING", "--order-id", "O1")
    receipts["pay"] = s.ok("pay-order", "alice", "--order-id", "O1", "--coins", "400", node=1)["tx_hash"]
    receipts["confirm"] = s.ok("confirm-order", "clerk", "--order-id", "O1", node=2)["tx_hash"]
    order = s.read("order", "show", "O1", node=3, who="alice")
    assert order["status"] == "confirmed" and order["discount"] == 500 and order["coins_paid"] == 400
    assert order["earned"] == 9_100 * 100 * 100 // 1_000_000 == 91

    # A complaint: response, compensation, resolution, feedback rewarded once.
    s.ok("open-ticket", "alice", "--ticket-id", "T1", "--category", "complaint", "--priority", "2",
         "--order-id", "O1", "--content", "the teapot arrived cracked")
    s.ok("respond-ticket", "clerk", "--ticket-id", "T1", "--content", "sorry, a new one is on its way", node=1)
    receipts["compensate"] = s.ok("compensate", "clerk", "--ticket-id", "T1", "--amount", "300")["tx_hash"]
    s.refused("compensate", "clerk", "compensation_cap_exceeded", "--ticket-id", "T1", "--amount", "5000")
    s.ok("resolve-ticket", "clerk", "--ticket-id", "T1", "--resolution", "replacement delivered", node=2)
    s.ok("submit-feedback", "alice", "--target-kind", "ticket", "--target-id", "T1", "--rating", "5",
         "--comment", "quick and kind")
    s.refused("submit-feedback", "alice", "already_rewarded", "--target-kind", "ticket", "--target-id", "T1",
              "--rating", "5")
    ticket = s.read("ticket", "show", "T1", node=1, who="clerk")
    assert ticket["state"] == "resolved" and ticket["compensated"] == 300 and ticket["rating"] == 5
    assert 0 < ticket["first_response_ms"] <= ticket["resolution_ms"]

    # Refunds: one inside the window, then one outside a 1 ms window.
    s.ok("create-order", "clerk", "--order-id", "O2", "--customer", alice, "--fiat-amount", "2000")
    s.ok("pay-order", "alice", "--order-id", "O2", "--coins", "100")
    receipts["refund"] = s.ok("request-refund", "alice", "--order-id", "O2", "--reason", "wrong size",
                              node=3)["tx_hash"]
    assert s.read("order", "show", "O2", who="alice")["status"] == "refunded"
    s.govern("set-policy", "--name", "refund_window_ms", "--value", "1")
    s.ok("create-order", "clerk", "--order-id", "O3", "--customer", alice, "--fiat-amount", "1500")
    s.ok("pay-order", "alice", "--order-id", "O3", "--coins", "0")
    receipts["late_refund"] = s.refused("request-refund", "alice", "refund_window_closed", "--order-id", "O3",
                                        "--reason", "changed my mind")["tx_hash"]

    # Expiry under a short coin lifetime: Bob's lot dies at block time with nobody touching him (the block's
    # block-sweep shows the expired event in his history).
    s.govern("set-policy", "--name", "coin_lifetime_ms", "--value", "1500")
    s.ok("mint", "issuer", "--to", bob, "--amount", "70")
    s.net.wait_until("Bob's coins expired", lambda: s.read("account", "coin", bob, who="bob")["stored_balance"] == 0,
                     10)
    swept = s.read("history", bob, who="bob")["items"][0]
    assert swept["kind"] == "block-sweep" and swept["events"] == [["expired", bob, 70]]
    receipts["expiry"] = swept["tx_hash"]
    s.govern("set-policy", "--name", "coin_lifetime_ms", "--value", str(365 * 86_400_000))

    # Freeze: a frozen account cannot send.
    s.ok("freeze-account", "officer", "--account", alice, "--reason-code", "fraud_check", node=2)
    receipts["frozen"] = s.refused("transfer", "alice", "account_frozen", "--to", bob, "--amount", "10")["tx_hash"]

    # Receipts of several steps verify offline against genesis.json only.
    checked = {name: s.receipt(h, node=i % 4) for i, (name, h) in enumerate(receipts.items())}
    assert checked["late_refund"].reason == "refund_window_closed" and checked["frozen"].status != 0
    assert ["expired", s.keys["bob"].public_key, 70] in [list(e) for e in checked["expiry"].events]
    assert any(e[0] == "order_refunded" for e in checked["refund"].events)
    assert any(e[0] == "compensated" for e in checked["compensate"].events)
    out = cli("receipt", "get", receipts["confirm"], "-o", str(s.tmp / "r.json"), "--node", s.net.apis[1],
              "--key", s.files["alice"])  # her order's confirmation names her
    assert "valid receipt" in cli("receipt", "verify", str(s.tmp / "r.json"), "--genesis",
                                  str(s.net.dir / "genesis.json")), out

    # Alice's coins: 1000 minted - 400 paid + 91 earned + 300 compensation + the feedback reward - 100 paid
    # + 100 refunded; frozen.
    reward = s.read("policy", "show")["policy"]["feedback_reward"]
    balance = 1000 - 400 + 91 + 300 + reward - 100 + 100
    coin = s.read("account", "coin", alice, node=3, who="alice")
    assert coin["balance"] == balance and coin["frozen"]["reason_code"] == "fraud_check" and coin["kyc_level"] == 1
    cli("account", "proof", alice, "-o", str(s.tmp / "proof.json"), "--node", s.net.apis[2], "--key", s.files["alice"])
    proven = json.loads(cli("account", "verify-proof", str(s.tmp / "proof.json"), "--genesis",
                            str(s.net.dir / "genesis.json"), "--json"))
    assert proven["valid"] and proven["balance"] == balance and proven["frozen"] == "fraud_check"

    # The report and the customer's history agree with the story.
    report = s.read("report", "--branch", s.net.names[0], node=1, who="clerk")  # the clerk's branch
    assert report["coins"]["compensated"] == 300 and report["coins"]["earned"] == 91
    assert report["orders"]["refunded"] == 1 and report["tickets"]["by_category"]["complaint"] == 1
    assert report["ratings"]["average"] == 5 and report["tickets"]["mean_first_response_ms"] > 0
    assert s.read("report")["coins"]["expired"] == 70
    kinds = [i["kind"] for i in s.read("history", alice, node=2, who="alice")["items"]]
    for kind in ("register-customer", "pay-order", "confirm-order", "compensate", "request-refund"):
        assert kind in kinds


def test_policy_versions_and_read_refusals(story):
    s = story
    current = s.read("policy", "show")
    assert current["current_version"] >= 1
    assert s.read("policy", "show", "--version", "0")["policy"]["refund_window_ms"] == 30 * 86_400_000
    for args, needle, code in ((("ticket", "show", "T404"), "404", 3), (("order", "show", "O" * 65), "400", 3),
                               (("policy", "show", "--version", "999"), "404", 3),
                               (("customer", "show", "00" * 32), "404", 3), (("account", "coin", "xyz"), "not hex", 2)):
        result = CliRunner().invoke(main, [*args, "--node", s.net.apis[0], "--key", s.files["auditor"]])
        assert result.exit_code == code and needle in result.output and "Traceback" not in result.output, result.output
    text = cli("report", "--since", "2020-01-01", "--node", s.net.apis[0], "--key", s.files["auditor"])
    assert "report for all branches" in text and "ratings:" in text
    result = CliRunner().invoke(main, ["report", "--since", "last tuesday", "--node", s.net.apis[0]])
    assert result.exit_code == 2 and "ISO date" in result.output
    bad = s.tmp / "bad-proof.json"
    bad.write_text(json.dumps({"version": 2, "account": "00" * 32}))
    result = CliRunner().invoke(main, ["account", "verify-proof", str(bad), "--genesis",
                                       str(s.net.dir / "genesis.json")])
    assert result.exit_code == 1 and "format" in result.output


def test_customer_register_and_vault_reads_are_refused_to_non_staff(story):
    s = story
    if "alice" not in s.keys:
        pytest.skip("needs the story's cast")
    stranger = KeyPair.generate().hex
    args = ["customer", "register", "--key", s.files["alice"], "--customer", stranger, "--name", "Eve",
            "--node", s.net.apis[0]]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 3 and "403" in result.output and "vault_unauthorized" in result.output
    result = CliRunner().invoke(main, ["customer", "register", "--key", s.files["clerk"], "--customer", stranger,
                                       "--node", s.net.apis[0]])
    assert result.exit_code == 2 and "at least one of --name" in result.output
    result = CliRunner().invoke(main, ["customer", "data", s.keys["alice"].hex, "--key", s.files["alice"],
                                       "--node", s.net.apis[0]])
    assert result.exit_code == 3 and "vault_unauthorized" in result.output
    doc = s.read("customer", "data", s.keys["alice"].hex, "--key", s.files["clerk"])
    assert doc["data"] == PERSON  # staff of the registering branch read it back
