"""`carecoin ticket list`, `order list` and `history --all` with CliRunner against a live in-process node:
pages, cursors, --all to the end, the last line saying how much was shown, refusals and required options."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.keys import save_key
from node import reads
from tests.ledger.governance_world import STAFF_1, STAFF_2
from tests.node.list_world import ListWorld
from tests.node.live_node import LiveNode
from tests.node.local_chain import LocalChain
from tests.strategies import ALICE, VALIDATORS

A = ALICE.public_key.hex()


@pytest.fixture
def node(tmp_path):
    world = ListWorld(str(tmp_path / "db"))
    world.store.close()
    live = LiveNode(VALIDATORS[0], world.genesis, tmp_path / "db")
    live.keys = {}
    for name, key in (("staff1", STAFF_1), ("staff2", STAFF_2), ("alice", ALICE)):
        live.keys[name] = str(tmp_path / f"{name}.key")
        save_key(live.keys[name], key)
    yield live
    live.close()


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ticket_ids(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines() if line.startswith(("A-T", "B-T"))]


def test_staff_list_their_branchs_active_queue_as_a_table_with_a_closing_count(node):
    out = run("ticket", "list", "--branch", "branch-1", "--state", "active", "--node", node.url,
              "--key", node.keys["staff1"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split()[:3] == ["TICKET", "STATE", "CATEGORY"]
    assert ticket_ids(out.output) == ["A-T5", "A-T4", "A-T2", "A-T1"]
    assert lines[-1] == "4 tickets: the whole list"
    assert "{" not in out.output  # no Python dict text


def test_one_page_names_the_cursor_of_the_next_and_the_cursor_continues_without_repeats(node):
    args = ("ticket", "list", "--customer", A, "--limit", "2", "--node", node.url, "--key", node.keys["alice"])
    out = run(*args)
    assert out.exit_code == 0, out.output
    assert ticket_ids(out.output) == ["A-T5", "A-T4"]
    last = out.output.splitlines()[-1]
    assert last.startswith("2 tickets shown of 5, newest first; next page: --cursor ") and "--all" in last
    cursor = last.split("--cursor ")[1].split()[0]
    out = run(*args, "--cursor", cursor)
    assert ticket_ids(out.output) == ["A-T3", "A-T2"]


def test_all_follows_every_page_to_the_end(node):
    out = run("ticket", "list", "--customer", A, "--limit", "1", "--all", "--node", node.url,
              "--key", node.keys["alice"], "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert [t["ticket_id"] for t in doc["items"]] == ["A-T5", "A-T4", "A-T3", "A-T2", "A-T1"]
    assert doc["next_cursor"] is None and doc["count"] == 5


def test_a_customers_orders_list_with_amounts_in_their_currency_and_coins(node):
    out = run("order", "list", "--customer", A, "--node", node.url, "--key", node.keys["alice"])
    assert out.exit_code == 0, out.output
    rows = [line for line in out.output.splitlines() if line.startswith("A-O")]
    assert [r.split()[0] for r in rows] == ["A-O3", "A-O2", "A-O1"]
    assert "EUR 30.00" in rows[0] and "0 coins" in rows[0]  # 3000 minor units, shown with the currency
    assert out.output.splitlines()[-1] == "3 orders: the whole list"


def test_staff_of_another_branch_are_refused_with_the_reason_and_a_failing_exit(node):
    out = run("ticket", "list", "--branch", "branch-1", "--node", node.url, "--key", node.keys["staff2"])
    assert out.exit_code != 0
    assert "wrong_branch" in out.output and "staff of that branch, auditors and compliance" in out.output


def test_order_list_requires_the_customer_and_ticket_list_refuses_two_scopes(node):
    out = run("order", "list", "--node", node.url)
    assert out.exit_code == 2 and "Missing option '--customer'" in out.output
    out = run("ticket", "list", "--branch", "branch-1", "--customer", A, "--node", node.url)
    assert out.exit_code == 2 and "not both" in out.output


# ---- history --all ----------------------------------------------------------------------------------------

@pytest.fixture
def long_history(tmp_path, monkeypatch):
    c = LocalChain(tmp_path / "db")
    alice = ALICE
    for _ in range(12):
        c.block(*[c.tx(c.issuer, "mint", [alice.public_key, 1]) for _ in range(6)])  # 72 txs touch Alice
    c.store.close()
    monkeypatch.setattr(reads, "HISTORY_BUDGET_S", 0.0)  # every page reads one block, then stops
    live = LiveNode(c.node, c.genesis, tmp_path / "db")
    live.alice_file = str(tmp_path / "alice.key")
    save_key(live.alice_file, alice)
    yield live
    live.close()


def test_history_all_goes_past_50_to_the_beginning_and_says_so(long_history):
    live = long_history
    out = run("history", A, "--all", "--node", live.url, "--key", live.alice_file)
    assert out.exit_code == 0, out.output
    assert len([line for line in out.output.splitlines() if line.startswith("h=")]) == 72
    assert out.output.splitlines()[-1] == ("72 transactions: the whole history, back to the beginning of the "
                                           "chain")
    doc = json.loads(run("history", A, "--all", "--json", "--node", live.url, "--key", live.alice_file).output)
    assert len(doc["items"]) == len({i["tx_hash"] for i in doc["items"]}) == 72 and doc["next_before"] is None


def test_history_without_all_says_that_older_history_remains(long_history):
    live = long_history
    out = run("history", A, "--node", live.url, "--key", live.alice_file)
    assert out.exit_code == 0, out.output
    shown = len([line for line in out.output.splitlines() if line.startswith("h=")])
    assert 50 <= shown < 72  # the node ends a page at a block boundary
    assert f"{shown} newest transactions shown" in out.output
    assert "older history remains" in out.output and "--all" in out.output


def test_a_list_without_end_stops_at_the_bounds_of_one_run_and_says_where_to_continue(monkeypatch):
    from cli import lists
    from cli.errors import CliError

    monkeypatch.setattr(lists, "MAX_PAGES", 3)
    pages = iter(range(100))

    def endless(limit, cursor):
        n = next(pages)
        return {"items": [{"n": n}], "next_cursor": f"c{n}", "total": 1_000}

    with pytest.raises(CliError, match=r"listed 3 items in 3 pages and stopped \(bounds of one run: 3 pages, .*"
                                       r"continue with --cursor c2"):
        lists.fetch_list(endless, 10, None, all_pages=True)

    class History:
        def history(self, account_id, limit, before, scan):
            return {"items": [{"height": before or 99}], "next_before": (before or 99) - 1}

    with pytest.raises(CliError, match=r"read 3 transactions in 3 pages .* continue with --all --before 96"):
        lists.fetch_all_history(History(), A)
