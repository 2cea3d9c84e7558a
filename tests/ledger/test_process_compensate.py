"""compensate against gaming: capped per customer per period whatever the number of tickets, only on an active
ticket, and never an earning that raises a tier."""

from __future__ import annotations

import pytest

from ledger.context import DAY_MS
from ledger.customers import get_tier
from tests.ledger.flows_world import ALICE, BOB, STAFF, World, h
from tests.ledger.test_process_tickets import drive_to


def staff_ticket_on_order(w: World, ticket_id: str, order_id: str = "o-1") -> None:
    """Staff of the order's branch open a complaint on the customer's order (so it is in their branch)."""
    w.ok("open-ticket", STAFF, [ticket_id, "complaint", 2, order_id, h(ticket_id)])


def test_staff_paying_three_tickets_on_one_order_stop_at_the_cap_per_customer():
    w = World({"compensation_cap_per_ticket": 2_000, "compensation_cap_per_customer": 4_000,
               "compensation_period_ms": 30 * DAY_MS})
    w.confirmed_order()
    for ticket_id in ("t-1", "t-2", "t-3"):
        staff_ticket_on_order(w, ticket_id)
    w.ok("compensate", STAFF, ["t-1", 2_000])
    w.ok("compensate", STAFF, ["t-2", 2_000])
    assert w.refused("compensate", STAFF, ["t-3", 2_000]) == "customer_compensation_cap_exceeded"
    assert w.refused("compensate", STAFF, ["t-3", 1]) == "customer_compensation_cap_exceeded"
    assert w.ticket("t-3").compensated == 0 and w.balance(ALICE) == 100 + 4_000  # earned on the order + 2 tickets
    w.tick(30 * DAY_MS)  # the next period has a cap of its own
    w.ok("compensate", STAFF, ["t-3", 2_000])


def test_the_cap_per_customer_does_not_touch_another_customer():
    w = World({"compensation_cap_per_customer": 500})
    w.confirmed_order("o-a", ALICE)
    w.confirmed_order("o-b", BOB)
    staff_ticket_on_order(w, "t-a", "o-a")
    staff_ticket_on_order(w, "t-b", "o-b")
    w.ok("compensate", STAFF, ["t-a", 500])
    w.ok("compensate", STAFF, ["t-b", 500])


@pytest.mark.parametrize("state", ["resolved", "closed"])
def test_staff_compensating_a_finished_ticket_is_refused_with_ticket_state(state):
    w = World()
    drive_to(w, state)
    assert w.refused("compensate", STAFF, ["t-1", 100]) == "ticket_state"
    assert w.balance(ALICE) == 0


@pytest.mark.parametrize("state", ["open", "assigned", "in_progress"])
def test_an_active_ticket_in_the_senders_branch_is_compensated(state):
    w = World()
    drive_to(w, state)  # (a customer's ticket with no order is in their registered branch, "north", from the start)
    w.ok("compensate", STAFF, ["t-1", 100])
    assert w.balance(ALICE) == 100


def test_customer_compensated_to_the_silver_threshold_stays_in_the_base_tier():
    w = World({"tier_silver_threshold": 1_000, "compensation_cap_per_ticket": 2_000})
    w.confirmed_order()
    staff_ticket_on_order(w, "t-1")
    w.ok("compensate", STAFF, ["t-1", 2_000])
    assert w.balance(ALICE) == 2_100 and get_tier(w.state, ALICE.public_key, w.now) == "base"
