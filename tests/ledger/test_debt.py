"""``ledger.debt`` and its place in ``ledger.lots``: credits repay a debt first without minting it, an account
in debt spends and sends nothing, refund returns and transfers never repay, and the supply stays exact."""

from __future__ import annotations

import pytest

from ledger import codec, lots
from ledger.debt import debt_key, get_debt, process_incur, set_debt
from ledger.customers import get_earned
from ledger.errors import SchemaError
from ledger.reasons import TxFailure
from ledger.state import get_balance, get_counter, get_supply
from tests.ledger.flows_world import ALICE, BOB, World


def in_debt(amount: int = 500) -> World:
    w = World()
    process_incur(w.ctx(), ALICE.public_key, amount, "refund:o-1")
    return w


def supply_is_exact(w: World) -> bool:
    minted, burned, expired = (get_counter(w.state, n) for n in ("minted", "burned", "expired"))
    return get_supply(w.state) == minted - burned - expired


def test_a_debt_of_zero_is_never_stored_and_incurring_adds_up():
    w = World()
    assert get_debt(w.state, ALICE.public_key) == 0 and process_incur(w.ctx(), ALICE.public_key, 0, "x") == []
    process_incur(w.ctx(), ALICE.public_key, 300, "refund:a")
    events = process_incur(w.ctx(), ALICE.public_key, 200, "refund:b")
    assert [e.to_wire() for e in events] == [["debt_incurred", ALICE.public_key, 200, "refund:b", 500]]
    assert get_debt(w.state, ALICE.public_key) == 500 and get_counter(w.state, "debt_incurred") == 500
    set_debt(w.state, ALICE.public_key, 0)
    assert w.state.get_state(debt_key(ALICE.public_key)) is None


@pytest.mark.parametrize("source", ["earn", "reward", "compensation", "mint"])
def test_a_credit_repays_the_debt_first_and_mints_only_the_rest(source):
    w = in_debt(500)
    events = lots.credit(w.ctx(), ALICE.public_key, 800, source)
    assert [e.to_wire()[:4] for e in events] == [["debt_repaid", ALICE.public_key, 500, source],
                                                 ["credited", ALICE.public_key, 300, source]]
    assert (get_debt(w.state, ALICE.public_key), get_balance(w.state, ALICE.public_key)) == (0, 300)
    assert (get_supply(w.state), get_counter(w.state, "minted"), get_counter(w.state, "debt_repaid")) == (300, 300, 500)
    assert supply_is_exact(w)


def test_a_credit_smaller_than_the_debt_mints_nothing_but_still_counts_as_earned():
    w = in_debt(500)
    events = lots.credit(w.ctx(), ALICE.public_key, 200, "earn")
    assert [e.to_wire() for e in events] == [["debt_repaid", ALICE.public_key, 200, "earn", 300]]
    assert (get_debt(w.state, ALICE.public_key), get_supply(w.state), get_earned(w.state, ALICE.public_key)) == (
        300, 0, 200)


@pytest.mark.parametrize("source", ["refund", "transfer"])
def test_refund_returns_and_transfers_never_repay_a_debt(source):
    w = in_debt(500)
    lots.credit(w.ctx(), ALICE.public_key, 100, source)
    assert (get_debt(w.state, ALICE.public_key), get_balance(w.state, ALICE.public_key)) == (500, 100)


def test_an_account_in_debt_cannot_spend_or_send_but_may_burn_for_the_debt():
    w = in_debt(500)
    lots.credit(w.ctx(), ALICE.public_key, 100, "refund")
    for attempt in (lambda: lots.spend(w.ctx(), ALICE.public_key, 10, "privilege:vip"),
                    lambda: lots.process_move(w.ctx(), ALICE.public_key, BOB.public_key, 10)):
        with pytest.raises(TxFailure) as exc:
            attempt()
        assert exc.value.reason.name == "in_debt" and "owes 500 coins" in exc.value.detail
    lots.spend(w.ctx(), ALICE.public_key, 100, "debt", repaying_debt=True)
    assert get_balance(w.state, ALICE.public_key) == 0 and supply_is_exact(w)


def test_take_returns_the_lots_it_burned_oldest_first():
    w = World()
    lots.credit(w.ctx(), ALICE.public_key, 10, "mint")
    first = w.now + 365 * 86_400_000
    w.tick()
    lots.credit(w.ctx(), ALICE.public_key, 20, "mint")
    taken, _ = lots.take(w.ctx(), ALICE.public_key, 15, "order:o-1")
    assert taken == [(first, 10), (first + 1_000, 5)]


def test_a_malformed_debt_record_is_a_schema_error():
    w = World()
    w.state.set_state(debt_key(ALICE.public_key), codec.encode(0))
    with pytest.raises(SchemaError):
        get_debt(w.state, ALICE.public_key)
