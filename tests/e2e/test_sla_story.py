"""The SLA story on a real node, through the CLI: a complaint is opened, nobody acts, and at block time the
customer is compensated — visible in `carecoin history`, as a verifiable receipt of the block's sweep, and
in `/v1/report` (`carecoin report`)."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.genesis import Genesis, Validator, save_genesis
from ledger.keys import KeyPair, save_key
from tests.node.live_node import LiveNode

TARGET_MS = 3_000  # first response due 3 s after opening (genesis policy); resolution much later


def run(*args: str) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, (args, result.output)
    return result.output


@pytest.fixture
def network(tmp_path):
    node, clerk, ann = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    genesis = Genesis("carecoin-sla", int(time.time() * 1000) - 60_000, (Validator("north", node.public_key),),
                      roles={"staff": (clerk.public_key,)},
                      policy={"sla_first_response_ms_complaint_p2": TARGET_MS,
                              "sla_breach_compensation_first_response": 150})
    save_genesis(tmp_path / "genesis.json", genesis)
    for name, key in (("clerk", clerk), ("ann", ann)):
        save_key(tmp_path / f"{name}.key", key)
    live = LiveNode(node, genesis, tmp_path / "db")
    yield live, tmp_path, ann
    live.close()


def test_a_complaint_nobody_answers_compensates_the_customer_at_block_time(network):
    live, tmp, ann = network
    node = ("--node", live.url)
    ann_key, clerk_key = ("--key", tmp / "ann.key"), ("--key", tmp / "clerk.key")  # she reads hers; staff theirs
    run("tx", "register-customer", "--key", tmp / "clerk.key", "--customer", ann.public_key.hex(), "--kyc-level",
        "1", "--commitment", "00" * 32, "--wait", *node)
    run("tx", "create-order", "--key", tmp / "clerk.key", "--order-id", "O1", "--customer", ann.public_key.hex(),
        "--fiat-amount", "10000", "--items", "teapot", "--wait", *node)
    opened = json.loads(run("tx", "open-ticket", "--key", tmp / "ann.key", "--ticket-id", "T1", "--category",
                            "complaint", "--priority", "2", "--order-id", "O1", "--content", "cracked", "--wait",
                            "--json", *node))
    assert opened["outcome"] == "applied"

    # Nobody acts. Within a bounded time, a block's sweep breaches the first-response target.
    deadline, doc = time.monotonic() + 30, {}
    while time.monotonic() < deadline:
        doc = json.loads(run("history", ann.public_key.hex(), "--json", *ann_key, *node))
        if any(i["kind"] == "block-sweep" for i in doc["items"]):
            break
        time.sleep(0.25)
    sweep = next(i for i in doc["items"] if i["kind"] == "block-sweep")

    # history: the sweep is in the customer's own history, with the credit and the breach
    text = run("history", ann.public_key.hex(), *ann_key, *node)
    assert f"block-sweep {sweep['tx_hash']} applied  events: credited, sla_breached" in text
    breach = next(e for e in sweep["events"] if e[0] == "sla_breached")
    assert breach[1:4] == ["T1", ann.public_key.hex(), "first_response"] and breach[5] == 150
    account = json.loads(run("account", "show", ann.public_key.hex(), "--json", *ann_key, *node))
    assert account["balance"] == 150

    # receipt: fetched from the node and verified offline against the genesis file alone
    run("receipt", "get", sweep["tx_hash"], "-o", tmp / "sweep.json", *ann_key, *node)
    verified = json.loads(run("receipt", "verify", tmp / "sweep.json", "--genesis", tmp / "genesis.json", "--json"))
    assert verified["valid"] is True
    assert (verified["kind"], verified["leaf_index"], verified["sender"]) == ("block-sweep", 0, "00" * 32)
    assert breach in verified["events"]
    assert any(e[0] == "credited" and e[2] == 150 and e[3] == "sla" for e in verified["events"])

    # the ticket: breached once at its deadline (opening + the genesis target), compensated automatically
    ticket = json.loads(run("ticket", "show", "T1", "--json", *clerk_key, *node))
    assert (ticket["breached"], ticket["sla_compensated"], ticket["compensated"], ticket["state"]) == (1, 150, 0, "open")
    assert breach[4] == ticket["first_response_due"] == ticket["opened_at"] + TARGET_MS

    # report: the breach counts for the order's branch, with the coins paid
    report = json.loads(run("report", "--branch", "north", "--json", *clerk_key, *node))
    assert report["tickets"]["sla_breaches"] == {"total": 1, "first_response": 1, "resolution": 0, "compensated": 150}
    assert "SLA breaches: 1 (first response 1, resolution 0), 150 coins compensated" in run("report", *clerk_key, *node)
