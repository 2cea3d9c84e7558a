"""Lists through the CLI on 2 real nodes: a branch's ticket queue for its staff, a customer's own tickets and
orders page by page, refusals for staff of the other branch and another customer, and `history --all`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.keys import KeyPair, save_key
from tests.e2e.conftest import Network


def cli(*args: str, expect: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == expect, (args, result.output)
    return result.output


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    network = Network(tmp_path_factory.mktemp("lists-net"), 2)
    try:
        network.start_all()
        yield network
    finally:
        network.close()


def test_staff_and_customers_list_what_is_theirs_and_nothing_else(net, tmp_path):
    staff = [str(net.dir / name / "keys" / "staff.key") for name in net.names]
    alice, bob = KeyPair.generate(), KeyPair.generate()
    files = {"alice": str(tmp_path / "alice.key"), "bob": str(tmp_path / "bob.key")}
    save_key(files["alice"], alice)
    save_key(files["bob"], bob)
    api = net.apis[0]

    def tx(kind: str, key_file: str, *args: str) -> None:
        doc = json.loads(cli("tx", kind, "--key", key_file, "--node", api, "--wait", "--timeout", "20", "--json",
                             *args))
        assert (doc["status"], doc["outcome"]) == ("committed", "applied"), doc

    tx("register-customer", staff[0], "--customer", alice.hex, "--kyc-level", "1", "--commitment", "ab" * 32)
    tx("register-customer", staff[1], "--customer", bob.hex, "--kyc-level", "1", "--commitment", "ab" * 32)
    for n in (1, 2):
        tx("create-order", staff[0], "--order-id", f"O{n}", "--customer", alice.hex, "--fiat-amount", str(1000 * n),
           "--currency", "EUR", "--items-hash", "cd" * 32)
    for n in (1, 2, 3):
        tx("open-ticket", files["alice"], "--ticket-id", f"T{n}", "--category", "complaint", "--content-hash",
           "ef" * 32)
    tx("respond-ticket", staff[0], "--ticket-id", "T1", "--content-hash", "ab" * 32)
    tx("resolve-ticket", staff[0], "--ticket-id", "T2", "--resolution-hash", "ab" * 32)

    # The branch's queue, for its staff: the tickets still worked on, newest first
    out = cli("ticket", "list", "--branch", net.names[0], "--state", "active", "--node", api, "--key", staff[0])
    assert [line.split()[0] for line in out.splitlines()[1:-1]] == ["T3", "T1"]
    assert out.splitlines()[-1] == "2 tickets: the whole list"
    # ... not for the other branch's staff
    out = cli("ticket", "list", "--branch", net.names[0], "--node", api, "--key", staff[1], expect=3)
    assert "wrong_branch" in out
    # Alice pages through her tickets; her orders in one go
    out = cli("ticket", "list", "--customer", alice.hex, "--limit", "2", "--node", api, "--key", files["alice"])
    assert [line.split()[0] for line in out.splitlines()[1:-1]] == ["T3", "T2"]
    cursor = out.splitlines()[-1].split("--cursor ")[1].split()[0]
    out = cli("ticket", "list", "--customer", alice.hex, "--cursor", cursor, "--node", api, "--key", files["alice"])
    assert [line.split()[0] for line in out.splitlines()[1:-1]] == ["T1"]
    doc = json.loads(cli("order", "list", "--customer", alice.hex, "--all", "--json", "--node", api,
                         "--key", files["alice"]))
    assert [o["order_id"] for o in doc["items"]] == ["O2", "O1"] and doc["next_cursor"] is None
    # Bob may not list Alice's orders
    out = cli("order", "list", "--customer", alice.hex, "--node", api, "--key", files["bob"], expect=3)
    assert "not_entitled" in out
    # Her whole history, to the beginning of the chain
    out = cli("history", alice.hex, "--all", "--node", api, "--key", files["alice"])
    assert out.splitlines()[-1].endswith("the whole history, back to the beginning of the chain")
    assert len([line for line in out.splitlines() if line.startswith("h=")]) >= 6  # her txs and those naming her
