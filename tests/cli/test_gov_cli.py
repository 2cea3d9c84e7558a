"""`carecoin gov` with CliRunner against live in-process nodes: a one-branch network (its admin is a quorum,
so proposals decide at once and refusals commit) and a four-branch store holding open, expired and decided
proposals (served for reads)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.keys import KeyPair, save_key
from tests.ledger.governance_world import ADMINS, BRANCHES
from tests.node.live_node import LiveNode
from tests.node.local_chain import LocalChain
from tests.node.test_reads import GovChain
from tests.strategies import VALIDATORS


@pytest.fixture(scope="module")
def one_branch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gov-one")
    chain = LocalChain(tmp / "db")
    chain.store.close()
    admin_file = tmp / "admin.key"
    save_key(admin_file, chain.admin)
    node = LiveNode(chain.node, chain.genesis, tmp / "db")
    node.admin_file = str(admin_file)
    node.auditor_file = str(tmp / "auditor.key")  # the company auditor reads any account
    save_key(node.auditor_file, chain.auditor)
    yield node
    node.close()


@pytest.fixture(scope="module")
def four_branches(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gov-four")
    g = GovChain(tmp / "db", {"proposal_lifetime_ms": 60_000})
    g.clerk = KeyPair.generate()
    g.block((ADMINS[0], "propose-set-policy", ["old", "feedback_reward", 1]))
    g.block(after_ms=60_001)
    g.block((ADMINS[0], "propose-grant-role", ["clerk", g.clerk.public_key, "staff", BRANCHES[1]]),
            (ADMINS[1], "approve-proposal", ["clerk"]), (ADMINS[3], "approve-proposal", ["clerk"]))
    g.block((ADMINS[2], "propose-remove-validator", ["drop-3", VALIDATORS[3].public_key]))
    g.store.close()
    node = LiveNode(VALIDATORS[0], g.genesis, tmp / "db")
    node.clerk = g.clerk
    yield node
    node.close()


def run(*args: str, expect: int = 0) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == expect, (args, result.output)
    return result.output


def send(node: LiveNode, *args: str, expect: int = 0) -> str:
    return run("gov", *args, "--key", node.admin_file, "--node", node.url, "--wait", "--timeout", "20",
               expect=expect)


def test_propose_waits_and_says_what_the_decision_did(one_branch):
    clerk = KeyPair.generate()
    out = send(one_branch, "propose", "grant-role", "--proposal-id", "hire-1", "--account", clerk.public_key.hex(),
               "--role", "staff", "--branch", "north")
    assert re.search(rf"decided at height \d+: staff role granted to {clerk.public_key.hex()[:8]}… in north", out)
    account = json.loads(run("account", "show", clerk.public_key.hex(), "--node", one_branch.url, "--json",
                             "--key", one_branch.auditor_file))
    assert account["roles"] == ["staff"]


def test_propose_with_json_answers_the_tx_and_the_proposal_document(one_branch):
    out = send(one_branch, "propose", "set-policy", "--name", "feedback_reward", "--value", "70", "--json")
    doc = json.loads(out)
    assert doc["outcome"] == "applied" and re.fullmatch(r"set-policy-[0-9a-f]{8}", doc["proposal_id"])
    proposal = doc["proposal"]
    assert proposal["status"] == "decided" and proposal["args"] == {"name": "feedback_reward", "value": 70}
    assert proposal["decision"]["effect"]["kind"] == "policy_set" and proposal["decision"]["effect"]["value"] == 70


def test_the_quorum_action_is_the_governance_quorum_kind(one_branch):
    out = send(one_branch, "propose", "quorum", "--quorum", "1")
    assert "governance quorum set to 1 of 1 branches" in out


def test_a_refused_rule_exits_1_with_the_reason_code_and_what_it_means(one_branch):
    out = send(one_branch, "propose", "grant-role", "--proposal-id", "nowhere", "--account",
               KeyPair.generate().public_key.hex(), "--role", "staff", "--branch", "branch-99", expect=1)
    assert "propose-grant-role nowhere refused at height" in out
    assert "unknown_branch: There is no branch (validator) with this name." in out
    send(one_branch, "propose", "training-course", "--proposal-id", "course-1", "--course-id", "safety",
         "--reward", "10")
    out = send(one_branch, "approve", "course-1", expect=1)
    assert "approve-proposal course-1 refused" in out and "proposal_decided" in out
    out = send(one_branch, "approve", "never-proposed", "--json", expect=1)
    assert json.loads(out[:out.rindex("}") + 1])["reason"] == "proposal_not_found"


def test_a_sender_without_the_role_is_refused_as_unauthorized(one_branch, tmp_path):
    stranger = tmp_path / "stranger.key"
    save_key(stranger, KeyPair.generate())
    out = run("gov", "propose", "quorum", "--quorum", "1", "--key", str(stranger), "--node", one_branch.url,
              "--wait", expect=1)
    assert "unauthorized" in out


def test_show_tells_an_open_proposal_from_a_decided_one(four_branches):
    out = run("gov", "show", "drop-3", "--node", four_branches.url)
    assert f"proposal drop-3 (remove-validator): remove validator {VALIDATORS[3].public_key.hex()[:8]}…" in out
    assert f"approved by {BRANCHES[2]}" in out and "open: 1 of 3 branches approved (branch-2); expires" in out
    out = run("gov", "show", "clerk", "--node", four_branches.url)
    assert re.search(rf"decided at height 3: staff role granted to {four_branches.clerk.public_key.hex()[:8]}… "
                     rf"in {BRANCHES[1]}", out)
    assert out.count("approved by") == 3
    doc = json.loads(run("gov", "show", "old", "--node", four_branches.url, "--json"))
    assert doc["status"] == "expired" and doc["decision"] is None


def test_list_puts_open_proposals_first_and_pages(four_branches):
    lines = run("gov", "list", "--node", four_branches.url).splitlines()
    assert [line.split()[:2] for line in lines] == [["drop-3", "open"], ["old", "expired"], ["clerk", "decided"]]
    assert lines[2].endswith(f"3/3  at height 3: staff role granted to {four_branches.clerk.public_key.hex()[:8]}… "
                             f"in {BRANCHES[1]}")
    out = run("gov", "list", "--limit", "1", "--node", four_branches.url)
    assert out.splitlines()[0].startswith("drop-3") and "2 more: --offset 1" in out
    doc = json.loads(run("gov", "list", "--status", "decided", "--node", four_branches.url, "--json"))
    assert [p["proposal_id"] for p in doc["items"]] == ["clerk"]


def test_show_of_an_unknown_proposal_exits_3_with_the_node_answer(four_branches):
    out = run("gov", "show", "nope", "--node", four_branches.url, expect=3)
    assert "node answered 404" in out and "proposal 'nope' does not exist" in out
