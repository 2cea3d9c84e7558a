"""The CLI for people: every help has an example and the exit codes, required options say so, amounts carry
their units and times are ISO-8601 in the operator's zone (or UTC with --utc)."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from cli import render
from cli.main import main
from ledger.keys import KeyPair
from tests.carecoin.conftest import live  # noqa: F401 - the live node fixture

MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def commands(group: click.Group, path: str = "carecoin"):
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, f"{path} {name}")
        else:
            yield f"{path} {name}", command


@pytest.mark.parametrize("path, command", list(commands(main)), ids=lambda v: v if isinstance(v, str) else "")
def test_every_commands_help_shows_an_example(path, command):
    args = path.split()[1:] + ["--help"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0 and "Example:" in out.output and "carecoin " in out.output.split("Example:")[1]
    if not isinstance(command, click.Group):
        assert "Exit codes:" in out.output and "3 node unreachable" in out.output


@pytest.mark.parametrize("args, option", [
    (["tx", "transfer"], "--to"), (["tx", "transfer", "--to", "00" * 32, "--amount", "1"], "--key"),
    (["audit", "list"], "--key"), (["customer", "register"], "--customer"),
    (["receipt", "verify", "r.json"], "--genesis"),
])
def test_a_missing_required_option_is_a_usage_error_and_help_marks_it_required(args, option, monkeypatch):
    monkeypatch.delenv("CARECOIN_KEY", raising=False)
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 2 and f"Missing option '{option}'" in out.output
    command = [a for a in args if a.isalpha() or "-" in a and not a.startswith("-")][:2]
    options = CliRunner().invoke(main, command + ["--help"]).output.split("Options:")[1]
    entry = options[options.index(f"  {option} "):]
    entry = entry[:entry.index("\n  -", 1)]
    assert "[required" in entry, entry


def test_a_text_field_a_kind_needs_says_it_is_required_in_one_of_two_forms():
    out = CliRunner().invoke(main, ["tx", "open-ticket", "--help"]).output
    assert "[required: this or --content-hash]" in " ".join(out.split())


def test_times_are_iso_8601_in_the_operators_zone_or_utc(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    render.use_utc(False)
    assert render.format_time(MS) == "2023-11-14T23:13:20+01:00"
    monkeypatch.setenv("TZ", "America/New_York")
    assert render.format_time(MS) == "2023-11-14T17:13:20-05:00"
    render.use_utc(True)
    try:
        assert render.format_time(MS) == "2023-11-14T22:13:20+00:00"
    finally:
        render.use_utc(False)
    assert render.format_time(0) == "-"  # "not yet"


def test_amounts_carry_their_units():
    assert render.format_value("balance", 250) == "250 coins" and render.format_value("debt", 1) == "1 coin"
    assert render.format_value("fiat_paid", 1250, {"currency": "EUR"}) == "EUR 12.50"
    assert render.format_value("fiat_paid", 1250, {"currency": "JPY"}) == "JPY 1250"
    assert render.format_value("resolution_ms", 7_500_000) == "2 h 5 min"
    assert render.format_value("expiring", [[MS, 30]]).startswith("30 coins on 2023-11-1")
    assert render.format_value("roles", {"a": [1]}) == '{"a": [1]}'  # JSON, never Python dict text


def test_account_show_prints_units_and_iso_times_and_json_stays_raw(live, monkeypatch):  # noqa: F811
    from carecoin import Client
    Client(live.url, key=live.chain.issuer).send("mint", [live.alice.public_key, 250])
    monkeypatch.setenv("TZ", "UTC")
    args = ["account", "show", live.alice.public_key.hex(), "--node", live.url, "--key", live.alice_file]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    assert "balance: 250 coins" in out.output and "{'" not in out.output
    stamp = next(line for line in out.output.splitlines() if "timestamp_ms:" in line).split(": ", 1)[1]
    assert stamp[:2] == "20" and stamp.endswith("+00:00") and "T" in stamp
    doc = json.loads(CliRunner().invoke(main, [*args, "--json", "--utc"]).output)
    assert doc["balance"] == 250 and isinstance(doc["timestamp_ms"], int)


def test_a_refused_transfer_exits_1_and_prints_the_rules_message(live, tmp_path):  # noqa: F811
    from carecoin import Client
    Client(live.url, key=live.chain.issuer).send("mint", [live.alice.public_key, 100])
    out = CliRunner().invoke(main, ["tx", "transfer", "--key", live.alice_file, "--to", live.chain.issuer.public_key.hex(),
                                    "--amount", "250", "--wait", "--node", live.url])
    assert out.exit_code == 1, out.output
    assert "REFUSED" in out.output and "insufficient_balance" in out.output
    assert "spendable balance is 100; transfer needs 250" in out.output or "needs 250" in out.output


def test_an_unreachable_node_exits_3():
    out = CliRunner().invoke(main, ["account", "show", "00" * 32, "--node", "http://127.0.0.1:9"])
    assert out.exit_code == 3 and "cannot reach node at http://127.0.0.1:9" in out.output
