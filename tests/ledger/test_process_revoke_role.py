"""Revoking a role is a governance decision; the last admin of a branch stays."""

from __future__ import annotations

import pytest

from ledger.customers import get_branch_of
from ledger.errors import InvalidTransaction
from ledger.process import compute_payload
from ledger.state import get_role_count, has_role
from tests.ledger.governance_world import ADMIN_0B, ADMINS, ALICE, STAFF_1, Gov


def test_a_decided_revoke_removes_the_role_and_forgets_the_branch_of_an_account_without_branch_roles():
    g = Gov()
    events = g.decide("revoke-role", [STAFF_1.public_key, "staff"])
    assert events[-1] == ["role_revoked", STAFF_1.public_key, "staff"]
    assert not has_role(g.state, "staff", STAFF_1.public_key) and get_branch_of(g.state, STAFF_1.public_key) == ""


def test_revoking_a_company_role_keeps_the_branch_of_the_branch_role():
    g = Gov()
    g.decide("grant-role", [STAFF_1.public_key, "compliance", ""])
    g.decide("revoke-role", [STAFF_1.public_key, "compliance"])
    assert get_branch_of(g.state, STAFF_1.public_key) == "branch-1" and has_role(g.state, "staff", STAFF_1.public_key)


def test_an_admin_can_be_revoked_while_another_admin_of_the_branch_remains():
    g = Gov()
    g.decide("revoke-role", [ADMINS[0].public_key, "branch-admin"], approvers=(ADMIN_0B, ADMINS[1], ADMINS[2]))
    assert not has_role(g.state, "branch-admin", ADMINS[0].public_key)
    assert get_role_count(g.state, "branch-admin") == 4


def test_revoking_the_last_admin_of_a_branch_is_last_branch_admin():
    g = Gov()
    assert g.refused(ADMINS[0], "propose-revoke-role", ["p", ADMINS[1].public_key, "branch-admin"]) \
        == "last_branch_admin"
    assert has_role(g.state, "branch-admin", ADMINS[1].public_key)


def test_a_revoke_by_non_admin_is_unauthorized():
    assert Gov().refused(STAFF_1, "propose-revoke-role", ["p", STAFF_1.public_key, "staff"]) == "unauthorized"


def test_a_revoke_of_an_unknown_role_is_unknown_role():
    assert Gov().refused(ADMINS[0], "propose-revoke-role", ["p", STAFF_1.public_key, "boss"]) == "unknown_role"


def test_revoking_a_role_not_held_is_role_not_held():
    assert Gov().refused(ADMINS[0], "propose-revoke-role", ["p", ALICE.public_key, "staff"]) == "role_not_held"


@pytest.mark.parametrize("payload", [["p", ALICE.public_key], ["p", ALICE.public_key, "staff", "n"],
                                     ["p", b"", "staff"]])
def test_malformed_propose_revoke_role_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("propose-revoke-role", payload)
    assert exc.value.code == "bad_payload"
