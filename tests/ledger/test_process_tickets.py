"""Ticket kinds, compensation and feedback: success and every refusal by its reason; one class per kind."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import codec, customers
from ledger.commitments import NO_TEXT
from ledger.errors import InvalidTransaction
from ledger.process import get_kind
from ledger.process.tickets import RespondTicket, process_respond_ticket
from ledger.reasons import TxFailure
from ledger.tickets import ACTIVE, STATES
from tests.ledger.flows_world import ADMIN, ALICE, BOB, STAFF, STAFF2, STAFF3, STRANGER, World, h
from tests.strategies import account_ids, bad_payload_fields

KINDS = ("open-ticket", "assign-ticket", "respond-ticket", "wait-ticket", "reply-ticket", "resolve-ticket",
         "reopen-ticket", "close-ticket", "compensate", "submit-feedback")
HOUR = 3_600_000


def open_payload(ticket_id="t-1", category="complaint", priority=2, order_id=""):
    return [ticket_id, category, priority, order_id, h("my parcel is late")]


def drive_to(w: World, state: str, ticket_id: str = "t-1", category: str = "complaint") -> None:
    """Open a ticket and walk it to ``state`` through the public kinds."""
    w.open_ticket(ticket_id, category)
    steps = {"open": [], "assigned": [("assign-ticket", ADMIN, [ticket_id, STAFF.public_key])],
             "in_progress": [("respond-ticket", STAFF, [ticket_id, h("on it")])],
             "waiting": [("wait-ticket", STAFF, [ticket_id, h("which parcel?")])],
             "resolved": [("resolve-ticket", STAFF, [ticket_id, h("fixed")])]}
    steps["closed"] = steps["resolved"] + [("close-ticket", ALICE, [ticket_id])]
    for kind, sender, payload in steps[state]:
        w.tick()
        w.ok(kind, sender, payload)
    assert w.ticket(ticket_id).state == state


class TestOpenTicket:
    def test_a_customer_opens_a_ticket_with_its_time_in_their_registered_branch(self):
        w = World()
        events = w.ok("open-ticket", ALICE, open_payload())
        t = w.ticket("t-1")
        assert (t.customer, t.opened_by, t.category, t.priority, t.state) == (
            ALICE.public_key, ALICE.public_key, "complaint", 2, "open")
        assert (t.opened_at, t.branch, t.flagged, t.order_id) == (w.now, "north", 0, "")
        assert events == (["ticket_opened", "t-1", ALICE.public_key, "complaint", 2, 0, "north"],
                          ["sla_clock", "t-1", ALICE.public_key, w.now + 8 * HOUR, w.now + 72 * HOUR])

    def test_a_ticket_linked_to_an_order_takes_the_orders_branch(self):
        w = World()
        w.new_order(staff=STAFF2)
        w.ok("open-ticket", ALICE, open_payload(order_id="o-1"))
        assert (w.ticket("t-1").order_id, w.ticket("t-1").branch) == ("o-1", "south")

    def test_staff_open_a_ticket_for_the_customer_of_the_linked_order(self):
        w = World()
        w.new_order(customer=BOB)
        w.ok("open-ticket", STAFF, open_payload(order_id="o-1"))
        t = w.ticket("t-1")
        assert (t.customer, t.opened_by, t.branch) == (BOB.public_key, STAFF.public_key, "north")

    @pytest.mark.parametrize("privilege", ["priority", "vip"])
    def test_a_customer_holding_a_privilege_gets_the_ticket_flagged(self, privilege):
        w = World()
        w.state.set_state(customers.privilege_key(ALICE.public_key, privilege), codec.encode(w.now + 10))
        w.ok("open-ticket", ALICE, open_payload())
        assert w.ticket("t-1").flagged == 1

    def test_an_expired_privilege_does_not_flag(self):
        w = World()
        w.state.set_state(customers.privilege_key(ALICE.public_key, "vip"), codec.encode(w.now))
        w.ok("open-ticket", ALICE, open_payload())
        assert w.ticket("t-1").flagged == 0

    def test_a_reused_ticket_id_is_ticket_exists(self):
        w = World()
        w.open_ticket()
        assert w.refused("open-ticket", BOB, open_payload()) == "ticket_exists"

    @pytest.mark.parametrize("ticket_id", ["", "y" * 65, "new\nline"])
    def test_an_unusable_ticket_id_is_invalid_id(self, ticket_id):
        assert World().refused("open-ticket", ALICE, open_payload(ticket_id=ticket_id)) == "invalid_id"

    def test_an_unknown_category_is_invalid_category(self):
        assert World().refused("open-ticket", ALICE, open_payload(category="praise")) == "invalid_category"

    @pytest.mark.parametrize("priority", [0, 4, -1])
    def test_a_priority_outside_1_to_3_is_invalid_priority(self, priority):
        assert World().refused("open-ticket", ALICE, open_payload(priority=priority)) == "invalid_priority"

    def test_staff_without_an_order_is_order_required(self):
        assert World().refused("open-ticket", STAFF, open_payload()) == "order_required"

    def test_an_unknown_linked_order_is_order_not_found(self):
        assert World().refused("open-ticket", ALICE, open_payload(order_id="o-404")) == "order_not_found"

    def test_another_customers_order_is_not_order_customer(self):
        w = World()
        w.new_order(customer=BOB)
        assert w.refused("open-ticket", ALICE, open_payload(order_id="o-1")) == "not_order_customer"

    def test_an_unregistered_sender_is_unknown_customer(self):
        assert World().refused("open-ticket", STRANGER, open_payload()) == "unknown_customer"

    def test_a_malformed_payload_is_bad_payload(self):
        with pytest.raises(InvalidTransaction) as exc:
            get_kind("open-ticket").compute_payload(["t-1", "complaint", "2", "", h("x")])
        assert exc.value.code == "bad_payload"


class TestBranchOfATicketWithoutAnOrder:
    """A customer's ticket without an order is in their registered branch from the start: nobody can claim it."""

    @pytest.mark.parametrize("kind, payload", [
        ("respond-ticket", ["t-1", h("mine now")]), ("wait-ticket", ["t-1", h("tell me more")]),
        ("resolve-ticket", ["t-1", h("done")]), ("assign-ticket", ["t-1", STAFF2.public_key]),
        ("compensate", ["t-1", 100])])
    def test_staff_of_another_branch_cannot_claim_a_customers_ticket_to_read_it(self, kind, payload):
        w = World()
        w.open_ticket()  # ALICE registered in "north", no order
        assert w.refused(kind, STAFF2, payload) == "wrong_branch"
        t = w.ticket("t-1")
        assert (t.branch, t.state, t.first_response_at, t.assignee) == ("north", "open", 0, b"")

    def test_staff_of_the_customers_branch_act_on_it_without_claiming(self):
        w = World()
        w.open_ticket()
        w.ok("respond-ticket", STAFF, ["t-1", h("on it")])
        assert w.ticket("t-1").branch == "north"
        assert w.refused("respond-ticket", STAFF2, ["t-1", h("me too")]) == "wrong_branch"


