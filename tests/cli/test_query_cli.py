"""`carecoin history` with CliRunner against a live in-process node whose history pages end early (the node's
time budget per page is spent after every block): the command follows the continuations itself."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.keys import save_key
from node import reads
from tests.node.live_node import LiveNode
from tests.node.test_reads import history_chain


@pytest.fixture
def node(tmp_path, monkeypatch):
    c, alice, hers = history_chain(tmp_path / "db")
    c.store.close()
    monkeypatch.setattr(reads, "HISTORY_BUDGET_S", 0.0)  # every page reads one block, then stops
    live = LiveNode(c.node, c.genesis, tmp_path / "db")
    live.alice_file = str(tmp_path / "alice.key")  # Alice reads her own history
    save_key(live.alice_file, alice)
    yield live, alice, hers
    live.close()


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_history_follows_early_ended_pages_up_to_the_limit_without_skipping_or_repeating(node):
    live, alice, hers = node
    out = run("history", alice.hex, "--node", live.url, "--key", live.alice_file, "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert [i["tx_hash"] for i in doc["items"]] == hers and doc["next_before"] is None  # all of it, once
    out = run("history", alice.hex, "--node", live.url, "--key", live.alice_file, "--limit", "4", "--json")
    doc = json.loads(out.output)
    assert [i["tx_hash"] for i in doc["items"]] == hers[:len(doc["items"])] and 4 <= len(doc["items"]) <= 6
    # the text listing shows the same txs, one line each, and where to continue from
    out = run("history", alice.hex, "--node", live.url, "--key", live.alice_file, "--limit", "4")
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line.startswith("h=")]
    assert [line.split()[2] for line in lines] == hers[:len(lines)] and len(lines) == len(doc["items"])
    out = run("history", alice.hex, "--node", live.url, "--key", live.alice_file, "--before", str(doc["next_before"]), "--json")
    rest = [i["tx_hash"] for i in json.loads(out.output)["items"]]
    assert [i["tx_hash"] for i in doc["items"]] + rest == hers
