"""process_grant_role: a branch admin gives an account a role in a branch."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.coin import get_branch_of
from ledger.errors import InvalidTransaction
from ledger.process.governance import GrantRole, compute_grant_role, process_grant_role
from ledger.state import get_role_count, has_role
from tests.strategies import ADMIN, ALICE, STAFF, coin_ctx, coin_state, refusal


def test_grant_role_gives_the_role_and_records_the_branch():
    state = coin_state()
    events = process_grant_role(coin_ctx(state, ADMIN), GrantRole(ALICE.public_key, "staff", "north"))
    assert events == [["role_granted", ALICE.public_key, "staff", "north"]]
    assert has_role(state, "staff", ALICE.public_key) and get_branch_of(state, ALICE.public_key) == "north"
    assert get_role_count(state, "staff") == 2


def test_grant_role_by_non_admin_is_unauthorized():
    assert refusal(process_grant_role, coin_ctx(coin_state(), STAFF), GrantRole(ALICE.public_key, "staff", "n")) \
        is reasons.UNAUTHORIZED


def test_grant_of_an_unknown_role_is_unknown_role():
    assert refusal(process_grant_role, coin_ctx(coin_state(), ADMIN), GrantRole(ALICE.public_key, "cashier", "n")) \
        is reasons.UNKNOWN_ROLE


@pytest.mark.parametrize("branch", ["", "x" * 65, "north\n"])
def test_grant_with_an_unusable_branch_is_invalid_name(branch):
    assert refusal(process_grant_role, coin_ctx(coin_state(), ADMIN), GrantRole(ALICE.public_key, "staff", branch)) \
        is reasons.INVALID_NAME


def test_granting_a_role_already_held_is_role_already_held():
    assert refusal(process_grant_role, coin_ctx(coin_state(), ADMIN), GrantRole(STAFF.public_key, "staff", "n")) \
        is reasons.ROLE_ALREADY_HELD


@pytest.mark.parametrize("payload", [[ALICE.public_key, "staff"], [ALICE.public_key[:5], "staff", "n"],
                                     [ALICE.public_key, 2, "n"], [ALICE.public_key, "staff", b"n"]])
def test_malformed_grant_role_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_grant_role(payload)
    assert exc.value.code == "bad_payload"