class TestAssignTicket:
    def test_an_admin_assigns_to_staff_and_the_ticket_moves_to_their_branch(self):
        # (issue 11: an admin assigns only to staff of the admin's own branch, here "north")
        w = World()
        w.open_ticket()
        events = w.ok("assign-ticket", ADMIN, ["t-1", STAFF3.public_key])
        t = w.ticket("t-1")
        assert (t.state, t.assignee, t.branch) == ("assigned", STAFF3.public_key, "north")
        assert events == (["ticket_assigned", "t-1", STAFF3.public_key, "north"],)

    def test_reassigning_a_ticket_in_progress_keeps_it_in_progress(self):
        w = World()
        drive_to(w, "in_progress")
        w.ok("assign-ticket", STAFF, ["t-1", STAFF3.public_key])
        assert (w.ticket("t-1").state, w.ticket("t-1").assignee) == ("in_progress", STAFF3.public_key)

    def test_a_customer_cannot_assign(self):
        w = World()
        w.open_ticket()
        assert w.refused("assign-ticket", ALICE, ["t-1", STAFF.public_key]) == "unauthorized"

    def test_an_assignee_without_the_staff_role_is_not_staff(self):
        w = World()
        w.open_ticket()
        assert w.refused("assign-ticket", ADMIN, ["t-1", BOB.public_key]) == "not_staff"

    def test_an_unknown_ticket_is_ticket_not_found(self):
        assert World().refused("assign-ticket", ADMIN, ["t-9", STAFF.public_key]) == "ticket_not_found"

    @pytest.mark.parametrize("state", ["resolved", "closed"])
    def test_a_finished_ticket_cannot_be_assigned(self, state):
        w = World()
        drive_to(w, state)
        assert w.refused("assign-ticket", ADMIN, ["t-1", STAFF.public_key]) == "ticket_state"


