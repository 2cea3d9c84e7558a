"""`carecoin report` against a live in-process node: fiat per currency and in the base currency, and the coins
and debt outstanding with their base-currency value, as a person reads them and as JSON."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from cli.main import main
from ledger.keys import save_key
from tests.node.live_node import LiveNode
from tests.node.local_chain import LocalChain
from tests.node.test_analytics_outstanding import play_refunded_usd_order


def test_report_prints_fiat_in_the_base_currency_and_the_coins_outstanding(tmp_path):
    c = LocalChain(tmp_path / "db")
    play_refunded_usd_order(c)
    height = c.store.head().height
    c.store.close()
    live = LiveNode(c.node, c.genesis, tmp_path / "db")
    auditor = str(tmp_path / "auditor.key")  # the report goes to role holders: the company auditor reads it
    save_key(auditor, c.auditor)
    try:
        out = CliRunner().invoke(main, ["report", "--branch", "north", "--node", live.url, "--key", auditor],
                                 catch_exceptions=False)
        doc = json.loads(CliRunner().invoke(main, ["report", "--node", live.url, "--json", "--key", auditor]).output)
    finally:
        live.close()
    assert out.exit_code == 0, out.output
    assert ("fiat (minor units; totals in EUR, each order at its own rate): ordered 14200 (EUR 5000, USD 10000), "
            "paid 14200 (EUR 5000, USD 10000), confirmed 9200 (USD 10000), refunded 9200 (USD 10000)") in out.output
    # The node makes empty blocks, so the two reads may see different heights: each names its own.
    shown = re.search(r"outstanding at height (\d+) \(all branches\): 1090 coins, worth 2180 EUR minor units \(the "
                      r"company's liability\); debt owed 60 coins \(120 EUR minor units\)", out.output)
    assert shown and int(shown.group(1)) >= height, out.output
    assert doc["outstanding"]["height"] >= height and doc["outstanding"]["coins"] == 1_090
