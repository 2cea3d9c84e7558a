"""Granting a role is a governance decision (``propose-grant-role`` + approvals of a quorum of branches):
the decided grant gives the role in a real branch; every refusal by its reason."""

from __future__ import annotations

import pytest

from ledger.customers import get_branch_of
from ledger.errors import InvalidTransaction
from ledger.process import compute_payload
from ledger.state import get_role_count, has_role
from tests.ledger.governance_world import ADMINS, ALICE, BRANCHES, STAFF_1, Gov


def test_a_decided_grant_gives_the_role_and_records_the_branch():
    g = Gov()
    events = g.decide("grant-role", [ALICE.public_key, "staff", "branch-2"])
    assert events[-1] == ["role_granted", ALICE.public_key, "staff", "branch-2"]
    assert events[-2][0] == "proposal_decided" and events[-2][2:] == ["grant-role", "role_granted"]
    assert has_role(g.state, "staff", ALICE.public_key) and get_branch_of(g.state, ALICE.public_key) == "branch-2"
    assert get_role_count(g.state, "staff") == 4


@pytest.mark.parametrize("role", ["issuer", "compliance", "auditor", "treasury"])
def test_company_wide_roles_carry_no_branch(role):
    g = Gov()
    g.decide("grant-role", [ALICE.public_key, role, ""])
    assert has_role(g.state, role, ALICE.public_key) and get_branch_of(g.state, ALICE.public_key) == ""
    assert g.refused(ADMINS[0], "propose-grant-role", ["x", ALICE.public_key, "staff", ""]) == "unknown_branch"
    assert g.refused(ADMINS[0], "propose-grant-role", ["y", BRANCHES[0].encode().ljust(32, b"!"), role,
                                                       "branch-0"]) == "wrong_branch"


def test_a_grant_by_non_admin_is_unauthorized():
    assert Gov().refused(STAFF_1, "propose-grant-role", ["p", ALICE.public_key, "staff", "branch-1"]) == "unauthorized"


def test_a_grant_of_an_unknown_role_is_unknown_role():
    assert Gov().refused(ADMINS[0], "propose-grant-role", ["p", ALICE.public_key, "cashier", "branch-0"]) \
        == "unknown_role"


@pytest.mark.parametrize("branch", ["", "north", "branch-9", "branch-0\n"])
def test_a_branch_role_outside_the_networks_branches_is_unknown_branch(branch):
    assert Gov().refused(ADMINS[0], "propose-grant-role", ["p", ALICE.public_key, "staff", branch]) \
        == "unknown_branch"


def test_granting_a_role_already_held_is_role_already_held():
    assert Gov().refused(ADMINS[0], "propose-grant-role", ["p", STAFF_1.public_key, "staff", "branch-1"]) \
        == "role_already_held"


def test_an_account_belongs_to_one_branch():
    assert Gov().refused(ADMINS[0], "propose-grant-role", ["p", STAFF_1.public_key, "branch-admin", "branch-0"]) \
        == "wrong_branch"


@pytest.mark.parametrize("payload", [["p", ALICE.public_key, "staff"], ["p", ALICE.public_key[:5], "staff", "n"],
                                     ["p", ALICE.public_key, 2, "n"], ["p", ALICE.public_key, "staff", b"n"]])
def test_malformed_propose_grant_role_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("propose-grant-role", payload)
    assert exc.value.code == "bad_payload"


def test_genesis_places_role_holders_in_branches_and_reads_the_older_form():
    from ledger.chain import genesis_state
    from ledger.genesis import genesis_from_json
    from ledger.state import MemoryState
    from tests.strategies import ADMIN, STAFF, make_genesis

    doc = make_genesis(roles={"branch-admin": (ADMIN,), "staff": (STAFF,)}).to_json()
    assert doc["roles"]["staff"] == [{"public_key": STAFF.public_key.hex(), "branch": "branch-0"}]
    doc["roles"]["staff"] = [STAFF.public_key.hex()]  # the older form: plain keys, placed by "branches"
    doc["branches"] = {STAFF.public_key.hex(): "branch-2"}
    state = MemoryState(genesis_state(genesis_from_json(doc)))
    assert get_branch_of(state, STAFF.public_key) == "branch-2"
    assert get_branch_of(state, ADMIN.public_key) == "branch-0"  # no placement: the first validator's branch


@pytest.mark.parametrize("branches", [[], {"zz": "branch-0"}, {"00" * 31: "branch-0"}, {"00" * 32: ""}])
def test_genesis_with_unusable_branches_is_refused(branches):
    from ledger.errors import GenesisError
    from ledger.genesis import genesis_from_json
    from tests.strategies import make_genesis

    doc = make_genesis().to_json()
    doc["branches"] = branches
    with pytest.raises(GenesisError, match="branches"):
        genesis_from_json(doc)


def test_genesis_placing_a_role_in_a_made_up_branch_is_refused():
    from ledger.errors import GenesisError
    from ledger.genesis import genesis_from_json
    from tests.strategies import ADMIN, make_genesis

    doc = make_genesis().to_json()
    doc["roles"]["branch-admin"] = [{"public_key": ADMIN.public_key.hex(), "branch": "branch-99"}]
    with pytest.raises(GenesisError, match="branch-99"):
        genesis_from_json(doc)
    doc["roles"]["branch-admin"] = []
    doc["roles"]["issuer"] = [{"public_key": ADMIN.public_key.hex(), "branch": "branch-0"}]
    with pytest.raises(GenesisError, match="company-wide"):
        genesis_from_json(doc)
