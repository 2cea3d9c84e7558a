"""`make demo`: a local 4-branch network on 127.0.0.1 playing a short customer story, end to end.

Initialises a network in a temporary directory, starts four real node processes, and plays a customer's
story through different branches: registration (personal data into one branch's vault, a commitment on
chain), an order paid partly in coins, earning, a complaint with response, compensation and resolution, a
rewarded feedback, a refund inside the window and a refused second one. It prints the story, the customer's
history and coin view, the branch report, the per-node agreement table, and one receipt verified offline
against genesis.json only; then it stops the nodes cleanly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cli.client import NodeClient
from cli.domain import signed_request
from cli.texts import new_pending_text
from ledger.events import Event, UnknownEvent, decode_event
from ledger.genesis import load_genesis
from ledger.keys import KeyPair, load_key, save_key
from ledger.receipt import verify as verify_receipt
from ledger.tx import make_tx

console = Console()
BRANCHES = 4


def free_port_base(count: int) -> int:
    """Find a base port with ``count`` consecutive free loopback ports (bounded attempts)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count >= 65000:
            continue
        ok = True
        for p in range(base, base + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise SystemExit("demo: could not find free loopback ports")


def run_cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise SystemExit(f"demo: carecoin {' '.join(args)} failed:\n{out.stderr or out.stdout}")
    return out.stdout


def wait_until(pred, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception:  # noqa: BLE001 - node not up yet
            pass
        time.sleep(0.2)
    raise SystemExit(f"demo: timed out after {timeout_s:.0f} s waiting for {what}")


def api_url(config_path: Path) -> str:
    cfg = tomllib.loads(config_path.read_text())
    api = cfg["api"]
    return f"http://{api['host']}:{api['port']}"


def main() -> None:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="carecoin-demo-"))
    net = workdir / "net"
    base = free_port_base(2 * BRANCHES)
    console.rule("[bold]carecoin demo: a 4-branch network on 127.0.0.1")
    run_cli("network", "init", "--branches", str(BRANCHES), "--dir", str(net), "--base-port", str(base),
            "--chain-id", "carecoin-demo")
    genesis = load_genesis(net / "genesis.json")
    branches = [v.name for v in genesis.validators]
    console.print(f"network initialised in {net} (chain {genesis.chain_id}, validators: {', '.join(branches)})")

    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for name in branches:
            log = open(workdir / f"{name}.log", "wb")
            logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "cli.main", "node", "start", "--config", str(net / name / "node.toml")],
                stdout=log, stderr=subprocess.STDOUT))
        clients = [NodeClient(api_url(net / name / "node.toml")) for name in branches]
        for c in clients:
            wait_until(lambda c=c: c.get("/v1/status")["height"] >= 0, 30, f"node {c.url}")
        console.print("four nodes are up")
        traffic(genesis.chain_id, net, branches, clients)
        customer_views(clients)
        summary(clients, branches)
        receipt_check(clients, net)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()
    codes = [p.returncode for p in procs]
    if os.environ.get("CARECOIN_DEMO_KEEP"):
        where = f"files kept in {workdir}"
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        where = "temporary files removed (set CARECOIN_DEMO_KEEP=1 to keep them)"
    console.print(f"nodes stopped (exit codes {codes}); demo took {time.monotonic() - started:.1f} s; {where}")
    if any(codes):
        raise SystemExit("demo: a node did not stop cleanly")


STATE: dict = {}
PERSON = {"name": "Amélie Poulain", "email": "amelie@montmartre.example", "phone": "+33 1 42 00 00 00"}


