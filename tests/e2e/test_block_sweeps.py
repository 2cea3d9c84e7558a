"""Block-time expiry on 4 real node processes: a customer's earned coins expire on their own, with nobody
transacting and no empty blocks (the idle pace is 10 minutes): the report counts them expired, the account
shows 0, the customer's history shows the ``expired`` event and its receipt verifies offline; a validator that
was down meanwhile catches up through the sweep block; and the network then stays idle."""

from __future__ import annotations

import hashlib
import json
import time

import tomli_w
import tomllib
from click.testing import CliRunner

from cli.main import main
from ledger.genesis import load_genesis
from ledger.keys import KeyPair, save_key
from ledger.tx import SWEEP_KIND

LIFETIME_MS = 4_000
IDLE_MS = 600_000  # empty_block_interval_ms: no block without a tx or a due sweep during this test


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def prepare(net) -> None:
    """A short coin lifetime in genesis and an idle pace far beyond the test, before any node starts."""
    path = net.dir / "genesis.json"
    doc = json.loads(path.read_text())
    doc["policy"]["coin_lifetime_ms"] = LIFETIME_MS
    path.write_text(json.dumps(doc, indent=2))
    net.genesis = load_genesis(path)
    for name in net.names:
        toml = net.dir / name / "node.toml"
        cfg = tomllib.loads(toml.read_text())
        cfg["consensus"]["empty_block_interval_ms"] = IDLE_MS
        toml.write_text(tomli_w.dumps(cfg))


def test_dead_coins_of_an_idle_customer_expire_on_time_and_the_report_counts_them(network_factory, tmp_path):
    net = network_factory(4)
    prepare(net)
    net.start_all()
    staff, api = str(net.dir / net.names[0] / "keys" / "staff.key"), net.apis[0]
    customer = KeyPair.generate()
    save_key(tmp_path / "customer.key", customer)

    def tx(kind: str, key: str, *args: str) -> dict:
        doc = json.loads(cli("tx", kind, "--key", key, "--node", api, "--wait", "--timeout", "20", "--json", *args))
        assert (doc["status"], doc["outcome"]) == ("committed", "applied"), (kind, doc)
        return doc

    # The customer earns coins on a confirmed order (10,000 fiat minor units at 100 bp: 100 coins)
    tx("register-customer", staff, "--customer", customer.hex, "--kyc-level", "1",
       "--commitment", hashlib.sha256(b"customer data").hexdigest())
    tx("create-order", staff, "--order-id", "O1", "--customer", customer.hex, "--fiat-amount", "10000",
       "--currency", "EUR", "--items", "a teapot")
    tx("pay-order", str(tmp_path / "customer.key"), "--order-id", "O1", "--coins", "0")
    earned = tx("confirm-order", staff, "--order-id", "O1")
    mine = ("--key", str(tmp_path / "customer.key"))  # the customer reads her own account, history, receipts
    account = json.loads(cli("account", "coin", customer.hex, "--node", api, "--json", *mine))
    assert account["balance"] == 100
    net.stop(3)  # one validator is down while the coins expire (3 of 4 still decide)

    # Nobody transacts. Within the lifetime and a few seconds, the coins are gone on every running node.
    def expired_everywhere():
        return all(net.get(i, f"/v1/accounts/{customer.hex}")[1].get("stored_balance") == 0 for i in range(3))
    net.wait_until("the customer's coins expired", expired_everywhere, LIFETIME_MS / 1000 + 10)
    height = net.height(0)
    assert height == earned["height"] + 1  # one block: the sweep, proposed for the due coins alone

    history = json.loads(cli("history", customer.hex, "--node", net.apis[1], "--json", *mine))["items"]
    sweep = history[0]
    assert sweep["kind"] == SWEEP_KIND and sweep["events"] == [["expired", customer.hex, 100]]
    assert sweep["height"] == height and sweep["index"] == 0 and sweep["result"] == "applied"
    cli("receipt", "get", sweep["tx_hash"], "-o", str(tmp_path / "expiry.json"), "--node", net.apis[2], *mine)
    assert "valid receipt" in cli("receipt", "verify", str(tmp_path / "expiry.json"), "--genesis",
                                  str(net.dir / "genesis.json"))

    def report_expired():
        return net.get(1, "/v1/report")[1].get("coins", {}).get("expired") == 100
    net.wait_until("the report counts the expired coins", report_expired, 10)
    account = json.loads(cli("account", "coin", customer.hex, "--node", api, "--json", *mine))
    assert account["balance"] == 0

    # The validator that was down catches up through the sweep block (validated with the same rule)
    net.start(3)
    net.wait_ready(3)
    net.wait_height([3], height, timeout_s=30)
    net.assert_same_hashes(range(4), height)
    # Nothing is due any more: the network stays idle
    time.sleep(2.0)
    assert [net.height(i) for i in range(4)] == [height] * 4
