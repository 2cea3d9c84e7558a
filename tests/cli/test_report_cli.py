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
    assert ("fiat (totals in EUR, each order at its own rate): ordered EUR 142.00 (EUR 50.00, USD 100.00), "
            "paid EUR 142.00 (EUR 50.00, USD 100.00), confirmed EUR 92.00 (USD 100.00), "
            "refunded EUR 92.00 (USD 100.00)") in out.output
    # The node makes empty blocks, so the two reads may see different heights: each names its own.
    shown = re.search(r"outstanding at height (\d+) \(all branches\): 1090 coins, worth EUR 21.80 \(the "
                      r"company's liability\); debt owed 60 coins \(EUR 1.20\)", out.output)
    assert shown and int(shown.group(1)) >= height, out.output
    assert doc["outstanding"]["height"] >= height and doc["outstanding"]["coins"] == 1_090


def test_policy_show_prints_each_parameter_with_its_unit(tmp_path):
    c = LocalChain(tmp_path / "db")
    c.store.close()
    live = LiveNode(c.node, c.genesis, tmp_path / "db")
    auditor = str(tmp_path / "auditor.key")
    save_key(auditor, c.auditor)
    try:
        out = CliRunner().invoke(main, ["policy", "show", "--node", live.url, "--key", auditor, "--utc"],
                                 catch_exceptions=False)
    finally:
        live.close()
    assert out.exit_code == 0, out.output
    lines = {line.split(":")[0].strip(): line.split(":", 1)[1].strip() for line in out.output.splitlines()[1:]
             if ":" in line and not line.startswith("  v")}
    assert lines["refund_window_ms"] == "30 d"
    assert lines["earn_rate_bp"] == "100 bp (1.00 %)"
    assert lines["tier_gold_multiplier_pct"] == "150 %"
    assert lines["coin_value_minor"] == "EUR 0.01"
    assert lines["refund_second_factor_threshold"] == "EUR 1000.00"
    assert lines["feedback_reward"] == "50 coins"
    assert lines["sla_resolution_ms_suggestion_p1"] == "no target"
    assert lines["base_currency"] == "EUR"
