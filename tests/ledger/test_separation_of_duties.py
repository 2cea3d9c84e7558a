"""Separation of duties: staff act only inside their own branch, and nobody confirms, compensates, rewards or
records training for their own account. Branch-1 staff serve Alice; branch-2 staff try to reach in."""

from __future__ import annotations

from ledger.orders import get_order
from ledger.tickets import get_ticket
from tests.ledger.flows_world import h
from tests.ledger.governance_world import ADMINS, ALICE, BOB, STAFF_1, STAFF_1B, STAFF_2, Gov


def branch1_world() -> Gov:
    """Alice registered in branch-1 with a paid order o-1 and a complaint ticket t-1 on it."""
    g = Gov()
    g.ok(STAFF_1, "register-customer", [ALICE.public_key, 2, h("alice")])
    g.ok(STAFF_2, "register-customer", [BOB.public_key, 2, h("bob")])
    g.ok(STAFF_1, "create-order", ["o-1", ALICE.public_key, 10_000, "EUR", h("items")])
    g.ok(ALICE, "pay-order", ["o-1", 0])
    g.ok(ALICE, "open-ticket", ["t-1", "complaint", 2, "o-1", h("late")])
    return g


def test_branch2_staff_cannot_confirm_branch1_order():
    g = branch1_world()
    assert g.refused(STAFF_2, "confirm-order", ["o-1"]) == "wrong_branch"
    assert not get_order(g.state, "o-1").confirmed_at and g.balance(ALICE) == 0
    g.ok(STAFF_1B, "confirm-order", ["o-1"])  # staff of the order's branch may
    assert g.balance(ALICE) == 100


def test_branch2_staff_cannot_compensate_branch1_ticket():
    g = branch1_world()
    assert g.refused(STAFF_2, "compensate", ["t-1", 500]) == "wrong_branch"
    assert g.balance(ALICE) == 0
    g.ok(STAFF_1, "compensate", ["t-1", 500])
    assert g.balance(ALICE) == 500


def test_branch2_staff_cannot_handle_branch1_ticket():
    g = branch1_world()
    assert g.refused(STAFF_2, "assign-ticket", ["t-1", STAFF_2.public_key]) == "wrong_branch"
    assert g.refused(STAFF_2, "respond-ticket", ["t-1", h("mine now")]) == "wrong_branch"
    assert g.refused(STAFF_2, "resolve-ticket", ["t-1", h("closed by me")]) == "wrong_branch"
    g.ok(STAFF_1, "resolve-ticket", ["t-1", h("fixed")])
    assert g.refused(STAFF_2, "close-ticket", ["t-1"]) == "wrong_branch"
    assert get_ticket(g.state, "t-1").state == "resolved"


def test_branch1_staff_assign_only_to_staff_of_their_branch():
    g = branch1_world()
    assert g.refused(STAFF_1, "assign-ticket", ["t-1", STAFF_2.public_key]) == "wrong_branch"
    assert g.refused(ADMINS[1], "assign-ticket", ["t-1", STAFF_2.public_key]) == "wrong_branch"
    g.ok(ADMINS[1], "assign-ticket", ["t-1", STAFF_1B.public_key])
    assert get_ticket(g.state, "t-1").assignee == STAFF_1B.public_key


def test_branch2_staff_cannot_refund_branch1_order_or_open_a_ticket_on_it():
    g = branch1_world()
    assert g.refused(STAFF_2, "request-refund", ["o-1", h("because")]) == "wrong_branch"
    assert g.refused(STAFF_2, "open-ticket", ["t-2", "complaint", 2, "o-1", h("x")]) == "wrong_branch"


def test_customers_are_registered_into_the_staff_members_branch():
    g = branch1_world()
    from ledger.customers import get_customer
    assert (get_customer(g.state, ALICE.public_key).branch, get_customer(g.state, BOB.public_key).branch) == (
        "branch-1", "branch-2")


def test_staff_cannot_confirm_their_own_order():
    g = Gov()
    g.ok(STAFF_1B, "register-customer", [STAFF_1.public_key, 2, h("staff as customer")])
    g.ok(STAFF_1B, "create-order", ["o-9", STAFF_1.public_key, 10_000, "EUR", h("items")])
    g.ok(STAFF_1, "pay-order", ["o-9", 0])
    assert g.refused(STAFF_1, "confirm-order", ["o-9"]) == "self_dealing"
    assert g.balance(STAFF_1) == 0


def test_staff_cannot_compensate_their_own_ticket():
    g = Gov()
    g.ok(STAFF_1B, "register-customer", [STAFF_1.public_key, 2, h("staff as customer")])
    g.ok(STAFF_1B, "create-order", ["o-9", STAFF_1.public_key, 10_000, "EUR", h("items")])
    g.ok(STAFF_1, "open-ticket", ["t-9", "complaint", 2, "o-9", h("late")])
    assert get_ticket(g.state, "t-9").customer == STAFF_1.public_key
    assert g.refused(STAFF_1, "compensate", ["t-9", 2_000]) == "self_dealing"
    assert g.balance(STAFF_1) == 0


def test_training_reward_needs_catalogue_course():
    g = Gov()
    assert g.refused(STAFF_1B, "record-training", [STAFF_1.public_key, "advanced-napping"]) == "unknown_course"
    g.decide("training-course", ["deescalation-101", 300])
    g.ok(STAFF_1B, "record-training", [STAFF_1.public_key, "deescalation-101"])
    assert g.balance(STAFF_1) == 300
    # once per (trainee, course)
    assert g.refused(ADMINS[1], "record-training", [STAFF_1.public_key, "deescalation-101"]) == "already_rewarded"


def test_staff_cannot_record_own_training():
    g = Gov()
    g.decide("training-course", ["deescalation-101", 300])
    assert g.refused(STAFF_1, "record-training", [STAFF_1.public_key, "deescalation-101"]) == "self_dealing"
    assert g.balance(STAFF_1) == 0


def test_training_is_recorded_only_for_staff_of_the_recorders_branch():
    g = Gov()
    g.decide("training-course", ["deescalation-101", 300])
    assert g.refused(STAFF_2, "record-training", [STAFF_1.public_key, "deescalation-101"]) == "wrong_branch"
    assert g.refused(ADMINS[2], "record-training", [STAFF_1.public_key, "deescalation-101"]) == "wrong_branch"
    g.ok(ADMINS[1], "record-training", [STAFF_1.public_key, "deescalation-101"])
    assert g.balance(STAFF_1) == 300
