"""The report index over a real store: coin flows, tickets, ratings per branch and period, incremental catch-up,
in-memory results; and the order/ticket summaries (moved here from the ledger: analytics are off chain)."""

from __future__ import annotations

from ledger.keys import KeyPair
from ledger.tickets import compute_tickets
from node import analytics
from node.analytics import compute_order_report, compute_orders, compute_ticket_report
from tests.ledger.flows_world import ALICE, BOB, STAFF, STAFF2, World
from tests.ledger.flows_world import h as hh
from tests.node.local_chain import MIN, LocalChain, h


def test_report_sums_coin_flows_tickets_times_and_ratings_per_branch(story):
    c, _ = story
    index = analytics.ReportIndex(c.store)
    assert index.catch_up() == c.store.head().height
    north = index.report("north")
    assert north["coins"]["earned"] == 95 and north["coins"]["compensated"] == 200
    assert north["coins"]["redeemed"] == 500 and north["coins"]["rewarded"] == 50
    assert north["orders"] == {"created": 1, "paid": 1, "confirmed": 1, "refunded": 0}
    assert north["tickets"]["by_state"]["resolved"] == 1 and north["tickets"]["by_category"]["complaint"] == 1
    assert north["tickets"]["mean_first_response_ms"] == MIN
    assert north["ratings"]["average"] == 4 and north["ratings"]["count"] == 1
    everyone = index.report()
    assert everyone["coins"]["minted"] == 1000  # the genesis issuer has no branch: counted under ""
    assert index.report("south")["coins"]["earned"] == 0 and index.report("south")["tickets"]["total"] == 0
    assert set(everyone["branches"]) >= {"north", ""}


def test_report_period_filters_by_block_time(story):
    c, s = story
    index = analytics.ReportIndex(c.store)
    index.catch_up()
    later = index.report("north", since=s["opened"] + 1)
    assert later["coins"]["earned"] == 0 and later["coins"]["compensated"] == 200
    assert later["tickets"]["total"] == 0  # opened before the period
    before = index.report("north", until=s["opened"])
    assert before["coins"]["earned"] == 95 and before["coins"]["compensated"] == 0


def test_report_index_is_incremental_and_never_counts_a_block_twice(story):
    c, s = story
    index = analytics.ReportIndex(c.store)
    index.catch_up(max_blocks=3)
    assert index.height == 3
    index.catch_up()
    index.catch_up()
    assert index.report()["coins"]["minted"] == 1000
    c.block(c.tx(c.issuer, "mint", [s["alice"].public_key, 7]))
    index.catch_up()
    assert index.report()["coins"]["minted"] == 1007


def test_expired_coins_count_for_the_customers_branch(tmp_path):
    c = LocalChain(tmp_path / "db")
    clerk, bob = KeyPair.generate(), KeyPair.generate()
    c.block(c.tx(c.admin, "propose-grant-role", ["clerk", clerk.public_key, "staff", "north"]),
            c.tx(c.admin, "propose-set-policy", ["lifetime", "coin_lifetime_ms", 5_000]))
    c.block(c.tx(clerk, "register-customer", [bob.public_key, 0, h("bob")]), c.tx(c.issuer, "mint", [bob.public_key, 40]))
    c.block(c.tx(c.issuer, "mint", [bob.public_key, 1]), after_ms=10_000)  # touching bob sweeps the dead lot
    index = analytics.ReportIndex(c.store)
    index.catch_up()
    assert index.report("north")["coins"]["expired"] == 40
    c.store.close()


def test_report_index_uses_in_memory_results_and_counts_the_same_as_from_the_store(tmp_path):
    c = LocalChain(tmp_path / "db")
    customer = c.admin.public_key  # any account: the issuer mints to it
    kept = {}
    for amount in (100, 250):
        height = c.store.head().height + 1
        kept[height] = c.block(c.tx(c.issuer, "mint", [customer, amount]))
    asked = []

    def results_of(height):
        asked.append(height)
        return kept.get(height)

    from_memory = analytics.ReportIndex(c.store, results_of=results_of)
    from_store = analytics.ReportIndex(c.store)
    calls = []
    real_get_results = c.store.get_results
    c.store.get_results = lambda h: calls.append(h) or real_get_results(h)  # type: ignore[method-assign]
    try:
        from_memory.catch_up()
        assert calls == [] and sorted(asked) == sorted(kept)
        from_store.catch_up()
        assert sorted(calls) == sorted(kept)
    finally:
        c.store.get_results = real_get_results  # type: ignore[method-assign]
        c.store.close()
    assert from_memory._counters == from_store._counters and from_memory._counters


