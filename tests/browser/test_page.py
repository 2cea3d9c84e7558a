"""The page at ``/`` in Chromium, as a customer uses it: she loads her key file (read in the page, never sent),
reads her balance, every page of her history, her ticket with its SLA clocks and her order; she verifies a
receipt of her own tx against the genesis file she chose, and a tampered receipt is refused at the right check."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from node.routes import ROUTES
from node.vault import compute_request_headers
from tests.browser.conftest import screenshot
from tests.node.local_chain import CHAIN

pytestmark = pytest.mark.browser


def signed_get(story, key, path: str) -> dict:
    time.sleep(0.002)  # a fresh time stamp per request (the node refuses a replay)
    headers = compute_request_headers(key, CHAIN, "GET", path, b"", int(time.time() * 1000))
    with urllib.request.urlopen(urllib.request.Request(story.url + path, headers=headers), timeout=10) as resp:
        return json.load(resp)


def log_in(page, story, key_file, query: str = "") -> None:
    page.goto(f"{story.url}/{query}")
    page.wait_for_selector("body[data-ready='1']")
    page.set_input_files("#key-file", str(key_file))


def history_of(story) -> list[dict]:
    return signed_get(story, story.alice, f"/v1/accounts/{story.alice.public_key.hex()}/history?limit=1000")["items"]


def test_a_customer_logs_in_with_her_key_file_and_sees_balance_history_ticket_and_order(page, story):
    sent: list[str] = []
    page.on("request", lambda r: sent.append((r.post_data or "") + json.dumps(r.headers)))
    log_in(page, story, story.alice_key)
    page.wait_for_selector("#history-status:has-text('back to the beginning')")
    me = story.alice.public_key.hex()
    assert page.text_content("#key-status") == f"signed in as {me}"
    facts = page.text_content("#account-facts")
    assert "Balance845 coins" in facts and "Debt0 coins" in facts and "Tierbase" in facts
    rows = page.query_selector_all("#history-table tbody tr")
    assert len(rows) == len(history_of(story)) == 8
    assert "submit-feedback" in rows[0].inner_text() and "+50" in rows[0].inner_text()
    ticket = page.inner_text("#tickets-table tbody")
    assert "T1" in ticket and "resolved" in ticket and "met " in ticket and "200 coins" in ticket
    order = page.inner_text("#orders-table tbody")
    assert "O1" in order and "100.00 EUR" in order and "500 coins" in order and "confirmed" in order
    secret = json.loads(story.alice_key.read_text())["secret_key"]
    assert sent and not any(secret in s for s in sent), "the secret key left the page"
    screenshot(page, "customer")


def test_history_is_read_page_by_page_to_the_beginning(page, story):
    pages: list[str] = []
    page.on("request", lambda r: pages.append(r.url) if "/history" in r.url else None)
    log_in(page, story, story.alice_key, "?history_page=3")
    page.wait_for_selector("#history-status:has-text('back to the beginning')")
    assert page.text_content("#history-status").startswith("8 transactions")
    assert len(page.query_selector_all("#history-table tbody tr")) == 8
    assert len(pages) >= 3 and "before=" in pages[-1]


def test_a_key_file_whose_secret_is_not_its_public_key_is_refused_with_a_message(page, story, tmp_path):
    doc = json.loads(story.alice_key.read_text())
    doc["secret_key"] = "11" * 32
    bad = tmp_path / "bad.key"
    bad.write_text(json.dumps(doc))
    log_in(page, story, bad)
    page.wait_for_selector("#key-status.error")
    assert "does not belong to its public key" in page.text_content("#key-status")
    assert page.is_hidden("#account")


def test_a_customer_verifies_the_receipt_of_her_own_tx_in_the_browser(page, story):
    log_in(page, story, story.alice_key)
    page.set_input_files("#genesis-file", str(story.genesis_file))
    page.wait_for_selector("#genesis-status:has-text('fingerprint')")
    page.wait_for_selector("#history-table tbody tr")
    page.click("#history-table tbody tr:first-child button")
    page.wait_for_selector("#verdict.ok")
    assert page.text_content("#verdict").startswith("valid receipt: submit-feedback tx")
    passed = [li.get_attribute("data-check") for li in page.query_selector_all("#checks li.passed")]
    assert passed == ["format", "tx_hash", "tx_signature", "envelope_hash", "result", "events", "block_hash",
                      "audit_path", "validator_set_changes", "validator_set_hash", "commit", "chain_id"]
    assert not page.query_selector_all("#checks li.failed")
    screenshot(page, "receipt-valid")


def _tampered(story, tmp_path, mutate) -> str:
    tx = history_of(story)[0]["tx_hash"]
    receipt = signed_get(story, story.alice, f"/v1/tx/{tx}/receipt")
    mutate(receipt)
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    return str(path)


def _flip(hex_text: str, byte: int) -> str:
    raw = bytearray(bytes.fromhex(hex_text))
    raw[byte] ^= 1
    return raw.hex()


@pytest.mark.parametrize("mutate, check, last_passed", [
    (lambda r: r["commit"][0].update(signature=_flip(r["commit"][0]["signature"], 7)), "commit_signature",
     "validator_set_hash"),
    (lambda r: r["result"].update(status=7), "result", "envelope_hash"),
    (lambda r: r.update(block_hash=_flip(r["block_hash"], 0)), "block_hash", "events"),
], ids=["seal", "result", "block_hash"])
def test_a_tampered_receipt_is_refused_at_the_check_that_was_broken(page, story, tmp_path, mutate, check, last_passed):
    page.goto(story.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.set_input_files("#genesis-file", str(story.genesis_file))
    page.set_input_files("#receipt-file", _tampered(story, tmp_path, mutate))
    page.wait_for_selector("#verdict.bad")
    assert page.text_content("#verdict") == f"invalid receipt: the {check} check failed"
    failed = page.query_selector_all("#checks li.failed")
    assert [li.get_attribute("data-check") for li in failed] == [check]
    passed = [li.get_attribute("data-check") for li in page.query_selector_all("#checks li.passed")]
    assert passed[-1] == last_passed
    assert page.query_selector_all("#checks li.skipped") or check == "chain_id"
    screenshot(page, f"receipt-tampered-{check}")


def test_a_compact_receipt_file_is_refused_with_a_pointer_to_the_cli_not_a_json_parse_error(page, story, tmp_path):
    tx = history_of(story)[0]["tx_hash"]
    path = f"/v1/tx/{tx}/receipt?format=msgpack"
    time.sleep(0.002)
    headers = compute_request_headers(story.alice, CHAIN, "GET", path, b"", int(time.time() * 1000))
    with urllib.request.urlopen(urllib.request.Request(story.url + path, headers=headers), timeout=10) as resp:
        compact = resp.read()
    file = tmp_path / "receipt.bin"
    file.write_bytes(compact)
    page.goto(story.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.set_input_files("#genesis-file", str(story.genesis_file))
    page.set_input_files("#receipt-file", str(file))
    page.wait_for_selector("#verdict.bad")
    assert page.text_content("#verdict") == "invalid receipt: the format check failed"
    failed = page.text_content("#checks li.failed")
    assert "compact msgpack receipt" in failed and "carecoin receipt verify" in failed


def test_a_receipt_is_not_verified_without_a_genesis_chosen_by_the_user(page, story, tmp_path):
    page.goto(story.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.set_input_files("#receipt-file", _tampered(story, tmp_path, lambda r: None))
    page.wait_for_selector("#verdict.bad")
    assert page.text_content("#verdict") == "choose the network's genesis file first"


def test_staff_see_their_branchs_queue_only_where_the_node_lists_tickets(page, story):
    log_in(page, story, story.clerk_key)
    page.wait_for_selector("#history-status:has-text('transactions')")
    if any(r.method == "GET" and r.path == "/v1/tickets" for r in ROUTES):
        page.wait_for_selector("#queue:not([hidden])")
        assert "T1" in page.inner_text("#queue-table tbody")
    else:
        page.wait_for_timeout(500)
        assert page.is_hidden("#queue")


def test_a_receipt_dropped_on_the_section_is_verified_and_a_forged_tx_signature_named(page, story, tmp_path):
    page.goto(story.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.set_input_files("#genesis-file", str(story.genesis_file))
    text = open(_tampered(story, tmp_path, lambda r: r.update(tx=_flip(r["tx"], len(r["tx"]) // 2 - 1)))).read()
    page.evaluate("""(text) => {
        const dt = new DataTransfer();
        dt.items.add(new File([text], "receipt.json", {type: "application/json"}));
        document.querySelector("#verify").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true,
                                                                               cancelable: true}));
    }""", text)
    page.wait_for_selector("#verdict.bad")
    assert page.text_content("#verdict") == "invalid receipt: the tx_signature check failed"
    assert [li.get_attribute("data-check") for li in page.query_selector_all("#checks li.passed")] == [
        "format", "tx_hash"]
