"""The privacy scan: after a customer-service story on 4 real nodes, no personal data or free text anywhere.

A demo-sized story is played through the CLI as staff and customers would: two customers registered with
personal data (name, email, phone, address) through two branches, orders with item lists, a ticket with the
customer's message, a question, the customer's answer, a response and a resolution, compensation, feedback
with a comment, a refund with a reason, a transfer with a memo, a freeze whose reason code an officer tried to
write as a sentence (refused before admission: a reason code is a code), and Zoë's erasure while branch 4's node
is down (it catches up after), then a text she tries to store after it (refused). Every personal or free-text
value carries a marker (``MARKERS``). Then every node is stopped and everything it keeps or printed is scanned
(``tests.e2e.privacy_scan``): no marker may appear in any LevelDB key or value, block, result, event, file of
its directory (the vault's encrypted files included) or log line, at DEBUG level.

The scan can fail: ids are on chain in clear by design, so the story creates an order whose id is a control
marker; the scanner must find it in a block, an event, the state and LevelDB on every node. ``test_the_scanner_finds_planted_markers`` plants markers in every other scanned place (a
file, a vault file, a log line, LevelDB) in each searched form and proves each is found.

After the erasure, no node serves Zoë's records (410 to compliance, auditor, staff and Zoë herself), no key
left in any vault opens her files, and every receipt of her transactions still verifies offline against
genesis.json.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import tomllib
from pathlib import Path

import nacl.exceptions
import nacl.secret
import plyvel
import pytest
import tomli_w
from click.testing import CliRunner

from cli.main import main
from ledger import codec
from ledger.keys import KeyPair, save_key
from node.vault import Vault, VaultErased
from node.vault_texts import VaultTexts
from tests.e2e.conftest import Network
from tests.e2e.privacy_scan import Scanner, scan_leveldb, scan_log, scan_files, scan_node

ZOE = {"name": "Zoë Qzxname7731 Lindqvist", "email": "qzxmail7731.zoe@example.test",
       "phone": "+46 70 Qzxphone7731", "address": "Qzxaddr7731 Storgatan 12, Malmö"}
YURI = {"name": "Yuri Qzxname5512 Okafor", "email": "qzxmail5512.yuri@example.test", "phone": "+234 Qzxphone5512"}
TEXTS = {
    "items": "Qzxitems7731 two mugs and a teapot for Zoë",
    "items2": "Qzxitems7732 a woollen scarf, colour plum",
    "ticket": "Qzxticket7731 the lid was cracked and my neighbour Mrs Holm saw it",
    "question": "Qzxquestion7731 could you send a photo of the lid?",
    "answer": "Qzxanswer7731 photo attached, the crack is 3 cm",
    "response": "Qzxresponse7731 sorry Zoë, a new lid ships today",
    "resolution": "Qzxresolution7731 new lid delivered to Storgatan",
    "feedback": "Qzxfeedback7731 quick and kind, thank you Anna",
    "refund": "Qzxrefund7731 the scarf colour was wrong",
    "memo": "Qzxmemo7731 for your birthday Yuri",
    "yuri_items": "Qzxitems5512 a kettle",
    "yuri_ticket": "Qzxticket5512 my kettle leaks at the base",
    "freeze": "Qzxfreeze5512 chargeback dispute, Yuri says the card was stolen",
    "after": "Qzxafter7731 one more thing after my erasure",
}
MARKERS = [*ZOE.values(), *YURI.values(), *TEXTS.values()]
# A distinctive token at the start of every marker: found even where a value is cut short (``value[:40]``).
TOKENS = sorted({word.strip(",.") for m in MARKERS for word in m.split() if "qzx" in word.lower()})
CONTROL = "QzxControl9044-order"  # an order id: on chain by design, so the scan must find it


def carecoin(*args: str, expect: int = 0) -> str:
    """Run the `carecoin` CLI as a user would; the one place tests call it (easy to adapt to signed reads)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == expect, (args, result.output)
    return result.output