class Teller:
    """Signs, submits and waits for txs (tracking nonces), and records each step for the story table."""

    def __init__(self, chain_id: str, clients: list[NodeClient]) -> None:
        self.chain_id, self.clients = chain_id, clients
        self.nonces: dict[bytes, int] = {}
        self.rows: list[tuple[str, ...]] = []

    def send(self, step: str, key: KeyPair, kind: str, payload: list, via: int) -> dict:
        self.nonces[key.public_key] = self.nonces.get(key.public_key, 0) + 1
        tx = make_tx(self.chain_id, kind, key, self.nonces[key.public_key], payload)
        client = self.clients[via % len(self.clients)]
        client.post("/v1/tx", {"tx": tx.raw.hex()})
        result = client.wait_committed(tx.tx_hash.hex(), timeout_s=30)
        result["tx_hash"] = tx.tx_hash.hex()
        self.rows.append((step, kind, f"branch {via % len(self.clients) + 1}", str(result.get("height")),
                          str(result.get("outcome")), result.get("reason", "")))
        return result


def content(text: str) -> bytes:
    """A salted commitment to ``text`` (the demo keeps no text: only the commitment goes on chain)."""
    return new_pending_text("content_hash", "demo", text, "--content").commitment


def traffic(chain_id: str, net: Path, branches: list[str], clients: list[NodeClient]) -> None:
    """A short customer story: register (data into branch 1's vault), order, pay with coins, earn, complaint,
    response, compensation, resolution, feedback reward, a refund inside the window and one refused."""
    keys = net / branches[0] / "keys"
    admin, issuer = load_key(keys / "admin.key"), load_key(keys / "issuer.key")
    clerk, alice = KeyPair.generate(), KeyPair.generate()
    save_key(net / "clerk.key", clerk)
    t = Teller(chain_id, clients)
    # No single admin grants a role: branch 1's admin proposes, the admins of two more branches approve
    # (a quorum of 3 of the 4 branches); the approval reaching the quorum grants it.
    t.send(f"proposal: a clerk joins {branches[0]}", admin, "propose-grant-role",
           ["clerk-joins", clerk.public_key, "staff", branches[0]], via=0)
    for i in (1, 2):
        approver = load_key(net / branches[i] / "keys" / "admin.key")
        t.send(f"{branches[i]}'s admin approves", approver, "approve-proposal", ["clerk-joins"], via=i)
    stored = signed_request(clients[0], str(net / "clerk.key"), "POST", "/v1/vault/customers",
                            {"customer": alice.public_key.hex(), "data": PERSON})
    console.print(f"Alice's personal data went into branch 1's vault only; on chain goes its commitment "
                  f"{stored['commitment'][:16]}…")
    t.send("register Alice (KYC 1)", clerk, "register-customer",
           [alice.public_key, 1, bytes.fromhex(stored["commitment"])], via=0)
    t.send("welcome coins", issuer, "mint", [alice.public_key, 1000], via=1)
    t.send("order O1: 100.00 EUR", clerk, "create-order",
           ["O1", alice.public_key, 10_000, "EUR", content("2 mugs, 1 teapot")], via=2)
    t.send("Alice pays 400 in coins", alice, "pay-order", ["O1", 400], via=3)
    t.send("confirm: Alice earns", clerk, "confirm-order", ["O1"], via=0)
    t.send("complaint: cracked teapot", alice, "open-ticket",
           ["T1", "complaint", 2, "O1", content("the teapot arrived cracked")], via=1)
    t.send("clerk responds", clerk, "respond-ticket", ["T1", content("sorry, a new one is on its way")], via=2)
    comp = t.send("compensation 300", clerk, "compensate", ["T1", 300], via=3)
    t.send("resolved", clerk, "resolve-ticket", ["T1", content("replacement delivered")], via=0)
    t.send("feedback 5/5 (rewarded once)", alice, "submit-feedback",
           ["ticket", "T1", 5, content("quick and kind")], via=1)
    t.send("order O2: 20.00 EUR", clerk, "create-order", ["O2", alice.public_key, 2_000, "EUR", content("scarf")],
           via=2)
    t.send("Alice pays 100 in coins", alice, "pay-order", ["O2", 100], via=3)
    t.send("refund inside the window", alice, "request-refund", ["O2", "wrong colour"], via=0)
    t.send("refund again: refused", alice, "request-refund", ["O2", "once more"], via=1)

    table = Table(title="the customer story")
    for col in ("step", "tx", "via", "height", "outcome", "reason"):
        table.add_column(col)
    for row in t.rows:
        table.add_row(*row)
    console.print(table)
    STATE["receipt_tx"] = comp["tx_hash"]
    STATE["customer"] = alice.public_key.hex()
    STATE["branch"] = branches[0]