class TestOrderReport:
    def test_report_sums_coins_and_fiat_by_status_and_currency(self):
        w = World()
        w.fund(ALICE, 2_000)
        w.confirmed_order("o-1", amount=10_000, coins=2_000)  # earns 80, then refunded
        w.ok("request-refund", ALICE, ["o-1", hh("")])
        w.confirmed_order("o-2", amount=5_000)  # earns 50, rated 5
        w.ok("submit-feedback", ALICE, ["order", "o-2", 5, hh("ok")])
        w.new_order("o-3", customer=BOB)
        items = sorted((k, v) for k, v in w.state.get_changes().items() if v is not None)
        orders = dict(compute_orders(items))
        report = compute_order_report(orders.values())
        assert (report.count, report.by_status) == (3, {"confirmed": 1, "created": 1, "refunded": 1})
        assert (report.coins_redeemed, report.coins_returned) == (0, 2_000)
        assert (report.coins_earned, report.coins_clawed_back) == (130, 80)
        assert (report.fiat_paid, report.fiat_refunded) == ({"EUR": 13_000}, {"EUR": 8_000})
        assert (report.rating_count, report.rating_sum) == (1, 5)
        assert compute_order_report(orders.values(), branch="south").count == 0


class TestTicketReport:
    def state_items(self, w: World):
        return sorted((k, v) for k, v in w.state.get_changes().items() if v is not None)

    def test_report_counts_states_and_categories_and_averages_sla_times_and_ratings(self):
        w = World()
        w.open_ticket("t-1")  # responded after 4 s, resolved after 10 s, rated 4
        w.open_ticket("t-2", category="inquiry", customer=BOB)  # responded after 2 s, left in progress
        w.open_ticket("t-3", category="suggestion")  # untouched
        w.tick(2_000)
        w.ok("respond-ticket", STAFF, ["t-2", hh("a")])
        w.tick(2_000)
        w.ok("respond-ticket", STAFF, ["t-1", hh("a")])
        w.ok("compensate", STAFF, ["t-1", 120])
        w.tick(6_000)
        w.ok("resolve-ticket", STAFF, ["t-1", hh("r")])
        w.ok("submit-feedback", ALICE, ["ticket", "t-1", 4, hh("c")])
        tickets = dict(compute_tickets(self.state_items(w)))
        assert sorted(tickets) == ["t-1", "t-2", "t-3"]
        report = compute_ticket_report(tickets.values())
        assert (report.count, report.by_state) == (3, {"open": 1, "in_progress": 1, "resolved": 1})
        assert report.by_category == {"complaint": 1, "inquiry": 1, "suggestion": 1}
        assert (report.mean_first_response_ms, report.mean_resolution_ms) == (3_000, 10_000)
        assert (report.average_rating, report.compensated) == (4.0, 120)

    def test_report_filters_by_branch_and_period(self):
        w = World()
        w.open_ticket("t-1")
        start = w.tick()
        w.new_order("o-2", staff=STAFF2)  # an order of branch "south"
        w.open_ticket("t-2", order_id="o-2")  # so the ticket on it is in "south" (t-1: the customer's, "north")
        w.ok("respond-ticket", STAFF2, ["t-2", hh("a")])
        tickets = [t for _, t in compute_tickets(self.state_items(w))]
        assert compute_ticket_report(tickets, since_ms=start).count == 1
        assert compute_ticket_report(tickets, until_ms=start).count == 1
        assert compute_ticket_report(tickets, branch="south").count == 1
        empty = compute_ticket_report(tickets, branch="east")
        assert (empty.count, empty.mean_first_response_ms, empty.average_rating) == (0, None, None)


def test_an_sla_breach_counts_for_the_tickets_branch_and_period_with_its_compensation(tmp_path):
    c = LocalChain(tmp_path / "db")
    clerk, alice = KeyPair.generate(), KeyPair.generate()
    c.block(c.tx(c.admin, "propose-grant-role", ["clerk", clerk.public_key, "staff", "north"]),
            c.tx(c.admin, "propose-set-policy", ["sla", "sla_first_response_ms_complaint_p2", 5_000]))
    c.block(c.tx(clerk, "register-customer", [alice.public_key, 0, h("alice")]),
            c.tx(clerk, "create-order", ["O1", alice.public_key, 10_000, "EUR", h("items")]))
    c.block(c.tx(alice, "open-ticket", ["T1", "complaint", 2, "O1", h("late")]))
    breached_at = c.now + 6_000
    results = c.block(after_ms=6_000)  # nobody acts: the block's sweep breaches the first-response target
    assert [e[0] for e in results[0].events] == ["credited", "sla_breached"]
    index = analytics.ReportIndex(c.store)
    index.catch_up()
    north = index.report("north")
    assert north["tickets"]["sla_breaches"] == {"total": 1, "first_response": 1, "resolution": 0, "compensated": 100}
    assert north["coins"]["compensated"] == 100
    assert index.report("")["tickets"]["sla_breaches"]["total"] == 0  # not the sweep's (zero) sender's branch
    assert index.report("north", until=breached_at)["tickets"]["sla_breaches"]["total"] == 0
    assert index.report("north", since=breached_at)["tickets"]["sla_breaches"]["compensated"] == 100
    c.store.close()
