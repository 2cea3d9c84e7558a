"""`carecoin receipt verify`: exit 0 with a summary for a valid receipt, exit 1 naming the failing check."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from cli.ports import free_port
from ledger import codec
from ledger.genesis import save_genesis
from ledger.receipt import KEYS, build_receipt
from ledger.receipt_compact import load_receipt, save_receipt
from tests.receipt_fixtures import make_block, make_genesis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def receipt():
    sb = make_block(4, 5, signers=3)
    return build_receipt(sb.block, sb.results, 1, sb.seals)


@pytest.fixture
def files(tmp_path, receipt):
    genesis = tmp_path / "genesis.json"
    save_genesis(genesis, make_genesis())
    path = tmp_path / "receipt.json"
    save_receipt(path, receipt)
    return path, genesis


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_valid_receipt_exits_0_with_a_short_summary(files, receipt):
    path, genesis = files
    result = run("receipt", "verify", path, "--genesis", genesis)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("valid receipt: tx " + receipt["tx_hash"])
    assert "block 4" in result.output and "sealed by 3 of 4 validators" in result.output
    assert "branch-0" in result.output and "transfer" in result.output
    for check in ("tx_hash", "tx_signature", "envelope_hash", "result", "events", "block_hash", "audit_path",
                  "validator_set_changes: 0 validator-set change(s)", "validator_set_hash", "commit", "chain_id"):
        assert f"✓ {check}" in result.output


def test_a_valid_compact_receipt_verifies_with_json_output(tmp_path, files, receipt):
    _, genesis = files
    path = tmp_path / "receipt.bin"
    save_receipt(path, receipt, compact=True)
    result = run("receipt", "verify", path, "--genesis", genesis, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["valid"] is True and doc["tx_hash"] == receipt["tx_hash"] and doc["height"] == 4
    assert len(doc["signers"]) == 3
    assert [c["check"] for c in doc["checks"]][-4:] == ["validator_set_changes", "validator_set_hash", "commit",
                                                         "chain_id"]


def test_a_tampered_receipt_exits_1_naming_the_check(tmp_path, files, receipt):
    _, genesis = files
    bad = copy.deepcopy(receipt)
    bad["commit"].pop()
    path = tmp_path / "bad.json"
    save_receipt(path, bad)
    text = run("receipt", "verify", path, "--genesis", genesis)
    assert text.exit_code == 1
    assert text.output.startswith("Error: invalid receipt: commit_quorum: 2 distinct validator seals")
    assert "✓ audit_path" in text.output and text.output.rstrip().endswith("✗ commit_quorum")
    as_json = run("receipt", "verify", path, "--genesis", genesis, "--json")
    assert as_json.exit_code == 1
    doc = json.loads(as_json.output)
    assert doc["valid"] is False and doc["check"] == "commit_quorum" and "need 3" in doc["message"]
    assert doc["passed"][:2] == ["format", "tx_hash"] and "commit" not in doc["passed"]


def test_a_version_1_receipt_exits_1_saying_it_is_no_longer_accepted(tmp_path, files, receipt):
    _, genesis = files
    old = {k: v for k, v in receipt.items() if k != "validator_set_changes"}
    old["version"] = 1
    path = tmp_path / "v1.json"
    save_receipt(path, old)
    result = run("receipt", "verify", path, "--genesis", genesis)
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: invalid receipt: version: version 1 receipts are no longer accepted; "
                                     "expected version 2")


def test_non_hex_content_exits_1_with_a_format_message(tmp_path, files, receipt):
    _, genesis = files
    bad = copy.deepcopy(receipt)
    bad["block_hash"] = "not hex at all"
    path = tmp_path / "bad.json"
    save_receipt(path, bad)
    result = run("receipt", "verify", path, "--genesis", genesis)
    assert result.exit_code == 1
    assert "invalid receipt: format: block_hash is not lowercase hex" in result.output
    assert "Traceback" not in result.output


def test_another_networks_genesis_exits_1_with_chain_id(tmp_path, files):
    path, _ = files
    other = tmp_path / "other.json"
    save_genesis(other, make_genesis(chain_id="carecoin-elsewhere"))
    result = run("receipt", "verify", path, "--genesis", other)
    assert result.exit_code == 1 and "invalid receipt: chain_id:" in result.output


@pytest.mark.parametrize("problem", ["missing receipt", "missing genesis", "bad genesis", "garbage receipt",
                                     "receipt is a directory"])
def test_unusable_files_exit_1_with_one_clear_line(problem, tmp_path, files):
    path, genesis = files
    if problem == "missing receipt":
        path, expect = tmp_path / "nope.json", "nope.json does not exist"
    elif problem == "missing genesis":
        genesis, expect = tmp_path / "nope-genesis.json", "nope-genesis.json does not exist"
    elif problem == "bad genesis":
        genesis.write_text('{"chain_id": "x", "genesis_time_ms": 0, "validators": []}')
        expect = "validators must be a non-empty list"
    elif problem == "garbage receipt":
        path.write_bytes(b"\x00\x01garbage")
        expect = "invalid receipt: format:"
    else:
        path, expect = tmp_path, "is not a file"
    text = run("receipt", "verify", path, "--genesis", genesis)
    assert text.exit_code == 1, text.output
    assert expect in text.output and "Traceback" not in text.output
    assert len(text.output.strip().splitlines()) == 1
    as_json = run("receipt", "verify", path, "--genesis", genesis, "--json")
    assert as_json.exit_code == 1, as_json.output
    doc = json.loads(as_json.output)
    assert doc["valid"] is False and expect.removeprefix("invalid receipt: format:") in doc["message"]


def test_the_console_script_verifies_a_receipt_in_a_real_process(files):
    path, genesis = files
    script = Path(sys.executable).parent / "carecoin"
    if not script.exists():
        pytest.skip("console script not installed (pip install -e .)")
    proc = subprocess.run([str(script), "receipt", "verify", str(path), "--genesis", str(genesis)],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("valid receipt: tx ")


# ------------------------------------------------------------------------------- compact files, old and new

LAYOUT_2_FILE = ROOT / "tests" / "ledger" / "data" / "receipt_layout2.bin"


def test_a_compact_file_of_the_old_layout_2_still_verifies(files):
    _, genesis = files
    assert codec.decode(LAYOUT_2_FILE.read_bytes())[0] == 2
    result = run("receipt", "verify", LAYOUT_2_FILE, "--genesis", genesis, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tx_hash"] == json.loads(LAYOUT_2_FILE.with_suffix(".json").read_text())["tx_hash"]


class _Node:
    """A node on 127.0.0.1 that answers every GET /v1/tx/{hash}/receipt with a receipt chosen by the test."""

    def __init__(self, receipt: dict) -> None:
        doc = json.dumps(receipt).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                ok = self.path.startswith("/v1/tx/") and self.path.split("?")[0].endswith("/receipt")
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/json")
                body = doc if ok else b'{"error": {"code": "not_found", "message": "no such tx"}}'
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def node_serving():
    started = []

    def start(receipt: dict) -> _Node:
        started.append(_Node(receipt))
        return started[-1]

    yield start
    for node in started:
        node.close()


def test_receipt_get_compact_writes_layout_3_that_verifies_to_the_nodes_json(tmp_path, files, receipt, node_serving):
    _, genesis = files
    node = node_serving(receipt)
    out = tmp_path / "r.bin"
    result = run("receipt", "get", receipt["tx_hash"], "-o", out, "--compact", "--node", node.url)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:2] == b"\x9a\x03"  # layout 3
    assert load_receipt(out) == {k: receipt[k] for k in KEYS}
    assert run("receipt", "verify", out, "--genesis", genesis).exit_code == 0


@pytest.mark.parametrize("field", ["tx_hash", "block_hash", "leaf"])
def test_a_rogue_nodes_receipt_with_a_tampered_derived_field_is_not_written_compact(field, tmp_path, receipt,
                                                                                   node_serving):
    """The compact form derives tx_hash, block_hash and leaf: a rogue node's altered copy must not be silently
    'repaired' into a file that verifies. The CLI refuses, naming the field, and writes nothing."""
    rogue = copy.deepcopy(receipt)
    value = rogue[field]
    rogue[field] = value[:-2] + ("00" if value[-2:] != "00" else "01")
    node = node_serving(rogue)
    out = tmp_path / "r.bin"
    result = run("receipt", "get", receipt["tx_hash"], "-o", out, "--compact", "--node", node.url)
    assert result.exit_code == 1, result.output
    assert f"format: {field} is " in result.output and "has no compact form" in result.output
    assert "Traceback" not in result.output and not out.exists()
