"""Governance attacks and positive paths: a rogue branch admin cannot rule alone; decisions need admins of a
quorum of DISTINCT branches; proposals expire; a proposal is decided once. Four branches: quorum 3."""

from __future__ import annotations

import pytest

from ledger.customers import get_branch_of
from ledger.proposals import get_governance_quorum, get_proposal
from ledger.state import get_balance, get_supply, has_role
from tests.ledger.governance_world import ADMIN_0B, ADMINS, ALICE, BOB, ISSUER, ROGUE, STAFF_1, Gov
from tests.strategies import key

FRESH = key(60)  # the rogue admin's fresh key


def test_rogue_admin_cannot_make_an_issuer_alone():
    g = Gov()
    # The rogue admin proposes its fresh key as issuer: the proposal opens, one branch of the three needed
    events = g.ok(ROGUE, "propose-grant-role", ["rogue-issuer", FRESH.public_key, "issuer", ""])
    assert events[-1] == ["proposal_approved", "rogue-issuer", ROGUE.public_key, "branch-1", 1, 3]
    assert not any(e[0] == "role_granted" for e in events)
    # Approving its own proposal again changes nothing: its branch already counts
    assert g.refused(ROGUE, "approve-proposal", ["rogue-issuer"]) == "already_approved"
    # So the fresh key is no issuer and cannot mint
    assert not has_role(g.state, "issuer", FRESH.public_key)
    assert g.refused(FRESH, "mint", [FRESH.public_key, 1_000_000]) == "unauthorized"
    assert get_balance(g.state, FRESH.public_key) == 0 and get_supply(g.state) == 0


def test_role_in_made_up_branch_refused():
    g = Gov()
    # An issuer role cannot be placed in a branch at all, and a branch role not in a made-up one
    assert g.refused(ROGUE, "propose-grant-role", ["p1", FRESH.public_key, "issuer", "branch-99"]) == "wrong_branch"
    assert g.refused(ROGUE, "propose-grant-role", ["p2", FRESH.public_key, "branch-admin", "branch-99"]) \
        == "unknown_branch"
    assert g.refused(ROGUE, "propose-grant-role", ["p3", FRESH.public_key, "staff", "branch-99"]) == "unknown_branch"
    assert get_proposal(g.state, "p2") is None


def test_rogue_admin_cannot_remove_other_admins_alone():
    g = Gov()
    # branch-0 has two admins: the proposal to oust one opens, but one branch is no quorum
    g.ok(ROGUE, "propose-revoke-role", ["oust-0", ADMINS[0].public_key, "branch-admin"])
    # branch-2 and branch-3 have one each: the last admin of a branch cannot be revoked at all
    for i in (2, 3):
        assert g.refused(ROGUE, "propose-revoke-role", [f"oust-{i}", ADMINS[i].public_key, "branch-admin"]) \
            == "last_branch_admin"
    assert all(has_role(g.state, "branch-admin", ADMINS[i].public_key) for i in (0, 2, 3))
    # ... nor make itself staff (it may not even propose a role for itself) and pay itself for an invented course
    assert g.refused(ROGUE, "propose-grant-role", ["self-staff", ROGUE.public_key, "staff", "branch-1"]) \
        == "self_dealing"
    assert not has_role(g.state, "staff", ROGUE.public_key)
    assert g.refused(ROGUE, "record-training", [ROGUE.public_key, "invented-course"]) == "unknown_course"
    assert get_balance(g.state, ROGUE.public_key) == 0


def test_quorum_counts_branches_not_keys():
    g = Gov()
    # Two admins of branch-0 and the rogue of branch-1: three keys, two branches — not a quorum of 3
    g.ok(ADMINS[0], "propose-grant-role", ["p", ALICE.public_key, "issuer", ""])
    assert g.refused(ADMIN_0B, "approve-proposal", ["p"]) == "already_approved"
    events = g.ok(ROGUE, "approve-proposal", ["p"])
    assert events == [["proposal_approved", "p", ROGUE.public_key, "branch-1", 2, 3]]
    assert not has_role(g.state, "issuer", ALICE.public_key)
    # A third branch decides it, in the approving transaction
    events = g.ok(ADMINS[3], "approve-proposal", ["p"])
    assert [e[0] for e in events] == ["proposal_approved", "proposal_decided", "role_granted"]
    assert has_role(g.state, "issuer", ALICE.public_key)


def test_expired_proposal_cannot_be_approved():
    g = Gov({"proposal_lifetime_ms": 10_000})
    opened = g.ok(ADMINS[0], "propose-set-policy", ["p", "feedback_reward", 1])
    assert opened[0] == ["proposal_opened", "p", "set-policy", ADMINS[0].public_key, "branch-0", g.now + 10_000]
    g.ok(ADMINS[1], "approve-proposal", ["p"])
    g.tick(10_001)
    assert g.refused(ADMINS[2], "approve-proposal", ["p"]) == "proposal_expired"
    assert get_proposal(g.state, "p").decided_height == 0


def test_approval_at_the_last_moment_of_the_lifetime_decides():
    g = Gov({"proposal_lifetime_ms": 10_000})
    g.ok(ADMINS[0], "propose-set-policy", ["p", "feedback_reward", 1])
    g.ok(ADMINS[1], "approve-proposal", ["p"])
    g.tick(10_000)
    assert g.ok(ADMINS[2], "approve-proposal", ["p"])[-1] == ["policy_set", "feedback_reward", 1, 1]


