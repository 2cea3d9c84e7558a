"""The SLA clock (``ledger.sla``): deadlines from policy, the pause, reopen, and breaches that compensate once.

The block-time sweep is emulated by ``sweep``: exactly its contract (each due entry removed, then
``process_sla_due`` under its own checkpoint), so these tests need no node.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger import codec, customers, due
from ledger.customers import get_earned
from ledger.events import decode_event
from ledger.limits import get_compensated
from ledger.lots import get_coin_totals
from ledger.sla import FIRST_RESPONSE, RESOLUTION, process_sla_due, sla_subject
from ledger.state import get_supply, policy_key
from ledger.tickets import set_ticket
from tests.ledger.flows_world import ALICE, BOB, STAFF, World, h

HOUR = 3_600_000


def sweep(w: World) -> list[list]:
    """Run every SLA entry due at the block time, as the block's sweep does; return the events as wire arrays."""
    events: list[list] = []
    for due_ms, subject in due.get_due(w.state, due.QUEUE_SLA, w.now, 1_000):
        due.unschedule(w.state, due.QUEUE_SLA, due_ms, subject)
        mark = w.state.checkpoint()
        try:
            events += [e.to_wire() for e in process_sla_due(w.ctx(), due_ms, subject)]
        except Exception:
            w.state.rollback(mark)
            raise
    return events


def at(w: World, time_ms: int) -> None:
    """Move the block clock to ``time_ms``."""
    w.tick(time_ms - w.now)


def open_complaint(w: World, ticket_id: str = "t-1", priority: int = 2, category: str = "complaint",
                   customer=ALICE) -> int:
    w.ok("open-ticket", customer, [ticket_id, category, priority, "", h("late parcel")])
    return w.now


def breaches(events: list[list]) -> list[list]:
    return [e for e in events if e[0] == "sla_breached"]


class TestDeadlines:
    @pytest.mark.parametrize("category, priority, first_h, resolution_h", [
        ("complaint", 3, 2, 24), ("complaint", 1, 24, 7 * 24), ("inquiry", 2, 24, 7 * 24), ("suggestion", 2, 7 * 24, 0)])
    def test_opening_sets_the_policy_targets_per_category_and_priority(self, category, priority, first_h, resolution_h):
        w = World()
        opened = open_complaint(w, priority=priority, category=category)
        t = w.ticket("t-1")
        assert (t.first_response_due, t.resolution_due) == (
            opened + first_h * HOUR, opened + resolution_h * HOUR if resolution_h else 0)
        queued = due.get_due(w.state, due.QUEUE_SLA, 2**64 - 1, 10)
        assert queued == sorted([(t.first_response_due, sla_subject(FIRST_RESPONSE, "t-1"))]
                                + ([(t.resolution_due, sla_subject(RESOLUTION, "t-1"))] if resolution_h else []))

    def test_a_customer_holding_the_priority_privilege_gets_shorter_targets(self):
        w = World(policy={"privilege_priority_sla_factor_pct": 25})
        w.state.set_state(customers.privilege_key(ALICE.public_key, "priority"), codec.encode(w.now + 10))
        opened = open_complaint(w)
        t = w.ticket("t-1")
        assert (t.sla_factor_pct, t.first_response_due, t.resolution_due) == (25, opened + 2 * HOUR, opened + 18 * HOUR)

    def test_a_vip_without_the_priority_privilege_gets_the_normal_targets(self):
        w = World()
        w.state.set_state(customers.privilege_key(ALICE.public_key, "vip"), codec.encode(w.now + 10))
        opened = open_complaint(w)
        assert (w.ticket("t-1").sla_factor_pct, w.ticket("t-1").first_response_due) == (100, opened + 8 * HOUR)

    def test_a_zero_target_in_policy_means_no_deadline_and_no_breach(self):
        w = World(policy={"sla_first_response_ms_complaint_p2": 0, "sla_resolution_ms_complaint_p2": 0})
        events = w.ok("open-ticket", ALICE, ["t-1", "complaint", 2, "", h("x")])
        assert [e[0] for e in events] == ["ticket_opened"]
        at(w, w.now + 365 * 24 * HOUR)
        assert sweep(w) == [] and w.balance(ALICE) == 0