class TestRespondTicket:
    def test_the_first_response_fixes_the_first_response_time(self):
        w = World()
        w.open_ticket()
        opened = w.now
        w.tick(5_000)
        events = w.ok("respond-ticket", STAFF, ["t-1", h("looking")])
        w.tick(9_000)
        w.ok("respond-ticket", STAFF, ["t-1", h("still looking")])
        t = w.ticket("t-1")
        assert (t.state, t.first_response_at, t.first_response_ms) == ("in_progress", opened + 5_000, 5_000)
        assert t.branch == "north"  # the customer's branch, from the opening
        assert t.last_response_hash == h("still looking")
        assert events == (["ticket_responded", "t-1", STAFF.public_key, 5_000],)

    def test_a_customer_cannot_respond_as_staff(self):
        w = World()
        w.open_ticket()
        assert w.refused("respond-ticket", ALICE, ["t-1", h("x")]) == "unauthorized"

    def test_an_unknown_ticket_is_ticket_not_found(self):
        assert World().refused("respond-ticket", STAFF, ["t-9", h("x")]) == "ticket_not_found"

    def test_a_resolved_ticket_cannot_get_a_response_and_the_message_names_both_states(self):
        w = World()
        drive_to(w, "resolved")
        with pytest.raises(TxFailure) as exc:
            process_respond_ticket(w.ctx(STAFF), RespondTicket("t-1", h("x")))
        assert exc.value.reason.name == "ticket_state"
        assert "is resolved" in exc.value.detail and "open or assigned or in_progress or waiting" in exc.value.detail


class TestWaitTicket:
    def test_staff_ask_the_customer_and_the_ticket_waits_with_its_clock_paused(self):
        w = World()
        w.open_ticket()
        w.tick(5_000)
        events = w.ok("wait-ticket", STAFF, ["t-1", h("which parcel?")])
        t = w.ticket("t-1")
        assert (t.state, t.paused_at, t.branch, t.last_response_hash) == ("waiting", w.now, "north", h("which parcel?"))
        assert t.first_response_ms == 5_000  # a question to the customer is a response
        assert events == (["ticket_waiting", "t-1", STAFF.public_key],)

    def test_a_customer_cannot_put_a_ticket_on_wait(self):
        w = World()
        w.open_ticket()
        assert w.refused("wait-ticket", ALICE, ["t-1", h("x")]) == "unauthorized"

    def test_staff_of_another_branch_cannot_put_it_on_wait(self):
        w = World()
        w.routed_ticket()  # in "north"
        assert w.refused("wait-ticket", STAFF2, ["t-1", h("x")]) == "wrong_branch"

    def test_an_unknown_ticket_is_ticket_not_found(self):
        assert World().refused("wait-ticket", STAFF, ["t-9", h("x")]) == "ticket_not_found"

    @pytest.mark.parametrize("state", ["waiting", "resolved", "closed"])
    def test_a_waiting_or_finished_ticket_cannot_wait_again(self, state):
        w = World()
        drive_to(w, state)
        assert w.refused("wait-ticket", STAFF, ["t-1", h("x")]) == "ticket_state"

    def test_assigning_a_waiting_ticket_keeps_it_waiting(self):
        w = World()
        drive_to(w, "waiting")
        w.ok("assign-ticket", ADMIN, ["t-1", STAFF3.public_key])
        assert (w.ticket("t-1").state, w.ticket("t-1").assignee) == ("waiting", STAFF3.public_key)


