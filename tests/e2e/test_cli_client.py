"""The client CLI against a real (single-branch) node process: every command's success and its refusals."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.keys import KeyPair, save_key
from tests.e2e.conftest import Network, http_json
from tests.node.signing import read_headers


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    network = Network(tmp_path_factory.mktemp("cli-net"), 1)
    try:
        network.start_all()
        yield network
    finally:
        network.close()


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    path = tmp_path_factory.mktemp("alice") / "alice.key"
    key = KeyPair.generate()
    save_key(path, key)
    return key, str(path)


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def issuer_key_file(net: Network) -> str:
    return str(net.dir / net.names[0] / "keys" / "issuer.key")


def auditor_key_file(net: Network) -> str:
    return str(net.dir / "company" / "auditor.key")


def test_an_unsigned_read_is_refused_with_a_message_saying_to_pass_key(net, alice, monkeypatch):
    monkeypatch.delenv("CARECOIN_KEY", raising=False)
    key, key_file = alice
    result = run("account", "show", key.hex, "--node", net.apis[0])
    assert result.exit_code == 3 and "401" in result.output and "unsigned_request" in result.output
    assert "pass --key FILE (or set CARECOIN_KEY)" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("CARECOIN_KEY", key_file)  # the environment variable signs like --key
    assert run("account", "show", key.hex, "--node", net.apis[0]).exit_code == 0


def test_a_customer_reading_another_customers_account_is_refused_403_over_real_processes(net, alice):
    _, key_file = alice
    other = KeyPair.generate()
    result = run("account", "show", other.hex, "--node", net.apis[0], "--key", key_file)
    assert result.exit_code == 3 and "403" in result.output and "not_entitled" in result.output
    assert "readable by the account itself, staff of its branch, auditors and compliance" in result.output
    audited = run("account", "show", other.hex, "--node", net.apis[0], "--key", auditor_key_file(net), "--json")
    assert audited.exit_code == 0 and json.loads(audited.output)["balance"] == 0


def test_status_shows_chain_and_height(net):
    result = run("status", "--node", net.apis[0], "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["chain_id"] == net.chain_id and doc["height"] >= 0


def test_mint_then_transfer_commit_and_show_in_account_and_history(net, alice, tmp_path):
    key, key_file = alice
    out = run("tx", "mint", "--node", net.apis[0], "--key", issuer_key_file(net), "--to", key.hex,
              "--amount", "500", "--wait", "--json")
    assert out.exit_code == 0, out.output
    minted = json.loads(out.output)
    assert minted["status"] == "committed" and minted["outcome"] == "applied" and minted["height"] >= 1

    bob = KeyPair.generate()
    out = run("tx", "transfer", "--node", net.apis[0], "--key", key_file, "--to", bob.hex, "--amount", "120",
              "--memo", "thanks", "--wait")
    assert out.exit_code == 0, out.output
    assert "committed at height" in out.output and "applied" in out.output

    out = run("account", "show", key.hex, "--node", net.apis[0], "--json", "--key", key_file)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["balance"] == 380

    out = run("history", key.hex, "--node", net.apis[0], "--json", "--key", key_file)
    assert out.exit_code == 0, out.output
    hashes = {item["tx_hash"] for item in json.loads(out.output)["items"]}
    assert minted["tx_hash"] in hashes and len(hashes) == 2

    out = run("history", key.hex, "--node", net.apis[0], "--receipts", str(tmp_path / "receipts"), "--key", key_file)
    assert out.exit_code == 0, out.output
    saved = sorted((tmp_path / "receipts").glob("*.json"))
    assert {p.stem for p in saved} == hashes
    for path in saved:
        check = run("receipt", "verify", str(path), "--genesis", str(net.dir / "genesis.json"))
        assert check.exit_code == 0, check.output

    out = run("receipt", "get", minted["tx_hash"], "-o", str(tmp_path / "r.json"), "--node", net.apis[0],
              "--key", key_file)
    assert out.exit_code == 0, out.output
    out = run("receipt", "verify", str(tmp_path / "r.json"), "--genesis", str(net.dir / "genesis.json"))
    assert out.exit_code == 0, out.output
    assert "valid receipt" in out.output


def test_overdraft_commits_as_failed_with_reason(net, alice):
    key, key_file = alice
    out = run("tx", "transfer", "--node", net.apis[0], "--key", key_file, "--to", KeyPair.generate().hex,
              "--amount", "9999", "--wait", "--json")
    assert out.exit_code == 1, out.output  # refused by a rule: exit 1, and the rule's own message
    doc = json.loads(out.output)
    assert doc["outcome"] == "failed" and doc["reason"] == "insufficient_balance"
    assert "9999" in doc["detail"]
    out = run("tx", "status", doc["tx_hash"], "--node", net.apis[0], "--key", key_file)
    assert out.exit_code == 1 and "REFUSED" in out.output and "insufficient_balance" in out.output
    assert "needs 9999" in out.output


def test_mint_by_a_non_issuer_is_committed_as_unauthorized(net, alice):
    key, key_file = alice
    out = run("tx", "mint", "--node", net.apis[0], "--key", key_file, "--to", key.hex, "--amount", "5",
              "--wait", "--json")
    assert out.exit_code == 1, out.output
    assert json.loads(out.output)["reason"] == "unauthorized"


def test_block_show_latest_and_by_height(net, monkeypatch):
    monkeypatch.setenv("CARECOIN_KEY", str(auditor_key_file(net)))  # whole blocks: the company auditor
    out = run("block", "show", "latest", "--node", net.apis[0], "--json")
    assert out.exit_code == 0, out.output
    assert "block_hash" in json.loads(out.output)
    assert run("block", "show", "0", "--node", net.apis[0]).exit_code == 0
    bad = run("block", "show", "abc", "--node", net.apis[0])
    assert bad.exit_code == 2 and "expected a block height" in bad.output


def test_a_tx_the_node_does_not_know_exits_3_with_the_nodes_answer(net, monkeypatch):
    monkeypatch.setenv("CARECOIN_KEY", str(auditor_key_file(net)))
    result = CliRunner().invoke(main, ["tx", "status", "00" * 32, "--node", net.apis[0]])
    assert result.exit_code == 3 and "404" in result.output and "Traceback" not in result.output, result.output


@pytest.mark.parametrize("args, needle, code", [
    (("account", "show", "xyz"), "account id 'xyz' is not hex; expected 64 hex digits", 2),
    (("receipt", "get", "abc", "-o", "/tmp/never.json"), "tx hash 'abc' is not hex; expected 64 hex digits", 2),
    (("tx", "transfer", "--key", "/nonexistent.key", "--to", "00" * 32, "--amount", "1"), "does not exist", 1),
])
def test_malformed_input_is_a_usage_error_and_an_unreadable_file_a_refusal(net, args, needle, code, monkeypatch):
    monkeypatch.setenv("CARECOIN_KEY", str(auditor_key_file(net)))  # signed: what is refused is the input
    result = CliRunner().invoke(main, [*args, "--node", net.apis[0]])
    assert result.exit_code == code, result.output
    assert needle in result.output and "Traceback" not in result.output


def test_unreachable_node_is_a_clear_error():
    result = CliRunner().invoke(main, ["status", "--node", "http://127.0.0.1:9"])
    assert result.exit_code == 3
    assert "cannot reach node at http://127.0.0.1:9" in result.output


def test_transfer_to_a_malformed_account_is_refused_before_signing(net, alice):
    _, key_file = alice
    result = CliRunner().invoke(main, ["tx", "transfer", "--node", net.apis[0], "--key", key_file,
                                       "--to", "abcd", "--amount", "1"])
    assert result.exit_code == 2 and "expected 32" in result.output


def test_a_captured_signed_read_replayed_is_refused_also_after_the_node_restarts(net, alice):
    key, _ = alice
    path = f"/v1/accounts/{key.hex}"
    headers = read_headers(key, net.chain_id, path)  # what an eavesdropper captured
    assert http_json(net.apis[0] + path, headers=headers)[0] == 200
    code, doc = http_json(net.apis[0] + path, headers=headers)
    assert code == 401 and doc["error"]["code"] == "replayed_request"
    assert net.stop(0) == 0
    net.start(0)
    net.wait_ready(0)
    code, doc = http_json(net.apis[0] + path, headers=headers)
    assert code == 401 and doc["error"]["code"] == "replayed_request", doc
    assert net.get(0, path, key=key)[0] == 200  # a fresh signature by the same key reads on