class TestBreach:
    def test_nobody_answering_by_the_deadline_breaches_and_credits_the_customer(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + 8 * HOUR - 1)
        assert sweep(w) == []
        at(w, opened + 8 * HOUR)
        events = sweep(w)
        assert events[-1] == ["sla_breached", "t-1", ALICE.public_key, "first_response", opened + 8 * HOUR, 100]
        assert any(e[0] == "credited" and e[2] == 100 and e[3] == "sla" for e in events)
        t = w.ticket("t-1")
        assert (w.balance(ALICE), t.breached, t.sla_compensated, t.compensated) == (100, 1, 100, 0)
        assert get_coin_totals(w.state)["credited:sla"] == 100

    def test_a_target_breaches_once_and_only_once(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + 8 * HOUR)
        sweep(w)
        # the same entry again (a stale duplicate) pays nothing
        assert process_sla_due(w.ctx(), opened + 8 * HOUR, sla_subject(FIRST_RESPONSE, "t-1")) == []
        at(w, opened + 72 * HOUR)
        assert breaches(sweep(w)) == [["sla_breached", "t-1", ALICE.public_key, "resolution", opened + 72 * HOUR,
                                       300]]
        at(w, opened + 1_000 * HOUR)
        assert sweep(w) == []
        assert (w.balance(ALICE), w.ticket("t-1").breached, w.ticket("t-1").sla_compensated) == (400, 3, 400)

    def test_an_answer_before_the_deadline_meets_the_target_and_leaves_the_queue(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + 8 * HOUR - 1)
        w.ok("respond-ticket", STAFF, ["t-1", h("on it")])
        assert [s for _, s in due.get_due(w.state, due.QUEUE_SLA, 2**64 - 1, 10)] == [sla_subject(RESOLUTION, "t-1")]
        at(w, opened + 9 * HOUR)
        assert sweep(w) == [] and w.balance(ALICE) == 0

    def test_a_resolution_in_time_ends_both_clocks(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + HOUR)
        w.ok("resolve-ticket", STAFF, ["t-1", h("fixed")])
        assert due.get_due(w.state, due.QUEUE_SLA, 2**64 - 1, 10) == []
        at(w, opened + 1_000 * HOUR)
        assert sweep(w) == [] and w.ticket("t-1").breached == 0

    def test_an_answer_in_the_block_of_the_deadline_is_late_because_the_sweep_runs_first(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + 8 * HOUR)
        assert len(breaches(sweep(w))) == 1  # the block's sweep, before its transactions
        w.ok("respond-ticket", STAFF, ["t-1", h("sorry")])
        assert w.ticket("t-1").breached == 1

    def test_breach_compensation_is_not_an_earning_and_raises_no_tier(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + 8 * HOUR)
        sweep(w)
        assert (w.balance(ALICE), get_earned(w.state, ALICE.public_key)) == (100, 0)

    def test_a_credit_over_the_supply_cap_still_records_the_breach_with_zero_and_says_why(self):
        w = World(policy={"mint_cap": 1_000})
        w.fund(BOB, 950)
        opened = open_complaint(w)
        at(w, opened + 8 * HOUR)
        events = sweep(w)
        assert events == [["sla_breached", "t-1", ALICE.public_key, "first_response", opened + 8 * HOUR, 0],
                          ["sla_compensation_refused", "t-1", ALICE.public_key, "first_response", "mint_cap_exceeded"]]
        t = w.ticket("t-1")
        assert (w.balance(ALICE), get_supply(w.state), t.breached, t.sla_compensated) == (0, 950, 1, 0)
        at(w, opened + 9 * HOUR)
        assert sweep(w) == []  # recorded: never retried, never paid twice


