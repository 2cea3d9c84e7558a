"""`make demo`: a local 4-branch network on 127.0.0.1 playing a short customer story, end to end.

Initialises a network in a temporary directory from the local preset with a demo policy (orders may also be
in USD; a high-priority complaint must get a first response within ``SLA_MS``), starts four real node
processes, and plays a customer's story through different branches: registration (personal data into one
branch's vault, a commitment on chain), an order paid partly in coins, earning, an urgent complaint nobody
answers, a complaint with response, compensation and resolution, a rewarded feedback, treasury's USD rate,
a campaign decided by a quorum of branch admins, an order in USD paid partly
in coins whose confirmation pays the campaign bonus, a refund inside the window and a refused second one.
Nobody acts on the urgent complaint: a block's sweep compensates the customer. It prints the story, the
customer's history and coin view, the branch report (fiat in the base currency, coins outstanding, SLA
breaches, debt), the per-node agreement table, and the sweep's receipt verified offline against
genesis.json only; then it stops the nodes cleanly. Free texts never go on chain: only salted commitments.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cli.client import NodeClient
from cli.texts import new_pending_text, signed_request
from ledger.events import Event, SlaBreached, UnknownEvent, decode_event
from ledger.genesis import load_genesis
from ledger.keys import KeyPair, load_key, save_key
from ledger.receipt import verify as verify_receipt
from ledger.tx import make_tx
from cli.ports import free_port_base
from node.config.presets import get_preset_path

console = Console()
BRANCHES = 4
SLA_MS = 3_000  # first response due this long after a high-priority complaint is opened (demo policy)
USD_RATE = 920_000  # treasury's rate: $1 = €0.92 (EUR cents per 1,000,000 US cents)
DEMO_POLICY = {"currencies": '"EUR,USD"', "sla_first_response_ms_complaint_p3": str(SLA_MS)}


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
            "--chain-id", "carecoin-demo", "--preset", str(write_demo_preset(workdir)))
    genesis = load_genesis(net / "genesis.json")
    branches = [v.name for v in genesis.validators]
    console.print(f"network initialised in {net} (chain {genesis.chain_id}, validators: {', '.join(branches)}); "
                  f"policy: base currency EUR, orders also in USD, an urgent complaint's first response due in "
                  f"{SLA_MS / 1000:.0f} s")

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
        wait_for_sla_sweep(clients)
        story_table()
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


def write_demo_preset(workdir: Path) -> Path:
    """The local 4-branch preset with the default policy plus ``DEMO_POLICY``, written into ``workdir``."""
    preset = get_preset_path()
    policy = (preset.parent / "policy-default.toml").read_text()
    policy += "".join(f"{name} = {value}\n" for name, value in DEMO_POLICY.items())
    (workdir / "demo-policy.toml").write_text(policy)
    text = preset.read_text().replace('policy_file = "policy-default.toml"', 'policy_file = "demo-policy.toml"')
    if "demo-policy.toml" not in text:
        raise SystemExit(f"demo: {preset} names no policy-default.toml to replace")
    (workdir / "demo-preset.toml").write_text(text)
    return workdir / "demo-preset.toml"


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
        client.submit_tx(tx)
        result = client.wait(tx.tx_hash.hex(), timeout_s=30, key=key)  # the sender reads its tx
        result["tx_hash"] = tx.tx_hash.hex()
        self.rows.append((step, kind, f"branch {via % len(self.clients) + 1}", str(result.get("height")),
                          str(result.get("outcome")), result.get("reason", "")))
        return result


def content(text: str) -> bytes:
    """A salted commitment to ``text`` (the demo keeps no text: only the commitment goes on chain)."""
    return new_pending_text("content_hash", "demo", text, "--content").commitment


def traffic(chain_id: str, net: Path, branches: list[str], clients: list[NodeClient]) -> None:
    """A short customer story: register (data into branch 1's vault), order, an urgent complaint nobody answers,
    pay with coins, earn, complaint, response, compensation, resolution, feedback reward, a USD rate, a campaign,
    a USD order earning the campaign bonus, a refund inside the window and one refused."""
    keys = net / branches[0] / "keys"
    admin, issuer = load_key(keys / "admin.key"), load_key(keys / "issuer.key")
    treasury = load_key(net / "company" / "treasury.key")
    admins = [admin] + [load_key(net / b / "keys" / "admin.key") for b in branches[1:3]]
    clerk, alice = KeyPair.generate(), KeyPair.generate()
    save_key(net / "clerk.key", clerk)
    t = STATE["teller"] = Teller(chain_id, clients)
    # No single admin grants a role: branch 1's admin proposes, the admins of two more branches approve
    # (a quorum of 3 of the 4 branches); the approval reaching the quorum grants it.
    t.send(f"proposal: a clerk joins {branches[0]}", admin, "propose-grant-role",
           ["clerk-joins", clerk.public_key, "staff", branches[0]], via=0)
    approve(t, branches, admins, "clerk-joins")
    stored = signed_request(clients[0], str(net / "clerk.key"), "POST", "/v1/vault/customers",
                            {"customer": alice.public_key.hex(), "data": PERSON})
    console.print(f"Alice's personal data went into branch 1's vault only; on chain goes its commitment "
                  f"{stored['commitment'][:16]}…")
    t.send("register Alice (KYC 1)", clerk, "register-customer",
           [alice.public_key, 1, bytes.fromhex(stored["commitment"])], via=0)
    t.send("welcome coins", issuer, "mint", [alice.public_key, 1000], via=1)
    t.send("order O1: 100.00 EUR", clerk, "create-order",
           ["O1", alice.public_key, 10_000, "EUR", content("2 mugs, 1 teapot")], via=2)
    t.send("urgent complaint T2: nobody answers", alice, "open-ticket",
                    ["T2", "complaint", 3, "O1", content("the second parcel never came")], via=3)
    t.send("Alice pays 400 in coins", alice, "pay-order", ["O1", 400], via=3)
    t.send("confirm: Alice earns", clerk, "confirm-order", ["O1"], via=0)
    t.send("complaint T1: cracked teapot", alice, "open-ticket",
           ["T1", "complaint", 2, "O1", content("the teapot arrived cracked")], via=1)
    t.send("clerk responds", clerk, "respond-ticket", ["T1", content("sorry, a new one is on its way")], via=2)
    t.send("compensation 300", clerk, "compensate", ["T1", 300], via=3)
    t.send("resolved", clerk, "resolve-ticket", ["T1", content("replacement delivered")], via=0)
    t.send("feedback 5/5 (rewarded once)", alice, "submit-feedback",
           ["ticket", "T1", 5, content("quick and kind")], via=1)
    t.send("treasury: 1 USD = 0.92 EUR", treasury, "set-fx-rate", ["USD", USD_RATE], via=2)
    # A campaign is a governance decision too: +250 coins on a customer's next confirmed order (budget 100,000)
    t.send("proposal: campaign +250 on a confirmed order", admin, "propose-campaign",
           ["spring", "spring-bonus", "order_confirmed", "bonus", 250, 100_000, 1, "", "", 0, "", 0, 0, "", 0], via=0)
    approve(t, branches, admins, "spring")
    t.send("order O3: 120.00 USD", clerk, "create-order",
           ["O3", alice.public_key, 12_000, "USD", content("a tea set")], via=3)
    t.send("Alice pays 500 coins, rest in USD", alice, "pay-order", ["O3", 500], via=0)
    t.send("confirm O3: Alice earns + campaign bonus", clerk, "confirm-order", ["O3"], via=1)
    t.send("order O2: 20.00 EUR", clerk, "create-order", ["O2", alice.public_key, 2_000, "EUR", content("scarf")],
           via=2)
    t.send("Alice pays 100 in coins", alice, "pay-order", ["O2", 100], via=3)
    t.send("refund inside the window", alice, "request-refund", ["O2", content("wrong colour")], via=0)
    t.send("refund again: refused", alice, "request-refund", ["O2", content("once more")], via=1)
    STATE["customer"] = alice.public_key.hex()
    STATE["alice"] = alice  # Alice reads her own history, coins and receipts (signed reads)
    STATE["auditor"] = net / "company" / "auditor.key"  # the company auditor reads blocks and the report
    STATE["branch"] = branches[0]


def approve(t: Teller, branches: list[str], admins: list[KeyPair], proposal_id: str) -> None:
    """The admins of branches 2 and 3 approve: with branch 1's proposal, a quorum of 3 of the 4 branches."""
    for i in (1, 2):
        t.send(f"{branches[i]}'s admin approves", admins[i], "approve-proposal", [proposal_id], via=i)


def wait_for_sla_sweep(clients: list[NodeClient]) -> None:
    """Nobody answered T2: wait (bounded) for the block whose sweep breaches its target and pays Alice."""
    alice = STATE["customer"]
    found: dict = {}

    def swept() -> bool:
        items = clients[0].get(f"/v1/accounts/{alice}/history?limit=50", key=STATE["alice"])["items"]
        found.update(next((i for i in items if i["kind"] == "block-sweep"), {}))
        return bool(found)

    wait_until(swept, 30, "the SLA sweep of T2")
    breach = next(e for e in found["events"] if e[0] == "sla_breached")
    console.print(f"nobody answered T2 within {SLA_MS / 1000:.0f} s: at height {found['height']} the block's sweep "
                  f"breached its {breach[3]} target and credited Alice {breach[5]} coins, with no staff action")
    STATE["teller"].rows.append(("nobody answers T2: the SLA sweep pays", "block-sweep", "(the block)",
                                 str(found["height"]), found["result"], found["reason"]))
    STATE["receipt_tx"] = found["tx_hash"]


def story_table() -> None:
    table = Table(title="the customer story")
    for col in ("step", "tx", "via", "height", "outcome", "reason"):
        table.add_column(col)
    # by height; a block's sweep is its first transaction
    for row in sorted(STATE["teller"].rows, key=lambda r: (int(r[3]) if r[3].isdigit() else 0, r[1] != "block-sweep")):
        table.add_row(*row)
    console.print(table)


def customer_views(clients: list[NodeClient]) -> None:
    """Alice's history and coin view (from branch 2), and the branch report (`carecoin report`, from branch 3)."""
    alice = STATE["customer"]
    history = clients[1].get(f"/v1/accounts/{alice}/history?limit=50", key=STATE["alice"])
    table = Table(title=f"Alice's history ({alice[:16]}…), read from branch 2")
    for col in ("height", "tx", "outcome", "events"):
        table.add_column(col)
    for item in reversed(history["items"]):
        events = ", ".join(event_label(decode_event(e)) for e in item["events"])
        table.add_row(str(item["height"]), item["kind"], item["reason"] or item["result"], events)
    console.print(table)
    coin = clients[1].get(f"/v1/accounts/{alice}/coin", key=STATE["alice"])
    console.print(f"Alice holds {coin['balance']} coins (tier {coin['tier']}, lifetime earned "
                  f"{coin['lifetime_earned']}, KYC {coin['kyc_level']})")
    branch = STATE["branch"]
    console.print(f"`carecoin report --branch {branch} --key company/auditor.key`, read from branch 3:")
    console.print(run_cli("report", "--branch", branch, "--node", clients[2].url, "--key",
                          str(STATE["auditor"])).rstrip(), highlight=False, soft_wrap=True)


def event_label(event: Event) -> str:
    """An event's kind, with its amount when it moves coins ("credited 300"), its target for an SLA breach."""
    kind = event.kind if isinstance(event, UnknownEvent) else event.KIND
    if isinstance(event, SlaBreached):
        return f"{kind} {event.ticket_id} {event.target} (+{event.compensation})"
    amount = getattr(event, "amount", None)
    return f"{kind} {amount}" if isinstance(amount, int) else kind


def summary(clients: list[NodeClient], branches: list[str]) -> None:
    statuses = [c.get("/v1/status") for c in clients]
    height = min(s["height"] for s in statuses)
    table = Table(title=f"per-node agreement at height {height}")
    for col in ("branch", "height", f"hash at {height}"):
        table.add_column(col)
    hashes = set()
    auditor = load_key(STATE["auditor"])  # whole blocks: auditors, compliance and validators only
    for name, c, s in zip(branches, clients, statuses):
        h = c.get(f"/v1/blocks/{height}", key=auditor)["block_hash"]
        hashes.add(h)
        table.add_row(name, str(s["height"]), h[:24] + "…")
    console.print(table)
    console.print("all nodes agree" if len(hashes) == 1 else f"[red]nodes disagree: {hashes}")


def receipt_check(clients: list[NodeClient], net: Path) -> None:
    tx_hash = STATE["receipt_tx"]
    receipt = clients[2].get(f"/v1/tx/{tx_hash}/receipt", key=STATE["alice"])  # the sweep paid Alice
    path = net / "receipt.json"
    path.write_text(json.dumps(receipt, indent=2))
    verified = verify_receipt(receipt, load_genesis(net / "genesis.json"))
    console.print(f"the SLA sweep's receipt ({tx_hash[:16]}…) fetched by Alice from branch 3 and verified offline: "
                  f"height {verified.height}, status {verified.status}, {len(verified.signers)} validator seals")
    out = run_cli("receipt", "verify", str(path), "--genesis", str(net / "genesis.json"))
    console.print(f"`carecoin receipt verify` says: {out.strip()}")


if __name__ == "__main__":
    if os.environ.get("CARECOIN_DEMO_DRYRUN"):
        sys.exit(0)
    main()
