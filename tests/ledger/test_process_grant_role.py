"""process_grant_role: a branch admin gives an account a role in a branch."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.customers import get_branch_of
from ledger.errors import InvalidTransaction
from ledger.events import RoleGranted
from ledger.process import compute_payload
from ledger.process.governance import GrantRole, process_grant_role
from ledger.state import get_role_count, has_role
from tests.strategies import ADMIN, ALICE, STAFF, coin_ctx, coin_state, refusal


def test_grant_role_gives_the_role_and_records_the_branch():
    state = coin_state()
    events = process_grant_role(coin_ctx(state, ADMIN), GrantRole(ALICE.public_key, "staff", "north"))
    assert events == [RoleGranted(ALICE.public_key, "staff", "north")]
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
        compute_payload("grant-role", payload)
    assert exc.value.code == "bad_payload"


def test_genesis_may_place_role_holders_in_branches():
    from ledger.chain import genesis_state
    from ledger.genesis import genesis_from_json
    from ledger.state import MemoryState
    from tests.strategies import make_genesis

    doc = make_genesis().to_json()
    doc["branches"] = {STAFF.public_key.hex(): "north"}
    state = MemoryState(genesis_state(genesis_from_json(doc)))
    assert get_branch_of(state, STAFF.public_key) == "north" and get_branch_of(state, ADMIN.public_key) == ""


@pytest.mark.parametrize("branches", [[], {"zz": "north"}, {"00" * 31: "north"}, {"00" * 32: ""}])
def test_genesis_with_unusable_branches_is_refused(branches):
    from ledger.chain import genesis_state
    from ledger.errors import GenesisError
    from ledger.genesis import genesis_from_json
    from tests.strategies import make_genesis

    doc = make_genesis().to_json()
    doc["branches"] = branches
    with pytest.raises(GenesisError, match="branches"):
        genesis_state(genesis_from_json(doc))