class TestCompensationCap:
    def test_customer_who_opens_many_unanswered_complaints_is_paid_at_most_the_cap_per_customer(self):
        w = World(policy={"compensation_cap_per_customer": 4_000})
        opened = w.now
        for n in range(16):  # 16 x (100 + 300) = 6,400 without the cap
            open_complaint(w, f"t-{n}")
        at(w, opened + 8 * HOUR)
        events = sweep(w)
        at(w, opened + 72 * HOUR)
        events += sweep(w)
        assert len(breaches(events)) == 32  # every breach stands
        assert sum(e[5] for e in breaches(events)) == w.balance(ALICE) == 4_000
        refused = [e for e in events if e[0] == "sla_compensation_refused"]
        assert len(refused) == 8 and {e[4] for e in refused} == {"customer_compensation_cap_exceeded"}
        assert sum(w.ticket(f"t-{n}").sla_compensated for n in range(16)) == 4_000
        assert get_compensated(w.state, ALICE.public_key, w.now, 30 * 24 * HOUR) == 4_000

    def test_breach_compensation_uses_up_the_cap_that_manual_compensation_shares(self):
        w = World(policy={"compensation_cap_per_customer": 150})
        opened = open_complaint(w)
        at(w, opened + 8 * HOUR)
        assert breaches(sweep(w))[0][5] == 100
        assert w.refused("compensate", STAFF, ["t-1", 100]) == "customer_compensation_cap_exceeded"
        w.ok("compensate", STAFF, ["t-1", 50])
        assert w.balance(ALICE) == 150


