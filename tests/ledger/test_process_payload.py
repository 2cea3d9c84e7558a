"""The one payload parser: every kind's shape check is derived from its payload dataclass's field types."""

from __future__ import annotations

from dataclasses import fields

import pytest

from ledger.errors import InvalidTransaction
from ledger.process import KINDS, compute_payload
from ledger.process.payload import MAX_AMOUNT, MAX_PAYLOAD_STR, SCALARS

A = b"\xaa" * 32


def refused(kind: str, payload) -> str:
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload(kind, payload)
    assert exc.value.code == "bad_payload"
    return str(exc.value)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_declares_a_typed_payload_whose_fields_all_have_a_check(kind):
    spec = KINDS[kind]
    assert spec.payload is not None and spec.help and spec.senders
    assert [f.name for f in spec.fields] == [f.name for f in fields(spec.payload)]
    assert all(f.type in SCALARS and f.help for f in spec.fields)


def test_a_wrong_arity_names_the_kind_and_the_wire_signature_in_field_order():
    assert "transfer payload has 2 fields; expected 3: [to: bin32, amount: int, memo_hash: bin32]" in \
        refused("transfer", [A, 5])
    assert "open-ticket payload has str fields; expected 5: [ticket_id: str, category: str, priority: int, " \
           "order_id: str, content_hash: bin32]" in refused("open-ticket", "t-1")


@pytest.mark.parametrize("kind, payload, needle", [
    ("mint", [A[:31], 5], "mint.to is 31 bytes; expected a 32-byte account id"),
    ("mint", [A, "5"], "mint.amount is str; expected an int"),
    ("mint", [A, True], "mint.amount is bool; expected an int"),
    ("register-customer", [A, 1, b"x"], "register-customer.commitment is 1 bytes; expected 32 bytes"),
    ("respond-ticket", ["t-1", 7], "respond-ticket.content_hash is int; expected a 32-byte hash"),
    ("propose-set-policy", ["p", "x", 1.5], "propose-set-policy.value is float; expected an int or str"),
    ("close-ticket", [b"t-1"], "close-ticket.ticket_id is bytes; expected a str"),
])
def test_a_wrong_field_names_the_field_what_was_seen_and_what_was_expected(kind, payload, needle):
    assert needle in refused(kind, payload)


@pytest.mark.parametrize("kind, payload", [
    ("mint", [A, MAX_AMOUNT + 1]), ("transfer", [A, 2**63, ""]), ("pay-order", ["o-1", -MAX_AMOUNT - 1]),
    ("create-order", ["o-1", A, 10**16, "EUR", A]), ("compensate", ["t-1", 2**64 - 1]),
])
def test_an_amount_above_the_hard_ceiling_never_reaches_the_step(kind, payload):
    assert f"expected an int of at most {MAX_AMOUNT} in size" in refused(kind, payload)


def test_amounts_up_to_the_ceiling_and_negative_ones_reach_the_step_whose_rules_judge_them():
    assert compute_payload("mint", [A, MAX_AMOUNT]).amount == MAX_AMOUNT
    assert compute_payload("transfer", [A, -5, A]).amount == -5  # refused by rule: invalid_amount


def test_a_string_longer_than_the_hard_bound_is_bad_payload():
    assert f"a str of at most {MAX_PAYLOAD_STR}" in refused("close-ticket", ["m" * (MAX_PAYLOAD_STR + 1)])
