"""Ticket texts end to end through the CLI on a live in-process node: the words a customer types never reach
a block, the branch vault keeps them for the customer and the branch's staff (not another branch's), the
customer can prove them offline, and erasure makes them unreadable while the receipt still verifies."""

from __future__ import annotations

import json
import time

from dataclasses import replace

import pytest
from click.testing import CliRunner

from cli.client import NodeClient
from cli.main import main
from ledger import chain
from ledger.genesis import Genesis, Validator, save_genesis
from ledger.keys import KeyPair, save_key
from ledger.storage import Store
from tests.node.live_node import LiveNode

CHAIN = "carecoin-texts"
WORDS = "parcel arrived damaged"


@pytest.fixture
def world(tmp_path):
    keys = {name: KeyPair.generate() for name in ("node", "north", "south", "alice", "audit")}
    genesis = Genesis(CHAIN, int(time.time() * 1000) - 60_000, (Validator("north", keys["node"].public_key),),
                      roles={"staff": (keys["north"].public_key, keys["south"].public_key),
                             "compliance": (keys["audit"].public_key,)},
                      policy={}, branches={keys["north"].public_key: "north", keys["south"].public_key: "south"})
    store = Store.open(tmp_path / "db")
    block, execution = chain.genesis_block(genesis)
    store.commit_block(block, (), execution.results, execution.state_writes, execution.smt_nodes)
    store.close()
    # The verifier reads chain id and validators; its file leaves out the placement of "south" (a branch with
    # no validator here, which only this one-validator test needs: a real genesis file would name its node).
    save_genesis(tmp_path / "genesis.json", replace(genesis, branches={keys["north"].public_key: "north"}))
    files = {}
    for name, key in keys.items():
        files[name] = str(tmp_path / f"{name}.key")
        save_key(files[name], key)
    node = LiveNode(keys["node"], genesis, tmp_path / "db")
    yield node, keys, files, tmp_path
    node.close()


def run(node: LiveNode, *args: str, expect: int = 0) -> str:
    result = CliRunner().invoke(main, [*args, "--node", node.url])
    assert result.exit_code == expect, (args, result.output)
    return result.output


def tx(node: LiveNode, kind: str, key_file: str, *args: str) -> dict:
    doc = json.loads(run(node, "tx", kind, "--key", key_file, *args, "--wait", "--timeout", "20", "--json"))
    assert doc["status"] == "committed" and doc.get("reason", "") == "", doc
    return doc


def every_block_bytes(node: LiveNode, audit_file: str) -> bytes:
    """Every committed block as the node serves it raw (the encoded block and its certificate, hex)."""
    head = json.loads(run(node, "status", "--json"))["height"]
    out = b""
    reader = NodeClient(node.url, key=audit_file)  # whole blocks: compliance (and auditors, validators)
    for h in range(head + 1):
        doc = reader.get(f"/v1/blocks/{h}?format=raw")
        out += b"".join(bytes.fromhex(v) for v in doc.values() if isinstance(v, str))
    return out


def test_a_ticket_message_stays_off_chain_and_is_readable_by_the_customer_and_their_branch_until_erasure(world):
    node, keys, files, tmp = world
    alice = keys["alice"].public_key.hex()
    run(node, "customer", "register", "--key", files["north"], "--customer", alice, "--kyc-level", "1",
        "--name", "Alice Doe", "--wait")
    tx(node, "create-order", files["north"], "--order-id", "O1", "--customer", alice, "--fiat-amount", "1000")
    opened = tx(node, "open-ticket", files["alice"], "--ticket-id", "T1", "--category", "complaint",
                "--order-id", "O1", "--content", WORDS)
    commitment = json.loads(run(node, "ticket", "show", "T1", "--json", "--key", files["north"]))["content_hash"]

    # the words are in no block: only the salted commitment is
    blocks = every_block_bytes(node, files["audit"])
    assert WORDS.encode() not in blocks and b"damaged" not in blocks
    assert bytes.fromhex(commitment) in blocks

    # the customer and staff of her branch read them back; compliance too; staff of another branch do not
    for reader in ("alice", "north", "audit"):
        doc = json.loads(run(node, "text", "show", commitment, "--key", files[reader], "--json"))
        assert (doc["text"], doc["kind"], doc["customer"]) == (WORDS, "ticket_message", alice)
    refused = run(node, "text", "show", commitment, "--key", files["south"], expect=3)
    assert "403" in refused and "wrong_branch" in refused and WORDS not in refused
    assert f"text content: {WORDS}" in run(node, "ticket", "show", "T1", "--key", files["north"])

    # the customer proves what she said, offline, with the salt and the words
    salt = doc["salt"]
    assert "ok" in CliRunner().invoke(main, ["text", "verify", "--commitment", commitment, "--salt", salt,
                                             "--text", WORDS]).output
    other = CliRunner().invoke(main, ["text", "verify", "--commitment", commitment, "--salt", salt,
                                      "--text", "parcel arrived fine"])
    assert other.exit_code == 1 and "do NOT open" in other.output

    # erasure shreds the texts with the personal data; the receipt of the ticket still verifies
    tx(node, "erase-customer-data", files["alice"], "--customer", alice)
    for reader in ("alice", "north"):
        gone = run(node, "text", "show", commitment, "--key", files[reader], expect=3)
        assert "410" in gone and "customer_erased" in gone
    receipt = tmp / "receipt.json"
    run(node, "receipt", "get", opened["tx_hash"], "-o", str(receipt), "--key", files["alice"])
    verified = CliRunner().invoke(main, ["receipt", "verify", str(receipt), "--genesis", str(tmp / "genesis.json")])
    assert verified.exit_code == 0 and "valid receipt: tx" in verified.output, verified.output


def test_staff_texts_belong_to_the_tickets_customer_and_a_memo_to_its_sender(world):
    node, keys, files, _ = world
    alice = keys["alice"].public_key.hex()
    run(node, "customer", "register", "--key", files["north"], "--customer", alice, "--kyc-level", "1",
        "--name", "Alice Doe", "--wait")
    tx(node, "open-ticket", files["alice"], "--ticket-id", "T2", "--category", "inquiry", "--content", "hours?")
    tx(node, "respond-ticket", files["north"], "--ticket-id", "T2", "--content", "nine to five")
    response = json.loads(run(node, "ticket", "show", "T2", "--json", "--key", files["alice"]))["last_response_hash"]
    doc = json.loads(run(node, "text", "show", response, "--key", files["alice"], "--json"))
    assert (doc["text"], doc["kind"], doc["customer"], doc["ticket"]) == ("nine to five", "ticket_response", alice, "T2")
    # staff of another branch write no texts for north's customer: the tx is never sent
    out = run(node, "tx", "respond-ticket", "--key", files["south"], "--ticket-id", "T2", "--content", "hi", expect=3)
    assert "wrong_branch" in out
    shown = json.loads(run(node, "ticket", "show", "T2", "--json", "--key", files["north"]))
    assert shown["last_response_hash"] == response
