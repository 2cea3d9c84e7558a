"""``set-fx-rate``: treasury sets a listed currency's rate, stamped with the block time; every refusal by reason."""

from __future__ import annotations

import pytest

from ledger.errors import InvalidTransaction
from ledger.fx import FxRate, get_rate
from ledger.process import compute_payload
from ledger.state import set_role
from tests.ledger.flows_world import ALICE, STAFF, World
from tests.strategies import key

TREASURY = key(37)


def world(**policy) -> World:
    w = World(policy={"currencies": "EUR,USD,JPY", **policy})
    set_role(w.state, "treasury", TREASURY.public_key, True)
    return w


def test_treasury_sets_a_rate_stamped_with_the_block_time_and_may_replace_it():
    w = world()
    events = w.ok("set-fx-rate", TREASURY, ["USD", 920_000])
    assert events == (["fx_rate_set", "USD", 920_000, TREASURY.public_key],)
    assert get_rate(w.state, "USD") == FxRate(920_000, w.now, TREASURY.public_key)
    w.tick()
    w.ok("set-fx-rate", TREASURY, ["USD", 930_000])
    assert get_rate(w.state, "USD") == FxRate(930_000, w.now, TREASURY.public_key)
    assert get_rate(w.state, "JPY") is None


@pytest.mark.parametrize("sender", [STAFF, ALICE])
def test_anyone_but_treasury_is_unauthorized(sender):
    w = world()
    assert w.refused("set-fx-rate", sender, ["USD", 920_000]) == "unauthorized"
    assert get_rate(w.state, "USD") is None


def test_the_base_currency_has_no_rate():
    assert world().refused("set-fx-rate", TREASURY, ["EUR", 1_000_000]) == "base_currency_rate"


def test_a_currency_off_the_list_is_currency_not_accepted():
    assert world().refused("set-fx-rate", TREASURY, ["GBP", 1_150_000]) == "currency_not_accepted"


@pytest.mark.parametrize("currency", ["usd", "US", "U$D", ""])
def test_a_malformed_currency_is_invalid_currency(currency):
    assert world().refused("set-fx-rate", TREASURY, [currency, 1]) == "invalid_currency"


@pytest.mark.parametrize("rate", [0, -920_000])
def test_a_rate_that_is_not_positive_is_invalid_fx_rate(rate):
    assert world().refused("set-fx-rate", TREASURY, ["USD", rate]) == "invalid_fx_rate"


@pytest.mark.parametrize("payload", [["USD"], ["USD", "1"], [b"USD", 1], ["USD", 1, 2], ["USD", 10**16]])
def test_a_malformed_payload_is_bad_payload(payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload("set-fx-rate", payload)
    assert exc.value.code == "bad_payload"


def test_a_rogue_treasury_cannot_move_a_rate_further_than_the_policy_step():
    w = world(fx_max_step_pct=20)
    w.ok("set-fx-rate", TREASURY, ["JPY", 6_200])
    w.tick()
    assert w.refused("set-fx-rate", TREASURY, ["JPY", 1_000_000_000_000]) == "fx_rate_jump"
    assert w.refused("set-fx-rate", TREASURY, ["JPY", 4_959]) == "fx_rate_jump"
    assert get_rate(w.state, "JPY").rate == 6_200
    w.ok("set-fx-rate", TREASURY, ["JPY", 7_440])  # +20 %: the largest step allowed
    assert get_rate(w.state, "JPY").rate == 7_440
