"""`carecoin tx <kind>`: one generated command per kind, options named after payload fields, accepted payloads.

``cli.tx.submit`` and ``cli.tx.store_texts`` are replaced by recorders here (no node needed); real-node runs
are in tests/e2e/test_customer_story.py and tests/cli/test_texts_cli.py.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli import tx as tx_module
from cli.main import main
from ledger.commitments import NO_TEXT, verify_text_commitment
from ledger.keys import KeyPair, save_key
from ledger.process import KINDS, compute_payload

A = "aa" * 32
B = "bb" * 32


@pytest.fixture
def sent(monkeypatch):
    calls = []

    def record(client, kind, payload, key_file, second_key_file, nonce, wait, timeout_s, as_json):
        calls.append((kind, payload, second_key_file, nonce, wait))
        return {}

    monkeypatch.setattr(tx_module, "submit", record)
    return calls


@pytest.fixture
def kept(monkeypatch):
    """The texts the command would store in the vault before submitting, in order."""
    texts = []
    monkeypatch.setattr(tx_module, "store_texts", lambda client, key_file, values, pending, quiet, kind="": texts.extend(pending))
    return texts


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "k.key"
    save_key(path, KeyPair.generate())
    return str(path)


def run(*args: str):
    return CliRunner().invoke(main, ["tx", *args], catch_exceptions=False)


EXAMPLES = {
    "mint": ["--to", A, "--amount", "500"],
    "transfer": ["--to", B, "--amount", "120", "--memo", "thanks"],
    "propose-set-policy": ["--proposal-id", "p1", "--name", "coin_lifetime_ms", "--value", "5000"],
    "propose-grant-role": ["--proposal-id", "p2", "--account", A, "--role", "staff", "--branch", "north"],
    "propose-revoke-role": ["--proposal-id", "p3", "--account", A, "--role", "staff"],
    "propose-add-validator": ["--proposal-id", "p4", "--branch-name", "east", "--node-public-key", B,
                              "--peer-address", "ws://127.0.0.1:1/v1/peer"],
    "propose-remove-validator": ["--proposal-id", "p5", "--node-public-key", B],
    "propose-training-course": ["--proposal-id", "p6", "--course-id", "c1", "--reward", "100"],
    "propose-governance-quorum": ["--proposal-id", "p7", "--quorum", "3"],
    "approve-proposal": ["--proposal-id", "p1"],
    "register-customer": ["--customer", A, "--kyc-level", "1", "--commitment", B],
    "set-second-factor": ["--second-public-key", B],
    "erase-customer-data": ["--customer", A],
    "freeze-account": ["--account", A, "--reason-code", "fraud_check"],
    "unfreeze-account": ["--account", A, "--reason-code", "cleared"],
    "buy-privilege": ["--privilege", "vip"],
    "issue-coupon": ["--coupon-id", "C1", "--campaign", "spring", "--value", "500", "--currency", "EUR",
                     "--expires-at-ms", "99"],
    "propose-campaign": ["--proposal-id", "p8", "--campaign-id", "welcome", "--trigger", "first_order", "--effect",
                         "bonus", "--amount", "500", "--budget", "50000"],
    "propose-end-campaign": ["--proposal-id", "p9", "--campaign-id", "welcome"],
    "redeem-coupon": ["--coupon-id", "C1", "--order-id", "O1"],
    "create-order": ["--order-id", "O1", "--customer", A, "--fiat-amount", "10000", "--items", "2 mugs"],
    "pay-order": ["--order-id", "O1", "--coins", "300"],
    "confirm-order": ["--order-id", "O1"],
    "request-refund": ["--order-id", "O1", "--reason", "broken"],
    "open-ticket": ["--ticket-id", "T1", "--category", "complaint", "--priority", "2", "--order-id", "O1",
                    "--content", "parcel arrived damaged"],
    "assign-ticket": ["--ticket-id", "T1", "--staff", A],
    "respond-ticket": ["--ticket-id", "T1", "--content", "we are sorry"],
    "wait-ticket": ["--ticket-id", "T1", "--content", "which parcel is it?"],
    "reply-ticket": ["--ticket-id", "T1", "--content", "the blue one"],
    "resolve-ticket": ["--ticket-id", "T1", "--resolution", "replaced"],
    "reopen-ticket": ["--ticket-id", "T1", "--reason", "still broken"],
    "close-ticket": ["--ticket-id", "T1"],
    "compensate": ["--ticket-id", "T1", "--amount", "200"],
    "submit-feedback": ["--target-kind", "ticket", "--target-id", "T1", "--rating", "5", "--comment", "great"],
    "record-training": ["--staff", A, "--course-id", "deescalation-101"],
    "set-fx-rate": ["--currency", "USD", "--rate", "920000"],
    "repay-debt": ["--amount", "250"],
}


def test_every_ledger_kind_has_a_tx_command():
    commands = set(main.commands["tx"].commands)
    assert set(KINDS) <= commands, sorted(set(KINDS) - commands)
    assert set(EXAMPLES) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_generated_command_has_one_option_per_payload_field_and_the_kinds_help(kind):
    command = main.commands["tx"].commands[kind]
    common = {"key_file", "second_key_file", "nonce", "wait", "timeout_s", "node_url", "ca_file", "as_json", "utc"}
    params = {p.name: p for p in command.params if p.name not in common}
    expected = set()
    for field in KINDS[kind].fields:
        expected.add(field.name)
        if field.scalar.cli == "hash":  # the text the hash is made of, or the hash itself
            expected.add(field.name.removesuffix("_hash"))
        assert field.option in params[field.name].opts
    assert set(params) == expected
    assert KINDS[kind].help in command.help
    assert "Example:" in command.help and f"carecoin tx {kind} --key" in command.help


def test_mint_and_transfer_keep_their_options_and_positive_amounts(sent, kept, key_file):
    run("transfer", "--key", key_file, *EXAMPLES["transfer"])
    run("mint", "--key", key_file, *EXAMPLES["mint"])
    run("transfer", "--key", key_file, "--to", B, "--amount", "7")
    memo, = kept
    assert (memo.kind, memo.text) == ("memo", "thanks")
    assert [s[1] for s in sent] == [[bytes.fromhex(B), 120, memo.commitment], [bytes.fromhex(A), 500],
                                    [bytes.fromhex(B), 7, NO_TEXT]]
    result = CliRunner().invoke(main, ["tx", "mint", "--key", key_file, "--to", A, "--amount", "0"])
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output and len(sent) == 3


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_each_command_builds_a_payload_the_ledger_accepts(sent, kept, key_file, kind):
    result = run(kind, "--key", key_file, *EXAMPLES[kind])
    assert result.exit_code == 0, result.output
    (sent_kind, payload, *_), = sent
    assert sent_kind == kind
    compute_payload(kind, payload)  # raises InvalidTransaction on a wrong shape


def test_open_ticket_puts_a_salted_commitment_on_chain_and_keeps_the_text_for_the_vault(sent, kept, key_file):
    run("open-ticket", "--key", key_file, *EXAMPLES["open-ticket"])
    run("open-ticket", "--key", key_file, *EXAMPLES["open-ticket"])
    first, second = kept
    assert sent[0][1][:4] == ["T1", "complaint", 2, "O1"] and sent[0][1][4] == first.commitment
    assert (first.kind, first.field, first.text) == ("ticket_message", "content_hash", "parcel arrived damaged")
    assert verify_text_commitment(first.commitment, first.salt, "parcel arrived damaged")
    assert b"parcel" not in b"".join(x for x in sent[0][1] if isinstance(x, bytes))
    # a fresh salt each time: the same words never give the same commitment (no dictionary attack)
    assert first.salt != second.salt and first.commitment != second.commitment


def test_a_hash_field_takes_hex_instead_of_text_and_keeps_nothing(sent, kept, key_file):
    run("respond-ticket", "--key", key_file, "--ticket-id", "T1", "--content-hash", B)
    assert sent[0][1] == ["T1", bytes.fromhex(B)] and kept == []


def test_each_text_option_is_labelled_with_its_kind(sent, kept, key_file):
    for kind in ("respond-ticket", "resolve-ticket", "submit-feedback", "create-order"):
        run(kind, "--key", key_file, *EXAMPLES[kind])
    assert [t.kind for t in kept] == ["ticket_response", "resolution", "feedback_comment", "order_items"]


def test_optional_fields_take_their_defaults_and_a_missing_text_is_no_text(sent, kept, key_file):
    run("open-ticket", "--key", key_file, "--ticket-id", "T2", "--category", "inquiry", "--content", "hours?")
    assert sent[0][1][2:4] == [2, ""]
    run("submit-feedback", "--key", key_file, "--target-kind", "order", "--target-id", "O1", "--rating", "4")
    assert sent[1][1][3] == NO_TEXT and [t.text for t in kept] == ["hours?"]


def test_set_policy_value_is_an_int_for_int_parameters_and_text_otherwise(sent, key_file):
    run("propose-set-policy", "--key", key_file, "--proposal-id", "a", "--name", "refund_window_ms", "--value", "60000")
    run("propose-set-policy", "--key", key_file, "--proposal-id", "b", "--name", "no_such_param", "--value", "x")
    assert sent[0][1] == ["a", "refund_window_ms", 60000] and sent[1][1] == ["b", "no_such_param", "x"]


def test_nonce_wait_and_second_key_are_passed_through(sent, key_file):
    run("pay-order", "--key", key_file, "--second-key", key_file, "--nonce", "7", "--wait",
        "--order-id", "O1", "--coins", "5")
    assert sent[0][2:] == (key_file, 7, True)


@pytest.mark.parametrize("args, code, needle", [
    (["open-ticket", "--ticket-id", "T1", "--category", "complaint"], 2, "missing --content"),
    (["respond-ticket", "--ticket-id", "T1", "--content", "x", "--content-hash", B], 2, "not both"),
    (["propose-grant-role", "--proposal-id", "p", "--account", "abcd", "--role", "staff", "--branch", "n"], 2,
     "account is 2 bytes; expected 32"),
    (["propose-set-policy", "--proposal-id", "p", "--name", "refund_window_ms", "--value", "soon"], 2,
     "takes an integer"),
    (["compensate", "--ticket-id", "T1"], 2, "Missing option '--amount'"),
    (["pay-order", "--order-id", "O1", "--coins", "many"], 2, "not a valid integer"),
])
def test_bad_options_are_refused_before_signing(sent, key_file, args, code, needle):
    result = CliRunner().invoke(main, ["tx", args[0], "--key", key_file, *args[1:]])
    assert result.exit_code == code, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert sent == []


def test_a_text_too_long_for_the_vault_is_refused_before_anything_is_stored_or_signed(sent, kept, key_file):
    result = CliRunner().invoke(main, ["tx", "respond-ticket", "--key", key_file, "--ticket-id", "T1",
                                       "--content", "x" * 4097])
    assert result.exit_code == 2 and "4097 utf-8 bytes; expected at most 4096" in result.output
    assert sent == [] and kept == []