class TestPause:
    def test_the_clock_stops_while_waiting_on_the_customer_and_resumes_by_the_time_waited(self):
        w = World(policy={"sla_max_wait_ms": 200 * HOUR})
        opened = open_complaint(w)
        at(w, opened + HOUR)
        w.ok("wait-ticket", STAFF, ["t-1", h("which parcel?")])
        # only the wait bound is queued: the deadline + the max wait
        assert due.get_due(w.state, due.QUEUE_SLA, 2**64 - 1, 10) == [(opened + 272 * HOUR,
                                                                       sla_subject(RESOLUTION, "t-1"))]
        at(w, opened + 100 * HOUR)
        assert sweep(w) == []  # past the original resolution deadline: paused, no breach
        w.ok("reply-ticket", ALICE, ["t-1", h("the blue one")])
        t = w.ticket("t-1")
        assert (t.paused_ms, t.resolution_due) == (99 * HOUR, opened + (72 + 99) * HOUR)
        at(w, opened + 171 * HOUR - 1)
        assert sweep(w) == []
        at(w, opened + 171 * HOUR)
        assert breaches(sweep(w))[0][3:] == ["resolution", opened + 171 * HOUR, 300]

    def test_two_waits_add_up(self):
        w = World()
        opened = open_complaint(w)
        for start, end in ((1, 3), (5, 10)):
            at(w, opened + start * HOUR)
            w.ok("wait-ticket", STAFF, ["t-1", h("?")])
            at(w, opened + end * HOUR)
            w.ok("reply-ticket", ALICE, ["t-1", h("!")])
        t = w.ticket("t-1")
        assert (t.paused_ms, t.resolution_due) == (7 * HOUR, opened + 79 * HOUR)

    def test_staff_responding_or_resolving_end_the_wait_with_no_time_credited(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + HOUR)
        w.ok("wait-ticket", STAFF, ["t-1", h("?")])
        at(w, opened + 3 * HOUR)
        events = w.ok("respond-ticket", STAFF, ["t-1", h("never mind, found it")])
        t = w.ticket("t-1")
        assert (t.state, t.paused_at, t.paused_ms, t.resolution_due) == ("in_progress", 0, 0, opened + 72 * HOUR)
        assert [e[0] for e in events] == ["ticket_responded"]  # no clock change to announce
        assert due.get_due(w.state, due.QUEUE_SLA, 2**64 - 1, 10) == [(opened + 72 * HOUR,
                                                                       sla_subject(RESOLUTION, "t-1"))]
        w.ok("wait-ticket", STAFF, ["t-1", h("?")])
        at(w, opened + 70 * HOUR)
        w.ok("resolve-ticket", STAFF, ["t-1", h("done")])  # resolving while waiting, before the deadline: in time
        at(w, opened + 300 * HOUR)
        assert sweep(w) == [] and w.ticket("t-1").breached == 0

    def test_staff_who_resolve_a_waiting_ticket_after_its_deadline_see_the_resolution_breach(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + HOUR)
        w.ok("wait-ticket", STAFF, ["t-1", h("which parcel?")])
        at(w, opened + 100 * HOUR)
        w.ok("resolve-ticket", STAFF, ["t-1", h("done")])
        assert breaches(sweep(w)) == [["sla_breached", "t-1", ALICE.public_key, "resolution", opened + 72 * HOUR,
                                       300]]

    def test_staff_who_wait_and_answer_themselves_again_and_again_cannot_hold_the_clock(self):
        w = World()
        opened = open_complaint(w)
        found: list[list] = []
        for hour in range(1, 81, 2):  # every 2 hours: a real question, then their own answer an hour later
            at(w, opened + hour * HOUR)
            found += breaches(sweep(w))
            w.ok("wait-ticket", STAFF, ["t-1", h(f"question {hour}")])
            at(w, opened + (hour + 1) * HOUR)
            found += breaches(sweep(w))
            w.ok("respond-ticket", STAFF, ["t-1", h(f"answer {hour}")])
            assert w.ticket("t-1").resolution_due == opened + 72 * HOUR  # never moved
        at(w, opened + 81 * HOUR)
        found += breaches(sweep(w))
        assert found == [["sla_breached", "t-1", ALICE.public_key, "resolution", opened + 72 * HOUR, 300]]
        assert (w.ticket("t-1").paused_ms, w.balance(ALICE)) == (0, 300)

    def test_a_customer_reply_credits_the_wait_only_up_to_the_max_wait(self):
        w = World(policy={"sla_max_wait_ms": 10 * HOUR})
        opened = open_complaint(w)
        at(w, opened + HOUR)
        w.ok("wait-ticket", STAFF, ["t-1", h("which parcel?")])
        at(w, opened + 15 * HOUR)  # 14 hours waited
        assert sweep(w) == []
        w.ok("reply-ticket", ALICE, ["t-1", h("the blue one")])
        assert (w.ticket("t-1").paused_ms, w.ticket("t-1").resolution_due) == (10 * HOUR, opened + 82 * HOUR)
        assert due.get_due(w.state, due.QUEUE_SLA, 2**64 - 1, 10) == [(opened + 82 * HOUR,
                                                                       sla_subject(RESOLUTION, "t-1"))]
        at(w, opened + 82 * HOUR)
        assert breaches(sweep(w))[0][3:] == ["resolution", opened + 82 * HOUR, 300]

    def test_a_ticket_left_waiting_breaches_at_its_deadline_plus_the_max_wait(self):
        w = World()  # sla_max_wait_ms defaults to 3 days
        opened = open_complaint(w)
        at(w, opened + HOUR)
        w.ok("wait-ticket", STAFF, ["t-1", h("which parcel?")])
        at(w, opened + (72 + 72) * HOUR - 1)
        assert sweep(w) == []
        at(w, opened + (72 + 72) * HOUR)
        assert breaches(sweep(w)) == [["sla_breached", "t-1", ALICE.public_key, "resolution", opened + 72 * HOUR,
                                       300]]
        at(w, opened + 1_000 * HOUR)
        w.ok("reply-ticket", ALICE, ["t-1", h("sorry, on holiday")])
        assert sweep(w) == [] and w.ticket("t-1").breached == RESOLUTION  # once only

    def test_a_max_wait_raised_during_a_wait_moves_its_bound_later(self):
        w = World(policy={"sla_max_wait_ms": 10 * HOUR})
        opened = open_complaint(w)
        at(w, opened + HOUR)
        w.ok("wait-ticket", STAFF, ["t-1", h("which parcel?")])
        w.state.set_state(policy_key("sla_max_wait_ms"), codec.encode(20 * HOUR))  # (as governance would)
        at(w, opened + 82 * HOUR)
        assert sweep(w) == []  # the old bound: not late under the policy in force
        at(w, opened + 92 * HOUR)
        assert breaches(sweep(w))[0][3:] == ["resolution", opened + 72 * HOUR, 300]

    def test_staff_who_pause_after_a_missed_deadline_do_not_stop_its_breach(self):
        # (the sweep lags here, as when a block has more due entries than its bound: carried over)
        w = World(policy={"sla_first_response_ms_complaint_p2": 0})
        opened = open_complaint(w)
        at(w, opened + 73 * HOUR)
        w.ok("wait-ticket", STAFF, ["t-1", h("?")])
        w.ok("reply-ticket", ALICE, ["t-1", h("!")])
        assert w.ticket("t-1").resolution_due == opened + 72 * HOUR  # a missed deadline never moves
        assert breaches(sweep(w))[0][3:] == ["resolution", opened + 72 * HOUR, 300]

    def test_staff_who_answer_late_before_the_sweep_ran_still_see_the_breach(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + 9 * HOUR)
        w.ok("respond-ticket", STAFF, ["t-1", h("late")])
        assert breaches(sweep(w)) == [["sla_breached", "t-1", ALICE.public_key, "first_response",
                                       opened + 8 * HOUR, 100]]