class Cast:
    """Keys and CLI steps on a running network: txs with --wait --json, their hashes kept per customer."""

    def __init__(self, net: Network, tmp: Path) -> None:
        self.net, self.tmp = net, tmp
        self.files = {f"staff{i}": str(net.dir / name / "keys" / "staff.key") for i, name in enumerate(net.names)}
        self.files.update(issuer=str(net.dir / net.names[0] / "keys" / "issuer.key"),
                          compliance=str(net.dir / "company" / "compliance.key"),
                          auditor=str(net.dir / "company" / "auditor.key"))
        self.keys: dict[str, KeyPair] = {}
        self.txs: dict[str, list[str]] = {}  # customer -> hashes of the txs about them
        self.texts: dict[str, int] = {}  # commitment hex -> node whose vault keeps the text

    def new_key(self, name: str) -> KeyPair:
        key = KeyPair.generate()
        save_key(self.tmp / f"{name}.key", key)
        self.files[name], self.keys[name] = str(self.tmp / f"{name}.key"), key
        return key

    def tx(self, kind: str, who: str, *args: str, node: int = 0, about: str = "") -> dict:
        doc = json.loads(carecoin("tx", kind, "--key", self.files[who], "--node", self.net.apis[node], "--wait",
                                  "--timeout", "20", "--json", *args))
        assert doc["status"] == "committed" and doc["outcome"] == "applied", (kind, doc)
        if about:
            self.txs.setdefault(about, []).append(doc["tx_hash"])
        return doc

    def register(self, who: str, staff: str, data: dict, node: int) -> dict:
        fields = [a for k, v in data.items() for a in ("--field", f"{k}={v}")]
        doc = json.loads(carecoin("customer", "register", "--key", self.files[staff], "--customer",
                                  self.keys[who].hex, "--kyc-level", "1", *fields, "--node", self.net.apis[node],
                                  "--wait", "--json"))
        assert doc["outcome"] == "applied", doc
        self.txs.setdefault(who, []).append(doc["tx_hash"])
        return doc


def play_story(c: Cast) -> None:
    """The customer-service story; the node of each step varies, so texts land in several nodes' vaults."""
    zoe, yuri = c.new_key("zoe").hex, c.new_key("yuri").hex
    c.register("zoe", "staff0", ZOE, node=0)
    c.register("yuri", "staff1", YURI, node=1)
    c.tx("mint", "issuer", "--to", zoe, "--amount", "1000", node=2, about="zoe")
    c.tx("create-order", "staff0", "--order-id", "O1", "--customer", zoe, "--fiat-amount", "8000",
         "--items", TEXTS["items"], node=0, about="zoe")
    c.tx("pay-order", "zoe", "--order-id", "O1", "--coins", "300", node=1, about="zoe")
    c.tx("confirm-order", "staff0", "--order-id", "O1", node=2, about="zoe")
    c.tx("open-ticket", "zoe", "--ticket-id", "T1", "--category", "complaint", "--priority", "2", "--order-id",
         "O1", "--content", TEXTS["ticket"], node=3, about="zoe")
    c.tx("wait-ticket", "staff0", "--ticket-id", "T1", "--content", TEXTS["question"], node=0, about="zoe")
    c.tx("reply-ticket", "zoe", "--ticket-id", "T1", "--content", TEXTS["answer"], node=1, about="zoe")
    c.tx("respond-ticket", "staff0", "--ticket-id", "T1", "--content", TEXTS["response"], node=2, about="zoe")
    c.tx("compensate", "staff0", "--ticket-id", "T1", "--amount", "200", node=3, about="zoe")
    c.tx("resolve-ticket", "staff0", "--ticket-id", "T1", "--resolution", TEXTS["resolution"], node=0, about="zoe")
    c.tx("submit-feedback", "zoe", "--target-kind", "ticket", "--target-id", "T1", "--rating", "5", "--comment",
         TEXTS["feedback"], node=1, about="zoe")
    c.tx("create-order", "staff0", "--order-id", "O2", "--customer", zoe, "--fiat-amount", "2000",
         "--items", TEXTS["items2"], node=2, about="zoe")
    c.tx("pay-order", "zoe", "--order-id", "O2", "--coins", "100", node=3, about="zoe")
    c.tx("request-refund", "zoe", "--order-id", "O2", "--reason", TEXTS["refund"], node=0, about="zoe")
    c.tx("transfer", "zoe", "--to", yuri, "--amount", "50", "--memo", TEXTS["memo"], node=1, about="zoe")
    c.tx("create-order", "staff1", "--order-id", "Y1", "--customer", yuri, "--fiat-amount", "3000",
         "--items", TEXTS["yuri_items"], node=1, about="yuri")
    c.tx("open-ticket", "yuri", "--ticket-id", "Y1T", "--category", "complaint", "--order-id", "Y1",
         "--content", TEXTS["yuri_ticket"], node=2, about="yuri")
    # Reads a user would make: personal data and texts shown (and logged as reads) by the nodes.
    shown = json.loads(carecoin("customer", "data", zoe, "--key", c.files["compliance"], "--node", c.net.apis[0],
                                "--json"))
    assert shown["data"] == ZOE
    ticket = json.loads(carecoin("ticket", "show", "T1", "--key", c.files["zoe"], "--node", c.net.apis[3], "--json"))
    assert ticket["texts"]["content"] == TEXTS["ticket"]
    # A refused write: branch 2's staff may not store data of branch 1's customer (the body holds her data).
    refused = CliRunner().invoke(main, ["customer", "register", "--key", c.files["staff1"], "--customer", zoe,
                                        "--name", ZOE["name"], "--node", c.net.apis[1]])
    assert refused.exit_code == 3 and "wrong_branch" in refused.output, refused.output
    # A freeze's reason code is on chain for good: a compliance officer writing the case in it is refused before
    # admission (bad_payload), so it never reaches a block; a code is accepted.
    walt = c.new_key("walt").hex
    out = carecoin("tx", "freeze-account", "--key", c.files["compliance"], "--account", yuri, "--reason-code",
                   TEXTS["freeze"], "--node", c.net.apis[2], "--wait", expect=3)
    assert "bad_payload" in out and "not a code" in out and "Qzx" not in out, out
    c.tx("freeze-account", "compliance", "--account", walt, "--reason-code", "chargeback_review", node=2)
    # The control: an order id is on chain in clear by design.
    c.tx("create-order", "staff1", "--order-id", CONTROL, "--customer", yuri, "--fiat-amount", "100", node=1)
    # Branch 4's node (it keeps Zoë's ticket message) is down when she is erased: it shreds her key on catch-up.
    # First every node holds all of Zoë's records: replication is pushed at once, but under load a push can
    # wait for the next anti-entropy round, and an erased customer is never offered again.
    wait_replicated(c, c.keys["zoe"])
    assert c.net.stop(3) == 0
    c.tx("erase-customer-data", "zoe", "--customer", zoe, node=2, about="zoe")
    late = carecoin("tx", "open-ticket", "--key", c.files["zoe"], "--ticket-id", "T2", "--category", "inquiry",
                    "--content", TEXTS["after"], "--node", c.net.apis[0], "--wait", expect=3)
    assert "410" in late and "customer_erased" in late, late  # her texts are never stored again
    c.net.start(3)
    c.net.wait_ready(3)
    c.net.wait_height([3], c.net.height(0))