class TestEmptyCommitment:
    """Staff who would stop the SLA clock alone with a wait that asks nothing (or answer nothing) are refused."""

    @pytest.mark.parametrize("kind", ["wait-ticket", "respond-ticket"])
    def test_staff_who_send_the_empty_commitment_as_a_question_or_response_are_refused(self, kind):
        w = World()
        w.open_ticket()
        assert w.refused(kind, STAFF, ["t-1", NO_TEXT]) == "empty_commitment"
        t = w.ticket("t-1")
        assert (t.state, t.first_response_at, t.paused_at) == ("open", 0, 0)  # no response, no pause

    def test_staff_who_resolve_with_the_empty_commitment_to_stop_both_clocks_are_refused(self):
        w = World()
        w.open_ticket()
        assert w.refused("resolve-ticket", STAFF, ["t-1", NO_TEXT]) == "empty_commitment"
        t = w.ticket("t-1")
        assert (t.state, t.resolved_at, t.first_response_at) == ("open", 0, 0)  # both SLA clocks still run

    def test_the_refusal_says_what_was_empty_and_what_is_expected(self):
        w = World()
        w.open_ticket()
        with pytest.raises(TxFailure) as exc:
            process_respond_ticket(w.ctx(STAFF), RespondTicket("t-1", NO_TEXT))
        assert exc.value.reason.name == "empty_commitment"
        assert "the response is the empty commitment" in exc.value.detail and "expected" in exc.value.detail


class TestReplyTicket:
    def test_the_customer_answers_and_the_ticket_is_back_in_progress_with_its_clock_running(self):
        w = World()
        drive_to(w, "waiting")
        before = w.ticket("t-1")
        w.tick(HOUR)
        events = w.ok("reply-ticket", ALICE, ["t-1", h("the blue one")])
        t = w.ticket("t-1")
        assert (t.state, t.paused_at, t.paused_ms, t.last_reply_hash) == ("in_progress", 0, HOUR, h("the blue one"))
        assert t.resolution_due == before.resolution_due + HOUR
        assert events == (["ticket_replied", "t-1", ALICE.public_key, HOUR],
                          ["sla_clock", "t-1", ALICE.public_key, t.first_response_due, t.resolution_due])

    def test_another_customer_cannot_answer(self):
        w = World()
        drive_to(w, "waiting")
        assert w.refused("reply-ticket", BOB, ["t-1", h("x")]) == "not_ticket_customer"

    def test_staff_cannot_answer_for_the_customer(self):
        w = World()
        drive_to(w, "waiting")
        assert w.refused("reply-ticket", STAFF, ["t-1", h("x")]) == "not_ticket_customer"

    def test_an_unknown_ticket_is_ticket_not_found(self):
        assert World().refused("reply-ticket", ALICE, ["t-9", h("x")]) == "ticket_not_found"

    @pytest.mark.parametrize("state", ["open", "assigned", "in_progress", "resolved", "closed"])
    def test_only_a_ticket_waiting_on_the_customer_takes_a_reply(self, state):
        w = World()
        drive_to(w, state)
        assert w.refused("reply-ticket", ALICE, ["t-1", h("x")]) == "ticket_state"


class TestResolveTicket:
    def test_resolving_records_the_resolution_time_and_hash(self):
        w = World()
        drive_to(w, "in_progress")
        w.tick(60_000)
        events = w.ok("resolve-ticket", STAFF, ["t-1", h("refunded")])
        t = w.ticket("t-1")
        assert (t.state, t.resolved_at, t.resolution_hash) == ("resolved", w.now, h("refunded"))
        assert t.resolution_ms == w.now - t.opened_at
        assert events == (["ticket_resolved", "t-1", STAFF.public_key, w.now - t.opened_at],)

    def test_resolving_an_unanswered_ticket_counts_as_its_first_response(self):
        w = World()
        w.open_ticket()
        w.tick(7_000)
        w.ok("resolve-ticket", STAFF, ["t-1", h("done")])
        assert w.ticket("t-1").first_response_ms == 7_000

    def test_a_customer_cannot_resolve(self):
        w = World()
        w.open_ticket()
        assert w.refused("resolve-ticket", ALICE, ["t-1", h("x")]) == "unauthorized"

    def test_an_unknown_ticket_is_ticket_not_found(self):
        assert World().refused("resolve-ticket", STAFF, ["t-9", h("x")]) == "ticket_not_found"

    @pytest.mark.parametrize("state", ["resolved", "closed"])
    def test_a_finished_ticket_cannot_be_resolved_again(self, state):
        w = World()
        drive_to(w, state)
        assert w.refused("resolve-ticket", STAFF, ["t-1", h("x")]) == "ticket_state"