class TestReopen:
    def test_reopening_restarts_the_resolution_clock_from_the_reopen_time(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + 5 * HOUR)
        w.ok("resolve-ticket", STAFF, ["t-1", h("fixed")])
        at(w, opened + 100 * HOUR)
        w.ok("reopen-ticket", ALICE, ["t-1", h("still broken")])
        assert w.ticket("t-1").resolution_due == opened + 172 * HOUR
        at(w, opened + 172 * HOUR)
        assert breaches(sweep(w))[0][3:] == ["resolution", opened + 172 * HOUR, 300]

    def test_customer_who_reopens_again_and_again_is_compensated_for_the_resolution_only_once(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + HOUR)
        w.ok("respond-ticket", STAFF, ["t-1", h("on it")])
        paid = 0
        for round_ in range(3):
            at(w, w.now + 80 * HOUR)
            paid += sum(e[5] for e in breaches(sweep(w)))
            w.ok("resolve-ticket", STAFF, ["t-1", h(f"fix {round_}")])
            w.tick()
            w.ok("reopen-ticket", ALICE, ["t-1", h("again")])
        at(w, w.now + 1_000 * HOUR)
        paid += sum(e[5] for e in breaches(sweep(w)))
        assert (paid, w.balance(ALICE), w.ticket("t-1").breached) == (300, 300, RESOLUTION)

    def test_a_late_resolution_reopened_before_the_sweep_still_breaches_once_at_its_deadline(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + 80 * HOUR)
        w.ok("resolve-ticket", STAFF, ["t-1", h("late fix")])
        w.ok("reopen-ticket", ALICE, ["t-1", h("no")])
        assert w.ticket("t-1").resolution_due == opened + 72 * HOUR
        assert [e[3:] for e in breaches(sweep(w))] == [["first_response", opened + 8 * HOUR, 100],
                                                       ["resolution", opened + 72 * HOUR, 300]]


class TestStaleEntries:
    def test_an_entry_whose_deadline_moved_does_nothing(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + 9 * HOUR)
        old = sla_subject(FIRST_RESPONSE, "t-1")
        # a deadline moved later (as a resume does) leaves the old entry stale
        t = w.ticket("t-1")
        set_ticket(w.state, "t-1", replace(t, first_response_due=opened + 10 * HOUR))
        assert process_sla_due(w.ctx(), opened + 8 * HOUR, old) == []
        assert w.ticket("t-1").breached == 0

    @pytest.mark.parametrize("subject", [b"\x01", b"\x09t-1", b"\x01\xff\xfe", b"\x01nope"])
    def test_an_unknown_subject_or_ticket_does_nothing(self, subject):
        w = World()
        open_complaint(w)
        at(w, w.now + 1_000 * HOUR)
        assert process_sla_due(w.ctx(), 5, subject) == []

    def test_a_closed_ticket_resolved_in_time_never_breaches(self):
        w = World()
        opened = open_complaint(w)
        w.ok("resolve-ticket", STAFF, ["t-1", h("fixed")])
        w.ok("close-ticket", ALICE, ["t-1"])
        due.schedule(w.state, due.QUEUE_SLA, opened + 72 * HOUR, sla_subject(RESOLUTION, "t-1"))  # left behind
        at(w, opened + 72 * HOUR)
        assert sweep(w) == []

    def test_the_breach_event_names_the_customer_so_it_is_in_their_history(self):
        w = World()
        opened = open_complaint(w)
        at(w, opened + 8 * HOUR)
        event = decode_event(sweep(w)[-1])
        assert event.mentions(ALICE.public_key) and not event.mentions(STAFF.public_key)
