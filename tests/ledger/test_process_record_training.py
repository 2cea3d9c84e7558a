"""record-training: a branch admin rewards a staff member once per course; every refusal by its reason."""

from __future__ import annotations

import pytest

from ledger.errors import InvalidTransaction
from ledger.process import compute_payload
from ledger.process.training import RecordTraining
from ledger.state import set_role
from tests.ledger.flows_world import ADMIN, ALICE, STAFF, STAFF2, World


def test_a_completed_course_rewards_the_staff_member():
    w = World()
    events = w.ok("record-training", ADMIN, [STAFF.public_key, "deescalation-101"])
    assert w.balance(STAFF) == 500
    assert events[-1] == ["trained", STAFF.public_key, "deescalation-101", 500]
    assert any(e[0] == "credited" and e[3] == "reward" for e in events)


def test_a_course_pays_once_per_staff_member():
    w = World()
    w.ok("record-training", ADMIN, [STAFF.public_key, "c-1"])
    w.tick()
    assert w.refused("record-training", ADMIN, [STAFF.public_key, "c-1"]) == "already_rewarded"
    assert w.balance(STAFF) == 500


def test_the_same_course_rewards_each_staff_member_and_each_course_rewards_again():
    w = World()
    w.ok("record-training", ADMIN, [STAFF.public_key, "c-1"])
    w.ok("record-training", ADMIN, [STAFF2.public_key, "c-1"])
    w.ok("record-training", ADMIN, [STAFF.public_key, "c-2"])
    assert (w.balance(STAFF), w.balance(STAFF2)) == (1_000, 500)


def test_the_reward_follows_the_policy():
    w = World(policy={"training_reward": 75})
    w.ok("record-training", ADMIN, [STAFF.public_key, "c-1"])
    assert w.balance(STAFF) == 75


@pytest.mark.parametrize("sender", [STAFF, ALICE])
def test_only_a_branch_admin_records_training(sender):
    w = World()
    assert w.refused("record-training", sender, [STAFF.public_key, "c-1"]) == "unauthorized"
    assert w.balance(STAFF) == 0


def test_a_trainee_without_the_staff_role_is_not_staff():
    assert World().refused("record-training", ADMIN, [ALICE.public_key, "c-1"]) == "not_staff"


def test_a_revoked_staff_member_is_not_staff():
    w = World()
    set_role(w.state, "staff", STAFF2.public_key, False)
    assert w.refused("record-training", ADMIN, [STAFF2.public_key, "c-1"]) == "not_staff"


@pytest.mark.parametrize("course_id", ["", "c" * 65, "\x00"])
def test_an_unusable_course_id_is_invalid_id(course_id):
    assert World().refused("record-training", ADMIN, [STAFF.public_key, course_id]) == "invalid_id"


def test_a_well_formed_payload_parses():
    assert compute_payload("record-training", [STAFF.public_key, "c"]) == RecordTraining(STAFF.public_key, "c")


@pytest.mark.parametrize("payload", [[STAFF.public_key], [STAFF.public_key[:8], "c"], [STAFF.public_key, 3]])
def test_a_malformed_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("record-training", payload)
    assert exc.value.code == "bad_payload"
