"""``repay-debt``: the account in debt burns its own coins for it; every refusal by reason."""

from __future__ import annotations

import pytest

from ledger import limits, lots
from ledger.debt import get_debt, process_incur
from ledger.errors import InvalidTransaction
from ledger.process import compute_payload
from ledger.state import get_counter, get_supply
from tests.ledger.flows_world import ALICE, BOB, STAFF, World


def owing(debt: int = 500, coins: int = 300) -> World:
    w = World()
    process_incur(w.ctx(), ALICE.public_key, debt, "refund:o-1")
    lots.credit(w.ctx(), ALICE.public_key, coins, "refund")  # coins that do not repay by themselves
    return w


def test_repaying_burns_the_coins_and_lowers_the_debt_then_spending_works_again():
    w = owing(500, 600)
    supply = get_supply(w.state)
    events = w.ok("repay-debt", ALICE, [500])
    assert events[-2:] == (["spent", ALICE.public_key, 500, "debt"],
                           ["debt_repaid", ALICE.public_key, 500, "repay-debt", 0])
    assert (w.balance(ALICE), get_debt(w.state, ALICE.public_key), get_supply(w.state)) == (100, 0, supply - 500)
    assert get_counter(w.state, "burned") == 500
    w.ok("transfer", ALICE, [BOB.public_key, 100, bytes(32)])


def test_a_partial_repayment_leaves_the_rest_owed():
    w = owing(500, 300)
    w.ok("repay-debt", ALICE, [300])
    assert (w.balance(ALICE), get_debt(w.state, ALICE.public_key)) == (0, 200)


def test_an_account_without_debt_is_no_debt():
    w = World()
    w.fund(ALICE, 100)
    assert w.refused("repay-debt", ALICE, [10]) == "no_debt"


def test_more_than_the_debt_is_repay_exceeds_debt():
    assert owing(500, 600).refused("repay-debt", ALICE, [501]) == "repay_exceeds_debt"


def test_more_than_the_balance_is_insufficient_balance():
    assert owing(500, 300).refused("repay-debt", ALICE, [301]) == "insufficient_balance"


@pytest.mark.parametrize("amount", [0, -1])
def test_a_non_positive_amount_is_invalid_amount(amount):
    assert owing().refused("repay-debt", ALICE, [amount]) == "invalid_amount"


def test_a_frozen_account_repays_nothing():
    w = owing()
    limits.set_freeze(w.state, ALICE.public_key, limits.Freeze("aml", STAFF.public_key, 1))
    assert w.refused("repay-debt", ALICE, [100]) == "account_frozen"


@pytest.mark.parametrize("payload", [[], ["5"], [5, 6]])
def test_a_malformed_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("repay-debt", payload)
    assert exc.value.code == "bad_payload"
