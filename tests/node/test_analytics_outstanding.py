"""The report in the base currency: coins outstanding (the company's liability) and their value, the debt
customers owe, and fiat per currency and converted at each order's own FX rate — from committed blocks."""

from __future__ import annotations

import pytest

from ledger.keys import KeyPair
from node import analytics
from tests.node.local_chain import LocalChain, h

USD_RATE = 920_000  # $1 = €0.92


def play_refunded_usd_order(c: LocalChain) -> None:
    """North sells Alice a $100.00 order and a €50.00 one; she earns on the first, gives her coins away, and
    the refund leaves her in debt; a later mint repays part of it. Coins are worth 2 cents each."""
    clerk, treasurer, alice, bob = (KeyPair.generate() for _ in range(4))
    c.block(c.tx(c.admin, "propose-grant-role", ["clerk", clerk.public_key, "staff", "north"]),
            c.tx(c.admin, "propose-grant-role", ["treasurer", treasurer.public_key, "treasury", ""]),
            c.tx(c.admin, "propose-set-policy", ["usd", "currencies", "EUR,USD"]),
            c.tx(c.admin, "propose-set-policy", ["value", "coin_value_minor", 2]))
    c.block(c.tx(clerk, "register-customer", [alice.public_key, 1, h("alice")]),
            c.tx(c.issuer, "mint", [alice.public_key, 1000]),
            c.tx(treasurer, "set-fx-rate", ["USD", USD_RATE]))
    c.block(c.tx(clerk, "create-order", ["O1", alice.public_key, 10_000, "USD", h("teapot")]),
            c.tx(clerk, "create-order", ["O2", alice.public_key, 5_000, "EUR", h("mugs")]))
    c.block(c.tx(alice, "pay-order", ["O1", 0]), c.tx(alice, "pay-order", ["O2", 0]))
    results = c.block(c.tx(clerk, "confirm-order", ["O1"]))  # earns 9,200 cents x 1% = 92 coins
    assert [r.status for r in results] == [0]
    c.block(c.tx(alice, "transfer", [bob.public_key, 1_090, h("")]))  # keeps 2 of her 1,092 coins
    refund = c.block(c.tx(alice, "request-refund", ["O1", h("broken")]))  # claws back 2: a debt of 90
    assert refund[0].status == 0 and ["debt_incurred", alice.public_key, 90, "refund:O1", 90] in [
        list(e) for e in refund[0].events]
    c.block(c.tx(c.issuer, "mint", [alice.public_key, 30]))  # repays 30 of the debt, mints nothing


@pytest.fixture
def refunded_usd_order(tmp_path):
    c = LocalChain(tmp_path / "db")
    play_refunded_usd_order(c)
    yield c
    c.store.close()


def test_report_shows_coins_outstanding_and_their_value_in_the_base_currency(refunded_usd_order):
    c = refunded_usd_order
    index = analytics.ReportIndex(c.store)
    index.catch_up()
    # 1,000 minted + 92 earned - 2 clawed back; the 30 minted in debt went to the debt, not into existence
    assert index.report()["outstanding"] == {
        "height": c.store.head().height, "coins": 1_090, "debt": 60, "base_currency": "EUR",
        "coin_value_minor": 2, "value_minor": 2_180, "debt_value_minor": 120}


def test_outstanding_is_company_wide_and_moves_with_the_next_committed_block(refunded_usd_order):
    c = refunded_usd_order
    index = analytics.ReportIndex(c.store)
    index.catch_up()
    assert index.report("south")["outstanding"] == index.report("north")["outstanding"] == index.report()["outstanding"]
    before = index.report(until=1)["outstanding"]  # a point in time: the period filters flows, not this
    c.block(c.tx(c.issuer, "mint", [c.admin.public_key, 500]))
    index.catch_up()
    after = index.report()["outstanding"]
    assert (after["coins"], after["value_minor"], after["height"]) == (1_590, 3_180, before["height"] + 1)


def test_report_counts_debt_incurred_and_repaid_per_period(refunded_usd_order):
    c = refunded_usd_order
    index = analytics.ReportIndex(c.store)
    index.catch_up()
    north = index.report("north")["coins"]
    assert (north["debt_incurred"], north["debt_repaid"]) == (90, 30)  # the order's branch; Alice's branch
    assert index.report("")["coins"]["debt_repaid"] == 0  # not the issuer's (branchless) mint


def test_report_converts_fiat_to_the_base_currency_at_each_orders_rate_and_keeps_each_currency(refunded_usd_order):
    c = refunded_usd_order
    index = analytics.ReportIndex(c.store)
    index.catch_up()
    fiat = index.report("north")["fiat"]
    assert fiat["base_currency"] == "EUR"
    assert fiat["ordered"] == {"base_minor": 9_200 + 5_000, "by_currency": {"EUR": 5_000, "USD": 10_000}}
    assert fiat["paid"] == {"base_minor": 9_200 + 5_000, "by_currency": {"EUR": 5_000, "USD": 10_000}}
    assert fiat["confirmed"] == {"base_minor": 9_200, "by_currency": {"USD": 10_000}}
    assert fiat["refunded"] == {"base_minor": 9_200, "by_currency": {"USD": 10_000}}
    assert index.report("south")["fiat"]["paid"] == {"base_minor": 0, "by_currency": {}}


def test_order_summary_converts_paid_and_refunded_fiat_to_the_base_currency(refunded_usd_order):
    orders = dict(analytics.compute_orders(refunded_usd_order.store.iter_state(b"o")))
    report = analytics.compute_order_report(orders.values())
    assert (report.fiat_paid, report.fiat_refunded) == ({"EUR": 5_000, "USD": 10_000}, {"USD": 10_000})
    assert (report.fiat_paid_base, report.fiat_refunded_base) == (14_200, 9_200)


def test_a_campaign_bonus_counts_for_the_orders_branch_and_is_outstanding(tmp_path):
    c = LocalChain(tmp_path / "db")
    clerk, alice = KeyPair.generate(), KeyPair.generate()
    c.block(c.tx(c.admin, "propose-grant-role", ["clerk", clerk.public_key, "staff", "north"]),
            c.tx(c.admin, "propose-campaign", ["spring", "spring-bonus", "order_confirmed", "bonus", 250, 10_000, 1,
                                               "", "", 0, "", 0, 0, "", 0]))
    c.block(c.tx(clerk, "register-customer", [alice.public_key, 1, h("alice")]),
            c.tx(clerk, "create-order", ["O1", alice.public_key, 10_000, "EUR", h("teapot")]))
    c.block(c.tx(alice, "pay-order", ["O1", 0]))
    confirmed = c.block(c.tx(clerk, "confirm-order", ["O1"]))  # 100 coins earned + the 250 bonus
    assert ["campaign_applied", "spring-bonus", alice.public_key, "bonus", 250, "O1"] in map(list, confirmed[0].events)
    index = analytics.ReportIndex(c.store)
    index.catch_up()
    north = index.report("north")
    assert (north["coins"]["earned"], north["coins"]["campaign"]) == (100, 250)
    assert north["outstanding"]["coins"] == 350
    c.store.close()
