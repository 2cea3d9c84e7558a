"""process_revoke_role: a branch admin takes a role away; the last branch admin stays."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.customers import get_branch_of
from ledger.errors import InvalidTransaction
from ledger.events import RoleRevoked
from ledger.process import compute_payload
from ledger.process.governance import GrantRole, RevokeRole, process_grant_role, process_revoke_role
from ledger.state import get_role_count, has_role
from tests.strategies import ADMIN, ALICE, BOB, STAFF, coin_ctx, coin_state, refusal


def test_revoke_role_removes_it_and_forgets_the_branch_of_an_account_without_roles():
    state = coin_state()
    process_grant_role(coin_ctx(state, ADMIN), GrantRole(ALICE.public_key, "staff", "north"))
    events = process_revoke_role(coin_ctx(state, ADMIN), RevokeRole(ALICE.public_key, "staff"))
    assert events == [RoleRevoked(ALICE.public_key, "staff")]
    assert not has_role(state, "staff", ALICE.public_key) and get_branch_of(state, ALICE.public_key) == ""


def test_revoking_one_of_two_roles_keeps_the_branch():
    state = coin_state()
    process_grant_role(coin_ctx(state, ADMIN), GrantRole(ALICE.public_key, "staff", "north"))
    process_grant_role(coin_ctx(state, ADMIN), GrantRole(ALICE.public_key, "compliance", "north"))
    process_revoke_role(coin_ctx(state, ADMIN), RevokeRole(ALICE.public_key, "staff"))
    assert get_branch_of(state, ALICE.public_key) == "north"


def test_an_admin_can_be_revoked_while_another_remains():
    state = coin_state()
    process_grant_role(coin_ctx(state, ADMIN), GrantRole(BOB.public_key, "branch-admin", "south"))
    process_revoke_role(coin_ctx(state, BOB), RevokeRole(ADMIN.public_key, "branch-admin"))
    assert get_role_count(state, "branch-admin") == 1 and not has_role(state, "branch-admin", ADMIN.public_key)


def test_revoking_the_last_branch_admin_is_last_branch_admin():
    state = coin_state()
    assert refusal(process_revoke_role, coin_ctx(state, ADMIN), RevokeRole(ADMIN.public_key, "branch-admin")) \
        is reasons.LAST_BRANCH_ADMIN
    assert has_role(state, "branch-admin", ADMIN.public_key)


def test_revoke_by_non_admin_is_unauthorized():
    assert refusal(process_revoke_role, coin_ctx(coin_state(), STAFF), RevokeRole(STAFF.public_key, "staff")) \
        is reasons.UNAUTHORIZED


def test_revoke_of_an_unknown_role_is_unknown_role():
    assert refusal(process_revoke_role, coin_ctx(coin_state(), ADMIN), RevokeRole(STAFF.public_key, "boss")) \
        is reasons.UNKNOWN_ROLE


def test_revoking_a_role_not_held_is_role_not_held():
    assert refusal(process_revoke_role, coin_ctx(coin_state(), ADMIN), RevokeRole(ALICE.public_key, "staff")) \
        is reasons.ROLE_NOT_HELD


@pytest.mark.parametrize("payload", [[ALICE.public_key], [ALICE.public_key, "staff", "n"], [b"", "staff"]])
def test_malformed_revoke_role_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("revoke-role", payload)
    assert exc.value.code == "bad_payload"
