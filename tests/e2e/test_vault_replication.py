"""The vault replicated over the validator links, on 4 real node processes.

Branch 3's node keeps its vault master key in a file outside its data dir, branch 4's in the environment.
A customer registered at branch 1 is read at branch 3 after branch 1's node is killed; a text written at branch
2 is read at branch 4; an erasure committed while branch 4's node is down shreds the key there too once it has
caught up (410, no key file left), and gets a customer registered meanwhile; every read is in the audit trail compliance lists, and others get 403.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.commitments import compute_text_commitment
from ledger.keys import load_key
from node.vault import MASTER_KEY_ENV, Vault, VaultCorrupt, compute_request_headers
from tests.e2e.conftest import Network
from tests.e2e.test_customer_story import Story, cli

CAROL = {"name": "Carol Replica-Østergaard", "email": "carol.replica@mailbox.example", "phone": "+49 30 1111 2222"}
TEXT = "my parcel was left at the wrong door"
FILE_NODE, ENV_NODE = 2, 3
ENV_MASTER = secrets.token_bytes(32).hex()


@contextmanager
def environment(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start(net: Network, i: int) -> None:
    with environment(**({MASTER_KEY_ENV: ENV_MASTER} if i == ENV_NODE else {})):
        net.start(i)
    net.wait_ready(i)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    network = Network(tmp_path_factory.mktemp("vault-net"), 4)
    secret_dir = network.root / "secrets"
    secret_dir.mkdir(mode=0o700)
    master_file = secret_dir / "branch-3-master.key"
    master_file.write_text(secrets.token_bytes(32).hex())
    master_file.chmod(0o600)
    config = network.dir / network.names[FILE_NODE] / "node.toml"
    text = config.read_text()
    config.write_text(text.replace("[node]\n", f'[node]\nvault_master_key_file = "{master_file}"\n', 1))
    try:
        for i in range(4):
            start(net=network, i=i)
        yield network
    finally:
        network.close()


@pytest.fixture(scope="module")
def story(net, tmp_path_factory):
    s = Story(net, tmp_path_factory.mktemp("vault-keys"))
    s.files["staff1"] = str(net.dir / net.names[1] / "keys" / "staff.key")
    s.files["compliance"] = str(net.dir / "company" / "compliance.key")
    s.new_key("carol")
    return s


def signed(net: Network, i: int, key_file: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    raw = b"" if body is None else json.dumps(body).encode()
    headers = compute_request_headers(load_key(key_file), net.chain_id, method, path, raw, int(time.time() * 1000))
    req = urllib.request.Request(net.apis[i] + path, data=raw if body is not None else None, method=method,
                                 headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except (urllib.error.URLError, OSError):
        return 0, {}


def wait_status(net: Network, i: int, key_file: str, path: str, status: int, timeout_s: float = 30.0) -> dict:
    got: list = []

    def check():
        got[:] = signed(net, i, key_file, "GET", path)
        return got[0] == status
    net.wait_until(f"{path[:40]} -> {status} on node {i} (last {got[:1]})", check, timeout_s, interval_s=0.3)
    return got[1]


def vault_dir(net: Network, i: int):
    return net.dir / net.names[i] / "data" / "vault"


def test_a_customer_registered_at_branch_1_is_read_at_branch_3_after_branch_1_is_killed(net, story):
    s, carol = story, story.keys["carol"]
    fields = [a for k, v in CAROL.items() for a in ("--field", f"{k}={v}")]
    out = json.loads(cli("customer", "register", "--key", s.files["staff"], "--customer", carol.hex,
                         "--kyc-level", "1", *fields, "--node", net.apis[0], "--wait", "--json"))
    assert out["outcome"] == "applied"
    path = f"/v1/vault/customers/{carol.hex}"
    wait_status(net, FILE_NODE, s.files["staff"], path, 200)
    net.kill(0)
    try:
        doc = wait_status(net, FILE_NODE, s.files["staff"], path, 200, timeout_s=5)
        assert doc["data"] == CAROL  # branch 1's staff read their customer at branch 3's node
        assert wait_status(net, FILE_NODE, s.files["compliance"], path, 200, timeout_s=5)["data"] == CAROL
        # branch 2's staff still may not read a branch-1 customer, wherever the record sits
        code, doc = signed(net, FILE_NODE, s.files["staff1"], "GET", path)
        assert (code, doc["error"]["code"]) == (403, "wrong_branch")
    finally:
        start(net, 0)


def test_a_text_written_at_branch_2_is_read_at_branch_4(net, story):
    s, carol = story, story.keys["carol"]
    salt = secrets.token_bytes(32)
    commitment = compute_text_commitment(salt, TEXT)
    code, doc = signed(net, 1, s.files["carol"], "POST", "/v1/vault/texts", {
        "customer": carol.hex, "commitment": commitment.hex(), "salt": salt.hex(), "text": TEXT, "kind": "memo"})
    assert code == 201, doc
    s.text_commitment = commitment.hex()
    doc = wait_status(net, ENV_NODE, s.files["carol"], f"/v1/vault/texts/{commitment.hex()}", 200)
    assert doc["text"] == TEXT and doc["customer"] == carol.hex


def test_the_master_key_outside_the_data_dir_serves_reads_and_the_data_dir_alone_opens_nothing(net, story):
    for i in (FILE_NODE, ENV_NODE):
        root = vault_dir(net, i)
        assert not (root / "master.key").exists(), net.names[i]
        assert (root / "records" / story.keys["carol"].hex).exists()  # the replica is there, encrypted
        stolen = net.root / f"stolen-{i}"
        shutil.copytree(root, stolen)
        with pytest.raises(VaultCorrupt, match="another master key"):
            Vault(stolen)


def test_erasure_while_branch_4_is_down_shreds_its_key_once_it_has_caught_up(net, story):
    s, carol = story, story.keys["carol"]
    net.kill(ENV_NODE)
    key_file = vault_dir(net, ENV_NODE) / "keys" / carol.hex
    assert key_file.exists()  # branch 4 holds carol's replicated key while it is down
    s.ok("erase-customer-data", "carol", "--customer", carol.hex, node=1)
    # and a customer registered while branch 4 is down reaches it once it is back (anti-entropy)
    dave = s.new_key("dave")
    cli("customer", "register", "--key", s.files["staff1"], "--customer", dave.hex, "--kyc-level", "1",
        "--field", "name=Dave Later", "--node", net.apis[1], "--wait", "--json")
    path = f"/v1/vault/customers/{carol.hex}"
    for i in (0, 1, FILE_NODE):
        wait_status(net, i, s.files["compliance"], path, 410, timeout_s=15)
    height = net.height(1)
    start(net, ENV_NODE)
    net.wait_height([ENV_NODE], height, timeout_s=30)
    wait_status(net, ENV_NODE, s.files["compliance"], path, 410, timeout_s=15)
    assert wait_status(net, ENV_NODE, s.files["carol"], f"/v1/vault/texts/{s.text_commitment}", 410, 5)
    assert not key_file.exists()
    # and no peer gives the record back: still shredded after a round of anti-entropy
    time.sleep(2)
    assert not key_file.exists()
    for i in range(4):
        assert not (vault_dir(net, i) / "keys" / carol.hex).exists(), net.names[i]
    doc = wait_status(net, ENV_NODE, s.files["staff1"], f"/v1/vault/customers/{dave.hex}", 200, timeout_s=30)
    assert doc["data"] == {"name": "Dave Later"}


def test_compliance_lists_every_read_with_signer_and_customer_and_others_are_refused(net, story):
    s, carol = story, story.keys["carol"]
    staff0 = load_key(s.files["staff"]).public_key.hex()
    doc = json.loads(cli("audit", "list", "--key", s.files["compliance"], "--customer", carol.hex,
                         "--node", net.apis[FILE_NODE], "--json"))
    reads = [r for r in doc["records"] if r["signer"] == staff0 and r["outcome"] == "ok"]
    assert reads and reads[0]["customer"] == carol.hex and reads[0]["role"] == "staff"
    assert reads[0]["route"] == "GET /v1/vault/customers/{id}"
    refused = [r for r in doc["records"] if r["outcome"] == "wrong_branch"]
    assert refused and refused[0]["signer"] == load_key(s.files["staff1"]).public_key.hex()
    erased = json.loads(cli("audit", "list", "--key", s.files["compliance"], "--node", net.apis[ENV_NODE], "--json"))
    assert any(r["outcome"] == "customer_erased" for r in erased["records"])
    for who in ("staff", "carol"):
        result = CliRunner().invoke(main, ["audit", "list", "--key", s.files[who], "--node", net.apis[FILE_NODE]])
        assert result.exit_code == 3 and "403" in result.output and "not_auditor" in result.output, result.output
    audit_bytes = (net.dir / net.names[FILE_NODE] / "data" / "audit" / "audit.log").read_bytes()
    for value in (*CAROL.values(), TEXT):
        assert value.encode() not in audit_bytes


def test_a_node_whose_configured_master_key_file_is_missing_refuses_to_start_naming_it(network_factory):
    single = network_factory(1)
    config = single.dir / single.names[0] / "node.toml"
    missing = single.root / "no-such-master.key"
    config.write_text(config.read_text().replace("[node]\n", f'[node]\nvault_master_key_file = "{missing}"\n', 1))
    single.start(0)
    code = single.procs[0].wait(timeout=30)
    assert code != 0
    log = single.logs[0].read_text()
    assert "vault_master_key_file" in log and str(missing) in log, log[-2000:]
