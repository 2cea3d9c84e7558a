"""``ledger.fx``: the accepted currencies from policy, rate records, freshness and the one-floor conversion."""

from __future__ import annotations

import pytest

from ledger import codec
from ledger.errors import SchemaError
from ledger.fx import FX_UNIT, FxRate, compute_base, fx_key, get_currencies, get_fresh_rate, get_rate, set_rate
from ledger.reasons import TxFailure
from tests.ledger.flows_world import STAFF, World


def test_the_base_currency_comes_first_and_the_list_is_trimmed_and_deduplicated():
    assert get_currencies(World().state) == ("EUR",)
    w = World(policy={"base_currency": "CHF", "currencies": " USD, EUR,,USD ,CHF"})
    assert get_currencies(w.state) == ("CHF", "USD", "EUR")


def test_conversion_floors_once_and_the_base_is_worth_itself():
    assert compute_base(10_000, FX_UNIT) == 10_000
    assert compute_base(10_000, 920_000) == 9_200
    assert compute_base(1, 999_999) == 0  # a fraction of a base minor unit is never rounded up
    assert compute_base(3, 333_334) == 1


def test_the_base_currency_needs_no_rate_and_a_rate_is_fresh_up_to_its_maximum_age():
    w = World(policy={"currencies": "USD", "fx_max_age_ms": 1_000})
    assert get_fresh_rate(w.ctx(), "EUR") == FX_UNIT
    set_rate(w.state, "USD", FxRate(920_000, w.now, STAFF.public_key))
    w.tick(1_000)
    assert get_fresh_rate(w.ctx(), "USD") == 920_000
    w.tick(1)
    with pytest.raises(TxFailure) as exc:
        get_fresh_rate(w.ctx(), "USD")
    assert exc.value.reason.name == "fx_rate_stale" and "1001 ms" in exc.value.detail


@pytest.mark.parametrize("stored", [[0, 1, b"k" * 32], [1, 1], "x", [1, 1, "k"]])
def test_a_malformed_rate_record_is_a_schema_error(stored):
    w = World()
    w.state.set_state(fx_key("USD"), codec.encode(stored))
    with pytest.raises(SchemaError):
        get_rate(w.state, "USD")


def test_a_policy_list_stored_as_an_int_is_a_schema_error():
    with pytest.raises(SchemaError):
        get_currencies(World(policy={"currencies": 5}).state)
