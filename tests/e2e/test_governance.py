"""No single party rules, on 4 real nodes, through the CLI exactly as branch admins and staff would use it.

(c) separation of duties: staff of branch 2 cannot confirm a branch-1 order, respond to or compensate a
branch-1 ticket, or read or write a branch-1 customer's vault record; staff cannot confirm their own order or
compensate themselves. (b) the rogue branch-1 admin fails at every step, each refusal's reason asserted.
(a) one admin's role grant, policy change and validator addition do nothing until admins of a quorum of
distinct branches (3 of 4) approve; then each takes effect. The validator addition runs last: the added
validator never starts, so the network runs on 4 of 5 from then on.
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.keys import KeyPair
from tests.e2e.conftest import Network
from tests.e2e.test_customer_story import Story, cli

pytestmark = pytest.mark.e2e

PERSON = {"name": "Greta Lindqvist", "email": "greta@example.se"}


class Gov(Story):
    """Story's helpers plus every branch's admin and staff key, and `carecoin gov` calls."""

    def __init__(self, net: Network, tmp) -> None:
        super().__init__(net, tmp)
        for i, name in enumerate(net.names):
            for role in ("admin", "staff"):
                self.files[f"{role}{i}"] = str(net.dir / name / "keys" / f"{role}.key")

    def gov(self, who: str, *args: str, node: int = 0, expect: int = 0) -> str:
        result = CliRunner().invoke(main, ["gov", *args, "--key", self.files[who], "--node", self.net.apis[node],
                                           "--wait", "--timeout", "20"])
        assert result.exit_code == expect, (args, result.output)
        return result.output

    def roles(self, key: KeyPair) -> list[str]:
        return self.read("account", "show", key.hex)["roles"]

    def policy(self, name: str):
        return self.read("policy", "show")["policy"][name]

    def latest_header(self) -> dict:
        return self.read("block", "show", "latest")


def fails(out: str, reason: str) -> None:
    """The command exited 1 naming the reason code (the caller asserted the exit code)."""
    assert "refused at height" in out and reason in out, out


@pytest.fixture(scope="module")
def g(tmp_path_factory):
    net = Network(tmp_path_factory.mktemp("gov-net"), 4)
    try:
        net.start_all()
        yield Gov(net, tmp_path_factory.mktemp("gov-keys"))
    finally:
        net.close()


def test_staff_act_only_inside_their_own_branch_and_never_for_themselves(g):
    b1, b2 = g.net.names[0], g.net.names[1]
    cust = g.new_key("cust")
    reg = json.loads(cli("customer", "register", "--key", g.files["staff0"], "--customer", cust.hex, "--kyc-level",
                         "1", "--name", PERSON["name"], "--email", PERSON["email"], "--node", g.net.apis[0],
                         "--wait", "--json"))
    assert reg["outcome"] == "applied" and g.read("customer", "show", cust.hex)["branch"] == b1
    g.ok("create-order", "staff0", "--order-id", "B1-O1", "--customer", cust.hex, "--fiat-amount", "5000")
    g.ok("open-ticket", "cust", "--ticket-id", "B1-T1", "--category", "complaint", "--order-id", "B1-O1",
         "--content", "the lid is missing", node=1)

    # Branch 2's staff: no confirming, handling or compensating across the branch line
    g.refused("confirm-order", "staff1", "wrong_branch", "--order-id", "B1-O1", node=1)
    g.refused("respond-ticket", "staff1", "wrong_branch", "--ticket-id", "B1-T1", "--content-hash", "ab" * 32, node=1)
    said = CliRunner().invoke(main, ["tx", "respond-ticket", "--key", g.files["staff1"], "--ticket-id", "B1-T1",
                                     "--content", "hello", "--node", g.net.apis[1]])
    assert said.exit_code == 3 and "wrong_branch" in said.output  # the vault refuses the text: no tx is sent
    g.refused("compensate", "staff1", "wrong_branch", "--ticket-id", "B1-T1", "--amount", "50", node=2)
    assert g.read("ticket", "show", "B1-T1")["compensated"] == 0

    # ... nor reading or writing the branch-1 customer's vault record (on the node that holds it)
    read = CliRunner().invoke(main, ["customer", "data", cust.hex, "--key", g.files["staff1"], "--node", g.net.apis[0]])
    assert read.exit_code == 3 and "403" in read.output and "wrong_branch" in read.output
    assert f"registered in branch '{b1}'; staff of branch '{b2}'" in read.output
    write = CliRunner().invoke(main, ["customer", "register", "--key", g.files["staff1"], "--customer", cust.hex,
                                      "--name", "Mallory", "--node", g.net.apis[0]])
    assert write.exit_code == 3 and "wrong_branch" in write.output
    assert g.read("customer", "data", cust.hex, "--key", g.files["staff0"])["data"] == PERSON  # unchanged

    # Self-dealing: branch-1 staff as their own customer cannot confirm their order or compensate themselves
    staff0 = g.net.key(0, "staff").public_key.hex()
    g.refused("register-customer", "staff0", "self_dealing", "--customer", staff0, "--kyc-level", "1",
              "--commitment", "ab" * 32)  # nobody picks their own KYC level
    g.ok("register-customer", "staff1", "--customer", staff0, "--kyc-level", "1", "--commitment", "ab" * 32, node=1)
    g.ok("create-order", "staff0", "--order-id", "SELF-O", "--customer", staff0, "--fiat-amount", "900")
    g.refused("confirm-order", "staff0", "self_dealing", "--order-id", "SELF-O")
    g.ok("open-ticket", "staff0", "--ticket-id", "SELF-T", "--category", "complaint", "--order-id", "SELF-O",
         "--content", "I deserve coins")
    g.refused("compensate", "staff0", "self_dealing", "--ticket-id", "SELF-T", "--amount", "100")
    assert g.read("account", "show", staff0)["balance"] == 0


def test_the_rogue_branch_1_admin_fails_at_every_step(g):
    fresh = g.new_key("fresh")
    rogue = g.net.key(0, "admin")
    # A fresh key as issuer "in branch-99": refused outright; as branch admin of branch-99: no such branch
    fails(g.gov("admin0", "propose", "grant-role", "--account", fresh.hex, "--role", "issuer", "--branch",
                "branch-99", expect=1), "wrong_branch")
    fails(g.gov("admin0", "propose", "grant-role", "--account", fresh.hex, "--role", "branch-admin", "--branch",
                "branch-99", expect=1), "unknown_branch: There is no branch (validator) with this name.")
    # As a company-wide issuer: the proposal opens with one branch of the three needed, and does nothing
    out = g.gov("admin0", "propose", "grant-role", "--proposal-id", "rogue-issuer", "--account", fresh.hex,
                "--role", "issuer")
    assert f"open: 1 of 3 branches approved ({g.net.names[0]})" in out
    fails(g.gov("admin0", "approve", "rogue-issuer", expect=1), "already_approved")
    assert g.roles(fresh) == []
    # So the fresh key cannot mint
    g.refused("mint", "fresh", "unauthorized", "--to", fresh.hex, "--amount", "1000000")
    assert g.read("account", "show", fresh.hex)["balance"] == 0

    # Removing the other three admins alone: each is the last admin of their branch — refused, all still admins
    for i in (1, 2, 3):
        admin = g.net.key(i, "admin").public_key.hex()
        fails(g.gov("admin0", "propose", "revoke-role", "--account", admin, "--role", "branch-admin", expect=1),
              "last_branch_admin")
        assert "branch-admin" in g.read("account", "show", admin)["roles"]

    # Making itself staff is refused outright (nobody proposes a role for themselves); two invented courses
    # for itself pay nothing
    out = g.gov("admin0", "propose", "grant-role", "--proposal-id", "rogue-staff", "--account", rogue.hex,
                "--role", "staff", "--branch", g.net.names[0], expect=1)
    assert "self_dealing" in out and "staff" not in g.roles(rogue)
    for course in ("invented-1", "invented-2"):
        g.refused("record-training", "admin0", "unknown_course", "--staff", rogue.hex, "--course-id", course)
    assert g.read("account", "show", rogue.hex)["balance"] == 0
    listed = g.read("gov", "list", "--status", "open")["items"]
    assert "rogue-issuer" in {p["proposal_id"] for p in listed}


def test_one_admins_grant_policy_and_validator_do_nothing_until_a_quorum_of_branches_approves(g):
    names = g.net.names
    clerk = g.new_key("clerk")
    reward = g.policy("feedback_reward")
    newcomer = KeyPair.generate()
    header = g.latest_header()
    assert header["validator_set_hash"] == header["next_validator_set_hash"]
    genesis_set = header["validator_set_hash"]

    # One admin (branch 2's) proposes all three: each opens with its own branch only
    g.gov("admin1", "propose", "grant-role", "--proposal-id", "q-grant", "--account", clerk.hex, "--role", "staff",
          "--branch", names[1], node=1)
    g.gov("admin1", "propose", "set-policy", "--proposal-id", "q-policy", "--name", "feedback_reward", "--value",
          str(reward + 25), node=1)
    g.gov("admin1", "propose", "add-validator", "--proposal-id", "q-validator", "--branch-name", "branch-5",
          "--node-public-key", newcomer.hex, "--peer-address", "ws://127.0.0.1:9/v1/peer", node=1)
    # A second approval (2 of 3) still does nothing
    for pid in ("q-grant", "q-policy", "q-validator"):
        out = g.gov("admin2", "approve", pid, node=2)
        assert f"open: 2 of 3 branches approved ({names[1]}, {names[2]})" in out
    assert g.roles(clerk) == [] and g.policy("feedback_reward") == reward
    header = g.latest_header()
    assert header["validator_set_hash"] == header["next_validator_set_hash"] == genesis_set

    # A third branch decides each, and the decision is what the proposal asked
    out = g.gov("admin3", "approve", "q-grant", node=3)
    assert re.search(rf"decided at height \d+: staff role granted to {clerk.hex[:8]}… in {names[1]}", out)
    assert g.roles(clerk) == ["staff"]
    out = g.gov("admin0", "approve", "q-policy")
    assert re.search(rf"decided at height \d+: policy feedback_reward set to {reward + 25}", out)
    assert g.policy("feedback_reward") == reward + 25
    out = g.gov("admin3", "approve", "q-validator", node=3)
    assert re.search(rf"validator {newcomer.hex[:8]}… of branch-5 added; the new set seals from height \d+", out)
    decision = g.read("gov", "show", "q-validator")["decision"]
    announcing = decision["effect"]["effective_height"] - 1
    g.net.wait_height(range(4), announcing)
    block = g.read("block", "show", str(announcing))
    assert block["validator_set_hash"] == genesis_set
    assert block["next_validator_set_hash"] == decision["effect"]["validator_set_hash"] != genesis_set