def wait_replicated(c: Cast, account: KeyPair, timeout_s: float = 90.0) -> None:
    """Wait (bounded) until every node's vault holds ``account``'s personal data and as many texts as any node."""
    deadline = time.monotonic() + timeout_s
    while True:
        texts = texts_of(c, account.public_key)
        counts = [len(texts.get(i, [])) for i in range(c.net.count)]
        records = [(vault_dir(c.net, i) / "records" / account.hex).exists() for i in range(c.net.count)]
        if all(records) and min(counts) == max(counts) > 0:
            return
        assert time.monotonic() < deadline, f"not replicated in {timeout_s:.0f} s: records {records}, texts {counts}"
        time.sleep(0.5)


def texts_of(c: Cast, customer: bytes) -> dict[int, list[bytes]]:
    """node index -> commitments of ``customer``'s text records in that node's vault."""
    found: dict[int, list[bytes]] = {}
    for i in range(c.net.count):
        root = vault_dir(c.net, i) / "texts"
        for path in root.iterdir() if root.exists() else ():
            if path.suffix != ".tmp" and codec.decode(path.read_bytes())[0] == customer:
                found.setdefault(i, []).append(bytes.fromhex(path.name))
    return found


def vault_dir(net: Network, i: int) -> Path:
    """Where node ``i`` keeps its vault."""
    return net.dir / net.names[i] / "data" / "vault"


def master_key(net: Network, i: int) -> bytes:
    """Node ``i``'s vault master key (a local network keeps it in the data dir; ``node.vault_master``)."""
    return (vault_dir(net, i) / "master.key").read_bytes()


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """The story on 4 running nodes logging at DEBUG; yields the cast (nodes still running)."""
    net = Network(tmp_path_factory.mktemp("scan-net"), 4)
    for name in net.names:
        path = net.dir / name / "node.toml"
        doc = tomllib.loads(path.read_text())
        doc["log"]["level"] = "debug"
        path.write_text(tomli_w.dumps(doc))
    try:
        net.start_all()
        cast = Cast(net, tmp_path_factory.mktemp("scan-keys"))
        play_story(cast)
        yield cast
    finally:
        net.close()