def test_a_proposal_is_decided_once():
    g = Gov()
    g.decide("training-course", ["c-1", 100])
    assert g.refused(ADMINS[3], "approve-proposal", ["p-1"]) == "proposal_decided"


def test_a_proposal_id_is_used_once_and_must_exist():
    g = Gov()
    g.ok(ADMINS[0], "propose-training-course", ["p", "c-1", 100])
    assert g.refused(ADMINS[1], "propose-training-course", ["p", "c-2", 100]) == "proposal_exists"
    assert g.refused(ADMINS[1], "approve-proposal", ["nope"]) == "proposal_not_found"


@pytest.mark.parametrize("sender", [STAFF_1, ISSUER, BOB])
def test_only_branch_admins_approve(sender):
    g = Gov()
    g.ok(ADMINS[0], "propose-training-course", ["p", "c-1", 100])
    assert g.refused(sender, "approve-proposal", ["p"]) == "unauthorized"


def test_the_action_is_checked_again_when_decided():
    g = Gov()
    g.ok(ADMINS[0], "propose-grant-role", ["a", ALICE.public_key, "staff", "branch-2"])
    g.ok(ADMINS[1], "propose-grant-role", ["b", ALICE.public_key, "staff", "branch-2"])
    g.ok(ADMINS[1], "approve-proposal", ["a"])
    g.ok(ADMINS[2], "approve-proposal", ["a"])  # decided: Alice is staff of branch-2
    g.ok(ADMINS[2], "approve-proposal", ["b"])
    # The same grant again is now role_already_held: the approval fails and the proposal stays open
    assert g.refused(ADMINS[3], "approve-proposal", ["b"]) == "role_already_held"
    assert get_proposal(g.state, "b").decided_height == 0


def test_a_one_branch_network_decides_with_the_proposal_itself():
    g = Gov(branches=1)
    events = g.ok(ADMINS[0], "propose-grant-role", ["p", ALICE.public_key, "auditor", ""])
    assert [e[0] for e in events] == ["proposal_opened", "proposal_approved", "proposal_decided", "role_granted"]


# --- the governance quorum itself --------------------------------------------------------------------------


def test_default_quorum_is_two_thirds_of_the_branches_rounded_up():
    assert [get_governance_quorum(Gov(branches=b).state) for b in (1, 2, 3, 4)] == [(1, 1), (2, 2), (2, 3), (3, 4)]


def test_the_quorum_changes_only_by_a_decision_and_stays_a_strict_majority():
    g = Gov()
    assert g.refused(ADMINS[0], "propose-governance-quorum", ["q", 2]) == "invalid_quorum"  # 2 of 4: no majority
    assert g.refused(ADMINS[0], "propose-governance-quorum", ["q", 5]) == "invalid_quorum"
    events = g.decide("governance-quorum", [4])
    assert events[-1] == ["governance_quorum_set", 4, 4]
    assert get_governance_quorum(g.state) == (4, 4)
    g.ok(ADMINS[0], "propose-training-course", ["c", "c-1", 10])
    g.ok(ADMINS[1], "approve-proposal", ["c"])
    assert g.ok(ADMINS[2], "approve-proposal", ["c"])[-1][0] == "proposal_approved"  # 3 of 4 no longer decide
    assert g.ok(ADMINS[3], "approve-proposal", ["c"])[-1] == ["training_course_set", "c-1", 10]


# --- positive paths ----------------------------------------------------------------------------------------


def test_governance_makes_an_issuer_who_can_then_mint():
    g = Gov()
    g.decide("grant-role", [ALICE.public_key, "issuer", ""])
    g.ok(ALICE, "mint", [BOB.public_key, 500])
    assert get_balance(g.state, BOB.public_key) == 500


def test_governance_adds_an_admin_to_a_branch_who_then_counts_for_it():
    g = Gov()
    g.decide("grant-role", [FRESH.public_key, "branch-admin", "branch-3"])
    assert get_branch_of(g.state, FRESH.public_key) == "branch-3"
    g.ok(ADMINS[0], "propose-training-course", ["c", "c-1", 10])
    assert g.ok(FRESH, "approve-proposal", ["c"])[-1][3:] == ["branch-3", 2, 3]
    assert g.refused(ADMINS[3], "approve-proposal", ["c"]) == "already_approved"
    assert g.ok(ADMINS[2], "approve-proposal", ["c"])[-1][0] == "training_course_set"


def test_nobody_proposes_or_approves_a_role_for_themselves():
    # The attack found on a live network: a branch admin proposing "issuer" for its own account, its own
    # approval counting towards the quorum.
    g = Gov()
    assert g.refused(ADMINS[0], "propose-grant-role", ["me", ADMINS[0].public_key, "issuer", ""]) == "self_dealing"
    g.ok(ADMINS[1], "propose-grant-role", ["them", ADMINS[0].public_key, "issuer", ""])
    assert g.refused(ADMINS[0], "approve-proposal", ["them"]) == "self_dealing"
    g.ok(ADMINS[2], "approve-proposal", ["them"])
    g.ok(ADMINS[3], "approve-proposal", ["them"])  # three other branches decide it
    assert has_role(g.state, "issuer", ADMINS[0].public_key)
