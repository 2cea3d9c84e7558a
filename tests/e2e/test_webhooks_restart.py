"""A branch's webhook receiver gets every committed event of the branch exactly once per delivery id, across a
node killed with SIGKILL and restarted; `carecoin events follow` shows the same events to the company auditor.

Real processes: a one-branch network (`network init`), the node started by `carecoin node start`, the hook
registered with `carecoin webhook add`, a receiver that is a plain HTTP server in this test. The node.toml has
a `[sink]` section: the same events land once each in its embedded SQLite, across the kill too.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.keys import KeyPair
from ledger.tx import make_tx
from node.webhooks import verify_payload

pytestmark = pytest.mark.e2e


class Receiver:
    """Records (delivery id, event id, verified) for every POST; answers 204."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, dict]] = []
        self.secret = ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify_payload(receiver.secret, int(self.headers["X-Carecoin-Timestamp"]), body,
                                    self.headers["X-Carecoin-Signature"])
                doc = json.loads(body)
                with receiver.lock:
                    receiver.seen.append((self.headers["X-Carecoin-Delivery"], doc["event"]["id"],
                                          {"verified": ok, "kind": doc["event"]["kind"]}))
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def event_ids(self) -> set[str]:
        with self.lock:
            return {e for _, e, _ in self.seen}


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_webhook_gets_every_event_once_per_delivery_id_across_a_killed_and_restarted_node(network_factory):
    net = network_factory(1)
    toml = net.dir / net.names[0] / "node.toml"
    # The embedded sink (<data_dir>/events.sqlite3); the receiver runs on loopback, which the operator allows.
    toml.write_text(toml.read_text() + "\n[sink]\n\n[webhooks]\nallow = [\"127.0.0.1\"]\n")
    net.start_all()
    api, branch = net.apis[0], net.dir / net.names[0]
    receiver = Receiver()
    try:
        hook = json.loads(cli("webhook", "add", "--key", str(branch / "keys" / "admin.key"), "--url", receiver.url,
                              "--node", api, "--json"))
        receiver.secret = hook["secret"]
        staff, issuer = net.key(0, "staff"), net.key(0, "issuer")
        customer = KeyPair.generate()
        txs = [make_tx(net.chain_id, "register-customer", staff, 1, [customer.public_key, 1, b"\x01" * 32]),
               make_tx(net.chain_id, "mint", issuer, 1, [customer.public_key, 10]),
               make_tx(net.chain_id, "mint", issuer, 2, [customer.public_key, 20])]
        for tx in txs:
            net.submit(0, tx)
        net.wait_committed(0, txs[-1].tx_hash)
        net.wait_until("3 events delivered", lambda: len(receiver.event_ids()) >= 3, 15)

        net.kill(0)  # SIGKILL: whatever was acknowledged but not yet written is sent again, with the same id
        net.start(0)
        net.wait_ready(0)
        later = [make_tx(net.chain_id, "mint", issuer, n, [customer.public_key, 10 * n]) for n in (3, 4)]
        for tx in later:
            net.submit(0, tx)
        net.wait_committed(0, later[-1].tx_hash)
        net.wait_until("5 events delivered", lambda: len(receiver.event_ids()) >= 5, 15)

        followed = cli("events", "follow", "--key", str(net.dir / "company" / "auditor.key"), "--last-event-id",
                       hook["cursor"], "--count", "5", "--node", api, "--json")
        expected = [json.loads(line) for line in followed.splitlines()]
        assert [e["kind"] for e in expected] == ["customer_registered", "credited", "credited", "credited",
                                                 "credited"]
        by_event: dict[str, set[str]] = defaultdict(set)
        for delivery, event_id, info in receiver.seen:
            assert info["verified"], (delivery, event_id)
            by_event[event_id].add(delivery)
        assert sorted(by_event) == sorted(e["id"] for e in expected)  # every event, nothing else
        assert all(ids == {f"{hook['id']}:{e}"} for e, ids in by_event.items())  # one delivery id per event
        listed = json.loads(cli("webhook", "list", "--key", str(branch / "keys" / "staff.key"), "--node", api,
                                "--json"))
        assert [h["id"] for h in listed["items"]] == [hook["id"]] and listed["items"][0]["dead_letters"] == 0

        def sunk() -> list:
            with sqlite3.connect(net.dir / net.names[0] / "data" / "events.sqlite3") as db:
                return db.execute("SELECT kind, COUNT(*), SUM(amount) FROM carecoin_events GROUP BY kind "
                                  "ORDER BY kind").fetchall()
        net.wait_until("the sink holds the 5 events", lambda: sunk() == [("credited", 4, 100),
                                                                           ("customer_registered", 1, None)], 10)
    finally:
        receiver.server.shutdown()