class TestReopenTicket:
    def test_the_customer_reopens_a_resolved_ticket(self):
        w = World()
        drive_to(w, "resolved")
        events = w.ok("reopen-ticket", ALICE, ["t-1", h("still broken")])
        t = w.ticket("t-1")
        assert (t.state, t.resolved_at, t.reopen_count) == ("open", 0, 1)
        assert t.first_response_at > 0  # the SLA figure of the first response is kept
        assert events == (["ticket_reopened", "t-1", ALICE.public_key, 1],
                          ["sla_clock", "t-1", ALICE.public_key, t.first_response_due, w.now + 72 * HOUR])

    def test_staff_cannot_reopen_for_the_customer(self):
        w = World()
        drive_to(w, "resolved")
        assert w.refused("reopen-ticket", STAFF, ["t-1", h("")]) == "not_ticket_customer"

    def test_an_unknown_ticket_is_ticket_not_found(self):
        assert World().refused("reopen-ticket", ALICE, ["t-9", h("")]) == "ticket_not_found"

    @pytest.mark.parametrize("state", ["open", "assigned", "in_progress", "waiting", "closed"])
    def test_only_a_resolved_ticket_reopens(self, state):
        w = World()
        drive_to(w, state)
        assert w.refused("reopen-ticket", ALICE, ["t-1", h("")]) == "ticket_state"

    def test_a_free_text_reason_is_bad_payload_the_chain_takes_only_its_commitment(self):
        with pytest.raises(InvalidTransaction) as exc:
            get_kind("reopen-ticket").compute_payload(["t-1", "still broken"])
        assert exc.value.code == "bad_payload" and "reason_hash" in str(exc.value)


class TestCloseTicket:
    @pytest.mark.parametrize("closer", [ALICE, STAFF3])
    def test_the_customer_or_staff_close_a_resolved_ticket(self, closer):
        w = World()
        drive_to(w, "resolved")
        w.tick()
        events = w.ok("close-ticket", closer, ["t-1"])
        assert (w.ticket("t-1").state, w.ticket("t-1").closed_at) == ("closed", w.now)
        assert events == (["ticket_closed", "t-1", closer.public_key],)

    def test_another_customer_cannot_close(self):
        w = World()
        drive_to(w, "resolved")
        assert w.refused("close-ticket", BOB, ["t-1"]) == "not_ticket_customer"

    def test_an_unknown_ticket_is_ticket_not_found(self):
        assert World().refused("close-ticket", ALICE, ["t-9"]) == "ticket_not_found"

    @pytest.mark.parametrize("state", ["open", "assigned", "in_progress", "waiting", "closed"])
    def test_only_a_resolved_ticket_closes(self, state):
        w = World()
        drive_to(w, state)
        assert w.refused("close-ticket", ALICE, ["t-1"]) == "ticket_state"