def customer_views(clients: list[NodeClient]) -> None:
    """Alice's history and coin view (from branch 2), and the branch report (from branch 3)."""
    alice = STATE["customer"]
    history = clients[1].get(f"/v1/accounts/{alice}/history?limit=50")
    table = Table(title=f"Alice's history ({alice[:16]}…), read from branch 2")
    for col in ("height", "tx", "outcome", "events"):
        table.add_column(col)
    for item in reversed(history["items"]):
        events = ", ".join(event_label(decode_event(e)) for e in item["events"])
        table.add_row(str(item["height"]), item["kind"], item["reason"] or item["result"], events)
    console.print(table)
    coin = clients[1].get(f"/v1/accounts/{alice}/coin")
    console.print(f"Alice holds {coin['balance']} coins (tier {coin['tier']}, lifetime earned "
                  f"{coin['lifetime_earned']}, KYC {coin['kyc_level']})")
    branch = STATE["branch"]
    report = clients[2].get(f"/v1/report?branch={branch}")
    t = report["tickets"]
    console.print(f"report for branch {branch}: coins " + ", ".join(f"{k} {v}" for k, v in report["coins"].items())
                  + f"; tickets {t['total']} ({', '.join(f'{k} {v}' for k, v in t['by_state'].items() if v)}), "
                  f"mean first response {t['mean_first_response_ms']} ms, mean resolution "
                  f"{t['mean_resolution_ms']} ms; average rating {report['ratings']['average']}")


def event_label(event: Event) -> str:
    """An event's kind, with its amount when it moves coins ("credited 300")."""
    kind = event.kind if isinstance(event, UnknownEvent) else event.KIND
    amount = getattr(event, "amount", None)
    return f"{kind} {amount}" if isinstance(amount, int) else kind


def summary(clients: list[NodeClient], branches: list[str]) -> None:
    statuses = [c.get("/v1/status") for c in clients]
    height = min(s["height"] for s in statuses)
    table = Table(title=f"per-node agreement at height {height}")
    for col in ("branch", "height", f"hash at {height}"):
        table.add_column(col)
    hashes = set()
    for name, c, s in zip(branches, clients, statuses):
        h = c.get(f"/v1/blocks/{height}")["block_hash"]
        hashes.add(h)
        table.add_row(name, str(s["height"]), h[:24] + "…")
    console.print(table)
    console.print("all nodes agree" if len(hashes) == 1 else f"[red]nodes disagree: {hashes}")


def receipt_check(clients: list[NodeClient], net: Path) -> None:
    tx_hash = STATE["receipt_tx"]
    receipt = clients[2].get(f"/v1/tx/{tx_hash}/receipt")
    path = net / "receipt.json"
    path.write_text(json.dumps(receipt, indent=2))
    verified = verify_receipt(receipt, load_genesis(net / "genesis.json"))
    console.print(f"receipt for {tx_hash[:16]}… fetched from branch 3 and verified offline: "
                  f"height {verified.height}, status {verified.status}, {len(verified.signers)} validator seals")
    out = run_cli("receipt", "verify", str(path), "--genesis", str(net / "genesis.json"))
    console.print(f"`carecoin receipt verify` says: {out.strip()}")


if __name__ == "__main__":
    if os.environ.get("CARECOIN_DEMO_DRYRUN"):
        sys.exit(0)
    main()
