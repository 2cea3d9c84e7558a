"""Typed events: each kind round-trips through its committed array, readers never crash on unknown arrays."""

from __future__ import annotations

from dataclasses import fields

import pytest

from ledger import codec
from ledger.events import (
    Credited, Event, Feedback, Transferred, UnknownEvent, decode_event, events_mention, get_event_kinds,
)

A, B = b"\xaa" * 32, b"\xbb" * 32


def _sample(cls: type[Event]) -> Event:
    values = {bytes: A, int: 7, str: "x", "bytes": A, "int": 7, "str": "x", "int | str": 7}
    return cls(*(values[f.type] for f in fields(cls)))


@pytest.mark.parametrize("kind", sorted(get_event_kinds()))
def test_every_event_kind_round_trips_through_its_committed_array(kind):
    event = _sample(get_event_kinds()[kind])
    wire = event.to_wire()
    assert wire[0] == kind and len(wire) == 1 + len(fields(event))
    assert decode_event(codec.decode(codec.encode(wire))) == event


def test_to_wire_is_the_array_in_declared_field_order():
    assert Credited(A, 70, "mint", 99).to_wire() == ["credited", A, 70, "mint", 99]
    assert codec.encode(Transferred(A, B, 5).to_wire()) == codec.encode(["transferred", A, B, 5])


@pytest.mark.parametrize("wire", [["minted_on_mars", A, 1], ["credited", A, 70], ["credited", A, 70, "mint", 9, 1],
                                  [], [5, A], "credited", None])
def test_an_unknown_kind_or_arity_decodes_to_the_fallback_instead_of_raising(wire):
    event = decode_event(wire)
    assert type(event) is UnknownEvent


def test_readers_use_names_and_mentions_only_account_fields():
    event = decode_event(["feedback", "ticket", "t-1", A, 5, 50])
    assert isinstance(event, Feedback) and (event.target_id, event.customer, event.rating) == ("t-1", A, 5)
    assert events_mention([["transferred", A, B, 5]], B)
    assert not events_mention([["customer_data_erased", A, B]], B)  # a commitment is not an account
    assert events_mention([["future_kind", B]], B)  # unknown kinds: any 32-byte value may be an account