class TestCompensate:
    def test_compensation_credits_the_customer_and_adds_to_the_tickets_total(self):
        w = World()
        w.routed_ticket()
        events = w.ok("compensate", STAFF, ["t-1", 300])
        w.ok("compensate", STAFF3, ["t-1", 200])
        assert (w.balance(ALICE), w.ticket("t-1").compensated) == (500, 500)
        assert events[-1] == ["compensated", "t-1", ALICE.public_key, 300]
        assert any(e[0] == "credited" and e[3] == "compensation" for e in events)

    def test_compensation_up_to_exactly_the_cap_is_paid_and_one_more_coin_is_refused(self):
        w = World(policy={"compensation_cap_per_ticket": 1_000})
        w.routed_ticket()
        w.ok("compensate", STAFF, ["t-1", 1_000])
        assert w.refused("compensate", STAFF, ["t-1", 1]) == "compensation_cap_exceeded"
        assert w.balance(ALICE) == 1_000

    def test_the_cap_is_per_ticket(self):
        w = World(policy={"compensation_cap_per_ticket": 1_000})
        w.routed_ticket("t-1")
        w.routed_ticket("t-2")
        w.ok("compensate", STAFF, ["t-1", 1_000])
        w.ok("compensate", STAFF, ["t-2", 1_000])
        assert w.balance(ALICE) == 2_000

    @pytest.mark.parametrize("category", ["inquiry", "suggestion"])
    def test_only_complaints_are_compensated(self, category):
        w = World()
        w.routed_ticket(category=category)
        assert w.refused("compensate", STAFF, ["t-1", 10]) == "not_a_complaint"

    def test_a_customer_cannot_compensate_themselves(self):
        w = World()
        w.routed_ticket()
        assert w.refused("compensate", ALICE, ["t-1", 10]) == "unauthorized"

    @pytest.mark.parametrize("amount", [0, -10])
    def test_a_non_positive_amount_is_invalid_amount(self, amount):
        w = World()
        w.routed_ticket()
        assert w.refused("compensate", STAFF, ["t-1", amount]) == "invalid_amount"

    def test_an_unknown_ticket_is_ticket_not_found(self):
        assert World().refused("compensate", STAFF, ["t-9", 10]) == "ticket_not_found"


class TestSubmitFeedback:
    @pytest.mark.parametrize("state", ["resolved", "closed"])
    def test_feedback_on_a_finished_ticket_is_recorded_and_rewarded(self, state):
        w = World()
        drive_to(w, state)
        events = w.ok("submit-feedback", ALICE, ["ticket", "t-1", 4, h("thanks")])
        assert (w.balance(ALICE), w.ticket("t-1").rating) == (50, 4)
        assert events[-1] == ["feedback", "ticket", "t-1", ALICE.public_key, 4, 50]
        assert any(e[0] == "credited" and e[3] == "reward" for e in events)

    def test_feedback_on_a_confirmed_order_is_recorded_and_rewarded(self):
        w = World()
        w.confirmed_order()
        w.ok("submit-feedback", ALICE, ["order", "o-1", 5, h("great")])
        assert (w.balance(ALICE), w.order("o-1").rating) == (100 + 50, 5)

    def test_a_second_feedback_on_the_same_target_is_already_rewarded(self):
        w = World()
        drive_to(w, "resolved")
        w.ok("submit-feedback", ALICE, ["ticket", "t-1", 4, h("a")])
        w.ok("reopen-ticket", ALICE, ["t-1", h("again")])
        w.ok("resolve-ticket", STAFF, ["t-1", h("really fixed")])
        assert w.refused("submit-feedback", ALICE, ["ticket", "t-1", 5, h("b")]) == "already_rewarded"
        assert (w.balance(ALICE), w.ticket("t-1").rating) == (50, 4)

    def test_an_order_and_a_ticket_with_the_same_id_are_rewarded_separately(self):
        w = World()
        w.confirmed_order("same")
        drive_to(w, "resolved", ticket_id="same")
        w.ok("submit-feedback", ALICE, ["order", "same", 3, h("o")])
        w.ok("submit-feedback", ALICE, ["ticket", "same", 3, h("t")])
        assert w.balance(ALICE) == 100 + 50 + 50

    @pytest.mark.parametrize("rating", [0, 6, -1])
    def test_a_rating_outside_1_to_5_is_invalid_rating(self, rating):
        w = World()
        drive_to(w, "resolved")
        assert w.refused("submit-feedback", ALICE, ["ticket", "t-1", rating, h("x")]) == "invalid_rating"

    def test_an_unknown_target_kind_is_invalid_target(self):
        assert World().refused("submit-feedback", ALICE, ["coupon", "c-1", 3, h("x")]) == "invalid_target"

    @pytest.mark.parametrize("kind, reason", [("ticket", "ticket_not_found"), ("order", "order_not_found")])
    def test_an_unknown_target_is_not_found(self, kind, reason):
        assert World().refused("submit-feedback", ALICE, [kind, "x-1", 3, h("x")]) == reason

    def test_feedback_on_someone_elses_ticket_is_not_ticket_customer(self):
        w = World()
        drive_to(w, "resolved")
        assert w.refused("submit-feedback", BOB, ["ticket", "t-1", 3, h("x")]) == "not_ticket_customer"

    def test_feedback_on_someone_elses_order_is_not_order_customer(self):
        w = World()
        w.confirmed_order()
        assert w.refused("submit-feedback", BOB, ["order", "o-1", 3, h("x")]) == "not_order_customer"

    @pytest.mark.parametrize("state", ["open", "assigned", "in_progress", "waiting"])
    def test_feedback_on_an_unfinished_ticket_is_ticket_state(self, state):
        w = World()
        drive_to(w, state)
        assert w.refused("submit-feedback", ALICE, ["ticket", "t-1", 3, h("x")]) == "ticket_state"

    def test_feedback_on_a_paid_but_unconfirmed_order_is_not_confirmed(self):
        w = World()
        w.paid_order()
        assert w.refused("submit-feedback", ALICE, ["order", "o-1", 3, h("x")]) == "not_confirmed"

    def test_a_zero_reward_policy_records_the_rating_and_still_pays_once(self):
        w = World(policy={"feedback_reward": 0})
        drive_to(w, "resolved")
        w.ok("submit-feedback", ALICE, ["ticket", "t-1", 2, h("x")])
        assert (w.balance(ALICE), w.ticket("t-1").rating) == (0, 2)
        assert w.refused("submit-feedback", ALICE, ["ticket", "t-1", 2, h("x")]) == "already_rewarded"