@pytest.fixture(scope="module")
def scanned(story):
    """Stop every node (cleanly), then scan each for every marker, every token and the control."""
    net = story.net
    height = max(net.height(i) for i in range(net.count))
    net.wait_height(range(net.count), height)
    for i in range(net.count):
        assert net.stop(i) == 0
    scanner = Scanner([*MARKERS, *TOKENS, CONTROL])
    nodes = [scan_node(scanner, name, net.dir / name, net.logs[i]) for i, name in enumerate(net.names)]
    return scanner, nodes


def test_after_erasure_no_node_serves_the_customers_records_and_every_receipt_verifies(story):
    c, net = story, story.net
    zoe = c.keys["zoe"]
    # The erasure committed on every node; every node's vault has applied it before it answers a read.
    for i in range(net.count):
        assert json.loads(carecoin("customer", "show", zoe.hex, "--key", c.files["auditor"], "--node", net.apis[i],
                                     "--json"))["erased"]
    holders = {i for i in range(net.count) if (vault_dir(net, i) / "records" / zoe.hex).exists()}
    texts = texts_of(c, zoe.public_key)
    # The vault replicates: Zoë's personal data and every text of hers reached all four nodes (branch 4's too,
    # though it was down at her erasure), and each node shredded its own key for her.
    assert holders == set(range(net.count)), holders
    assert all(len(texts.get(i, [])) >= 3 for i in range(net.count)) and len({*map(len, texts.values())}) == 1, texts
    for i in range(net.count):
        for who in ("compliance", "auditor", "staff0"):
            out = carecoin("customer", "data", zoe.hex, "--key", c.files[who], "--node", net.apis[i], expect=3)
            assert "410" in out and "customer_erased" in out, (i, who, out)
        # Zoë herself: the personal-data route is for staff, compliance and auditors (403); nothing of hers is
        # shown either way.
        out = carecoin("customer", "data", zoe.hex, "--key", c.files["zoe"], "--node", net.apis[i], expect=3)
        assert "410" in out or "403" in out, out
        assert not any(token.lower() in out.lower() for token in TOKENS), out
        for commitment in texts.get(i, []):
            for who in ("zoe", "compliance", "auditor"):
                out = carecoin("text", "show", commitment.hex(), "--key", c.files[who], "--node", net.apis[i],
                               expect=3)
                assert "410" in out and "customer_erased" in out, (i, who, out)

    # Directly: no key left in any vault opens any of Zoë's files (her wrapped key is gone, the master key
    # opens only wrapped keys, and no other customer's key opens her ciphertexts).
    for i in range(net.count):
        root = vault_dir(net, i)
        vault = Vault(root)
        assert not (root / "keys" / zoe.hex).exists()
        with pytest.raises(VaultErased):
            vault.get(zoe.public_key)
        sealed = [(root / "records" / zoe.hex).read_bytes()]
        for commitment in texts.get(i, []):
            with pytest.raises(VaultErased):
                VaultTexts(vault).get(commitment)
            sealed.append(codec.decode((root / "texts" / commitment.hex()).read_bytes())[3])
        master = nacl.secret.SecretBox(master_key(net, i))
        others = [nacl.secret.SecretBox(master.decrypt(p.read_bytes())) for p in (root / "keys").iterdir()
                  if not p.name.endswith(".tmp")]
        for ciphertext in sealed:
            for box in (master, *others):
                with pytest.raises(nacl.exceptions.CryptoError):
                    box.decrypt(ciphertext)
    # Yuri was not erased: his data still opens on his branch's node.
    assert Vault(vault_dir(net, 1)).get(c.keys["yuri"].public_key)[0] == YURI

    # Every receipt of Zoë's transactions (registration to erasure) still verifies offline against genesis.
    genesis = str(net.dir / "genesis.json")
    assert len(c.txs["zoe"]) >= 17
    for n, tx_hash in enumerate(c.txs["zoe"]):
        path = c.tmp / f"receipt-{n}.json"
        carecoin("receipt", "get", tx_hash, "-o", str(path), "--key", c.files["zoe"], "--node", net.apis[n % net.count])
        verified = json.loads(carecoin("receipt", "verify", str(path), "--genesis", genesis, "--json"))
        assert verified["tx_hash"] == tx_hash and verified["status"] == 0, verified


