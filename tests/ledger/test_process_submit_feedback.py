"""submit-feedback against gaming: a refunded order is not rewarded, a target is rewarded once."""

from __future__ import annotations

from tests.ledger.flows_world import ALICE, World, h


def test_customer_giving_feedback_on_a_refunded_order_is_refused_with_order_refunded():
    w = World({"feedback_reward": 50})
    w.confirmed_order()
    w.ok("request-refund", ALICE, ["o-1", bytes(32)])
    before = w.balance(ALICE)
    assert w.refused("submit-feedback", ALICE, ["order", "o-1", 5, h("great")]) == "order_refunded"
    assert w.balance(ALICE) == before and w.order("o-1").rating == 0


def test_feedback_on_a_confirmed_unrefunded_order_is_rewarded_once():
    w = World({"feedback_reward": 50})
    w.confirmed_order()
    w.ok("submit-feedback", ALICE, ["order", "o-1", 5, h("great")])
    assert w.refused("submit-feedback", ALICE, ["order", "o-1", 5, h("great")]) == "already_rewarded"
    assert w.balance(ALICE) == 100 + 50