class TestPayloadShapes:
    @pytest.mark.parametrize("kind, payload", [
        ("assign-ticket", ["t-1", b"short"]),
        ("respond-ticket", ["t-1", "not bytes"]),
        ("resolve-ticket", ["t-1"]),
        ("reopen-ticket", ["t-1", 5]),
        ("wait-ticket", ["t-1", "not bytes"]),
        ("reply-ticket", ["t-1"]),
        ("close-ticket", ["t-1", "extra"]),
        ("compensate", ["t-1", "10"]),
        ("submit-feedback", ["ticket", "t-1", 3]),
        ("submit-feedback", ["ticket", "t-1", "3", h("x")]),
    ])
    def test_a_malformed_payload_is_bad_payload(self, kind, payload):
        with pytest.raises(InvalidTransaction) as exc:
            get_kind(kind).compute_payload(payload)
        assert exc.value.code == "bad_payload"

    @pytest.mark.parametrize("kind", KINDS + ("create-order", "pay-order", "confirm-order", "request-refund",
                                              "record-training"))
    @given(payload=st.lists(st.one_of(bad_payload_fields, account_ids, st.sampled_from(["t-1", "ticket"])),
                            max_size=6))
    def test_any_payload_either_parses_or_is_refused_as_bad_payload(self, kind, payload):
        try:
            get_kind(kind).compute_payload(payload)
        except InvalidTransaction as exc:
            assert exc.code == "bad_payload"

    def test_every_ticket_kind_is_registered(self):
        assert all(get_kind(k).name == k for k in KINDS)
        assert set(ACTIVE) < set(STATES)


def test_stranger_probing_a_ticket_id_does_not_learn_its_customer():
    """A refused tx's detail reaches its sender in tx status: replying to someone else's ticket must not name
    the ticket's customer."""
    from ledger.tickets import verify_ticket_customer

    w = World()
    drive_to(w, "waiting")
    with pytest.raises(TxFailure) as exc:
        verify_ticket_customer("t-1", w.ticket("t-1"), BOB.public_key)
    assert exc.value.reason.name == "not_ticket_customer"
    assert ALICE.public_key.hex()[:8] not in str(exc.value)