def test_every_node_held_and_shredded_the_erased_customers_record(story):
    net, zoe = story.net, story.keys["zoe"]
    for i in range(net.count):
        root = vault_dir(net, i)
        assert (root / "records" / zoe.hex).exists() and (root / "erased" / zoe.hex).exists(), net.names[i]
        assert not (root / "keys" / zoe.hex).exists()


def test_no_personal_data_or_free_text_in_any_store_file_or_log_line_of_any_node(scanned):
    scanner, nodes = scanned
    for node in nodes:  # the scan looked at every place of every node
        assert node.leveldb_entries > 100 and node.head > 20 and node.files > 10 and node.log_lines > 20, node
    leaks = [hit for hit in scanner.hits if hit.needle != CONTROL]
    assert not leaks, "\n".join(f"{h.place}: {h.needle!r} as {h.form}" for h in leaks[:40])


def test_the_scan_finds_the_on_chain_control_marker_on_every_node(scanned):
    scanner, nodes = scanned
    for node in nodes:
        places = [h.place for h in scanner.hits if h.needle == CONTROL and h.place.startswith(node.name + " ")]
        for where in (" block ", " event ", " leveldb b'S'", " leveldb b'B'", " leveldb b'R'"):
            assert any(where in p for p in places), (node.name, where, places[:10])


def test_the_scanned_logs_hold_every_level_down_to_debug_and_the_vault_lines(scanned, story):
    logs = [log.read_text(errors="replace") for log in story.net.logs]
    for text in logs:
        assert " DEBUG " in text and " INFO " in text, text[-2000:]
    # the vault's own lines were scanned: a personal-data write on branch 1, a text stored on branch 4
    assert "vault: personal data of" in logs[0] and re.search(r"vault: \w+ text [0-9a-f]{16} of", logs[3])


def test_the_scanner_finds_planted_markers(tmp_path, scanned, story):
    """Plant a marker in each kind of place, in each form, in a copy of a node; the scanner finds each."""
    net = story.net
    copy = tmp_path / "node"
    shutil.copytree(net.dir / net.names[0], copy)
    log = tmp_path / "node.log"
    shutil.copy(net.logs[0], log)
    plants = {
        "QzxPlantLdb001": "leveldb",
        "QzxPlantNested002": "leveldb nested",
        "QzxPlantFile003": "file utf-16-le",
        "QzxPlantVault004": "vault hex",
        "QzxPlantLog005": "log upper",
        "QzxPlantJson006 Zoë": "log json",
    }
    db = plyvel.DB(str(copy / "data"))
    db.put(b"S" + b"\x01planted", codec.encode(["note", "QzxPlantLdb001"]))
    db.put(b"M" + b"planted", codec.encode([b"x", codec.encode([1, "QzxPlantNested002"])]))
    db.compact_range()  # into a compressed table file: only reading through LevelDB finds it for sure
    db.close()
    (copy / "data" / "stray.txt").write_bytes("QzxPlantFile003".encode("utf-16-le"))
    planted_record = copy / "data" / "vault" / "records" / ("ab" * 32)
    planted_record.write_bytes(b"\x00" + "QzxPlantVault004".encode().hex().encode())
    with log.open("a") as f:
        f.write("2026-01-01 branch-1 INFO carecoin.x: QZXPLANTLOG005 shouted\n")
        f.write(json.dumps({"msg": "QzxPlantJson006 Zoë"}) + "\n")

    scanner = Scanner(plants)
    assert scan_leveldb(scanner, "copy", copy / "data") > 100
    assert scan_files(scanner, "copy", copy) > 10
    assert scan_log(scanner, "copy", log) > 20
    found = {(h.needle, h.form) for h in scanner.hits}
    where = {h.needle: h.place for h in scanner.hits}
    assert ("QzxPlantLdb001", "str") in found and " leveldb b'S'" in where["QzxPlantLdb001"]
    assert any(h.needle == "QzxPlantNested002" and "leveldb b'M'" in h.place and "msgpack bin" in h.place
               for h in scanner.hits)
    assert ("QzxPlantFile003", "utf-16-le") in found
    assert ("QzxPlantVault004", "hex") in found and "vault/records" in where["QzxPlantVault004"]
    assert ("QzxPlantLog005", "utf-8") in found  # case-insensitive
    assert ("QzxPlantJson006 Zoë", "json") in found
    # And the real scan of the unplanted nodes found none of these.
    assert not {h.needle for h in scanned[0].hits} & set(plants)
