"""`make demo`: a local 4-branch network on 127.0.0.1 running customer traffic, end to end.

Initialises a network in a temporary directory, starts four real node processes, sends coin traffic through
different branches, prints what happened (blocks, transactions, per-node height and hash agreement), fetches
one receipt and verifies it offline against genesis.json only, then stops the nodes cleanly.
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
from ledger.genesis import load_genesis
from ledger.keys import KeyPair, load_key
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


def traffic(chain_id: str, net: Path, branches: list[str], clients: list[NodeClient]) -> None:
    issuer = load_key(net / branches[0] / "keys" / "issuer.key")
    customers = [KeyPair.generate() for _ in range(6)]
    nonces: dict[bytes, int] = {}

    def send(key: KeyPair, kind: str, payload: list, via: int) -> str:
        nonces[key.public_key] = nonces.get(key.public_key, 0) + 1
        tx = make_tx(chain_id, kind, key, nonces[key.public_key], payload)
        clients[via % len(clients)].post("/v1/tx", {"tx": tx.raw.hex()})
        return tx.tx_hash.hex()

    sent = []
    for i, c in enumerate(customers):
        sent.append(send(issuer, "mint", [c.public_key, 1_000 + 100 * i], via=0))
    # Customers pay each other through different branches; the last one overdraws and fails on chain.
    for i, c in enumerate(customers):
        sent.append(send(c, "transfer", [customers[(i + 1) % 6].public_key, 150, f"gift {i}"], via=i))
    sent.append(send(customers[0], "transfer", [customers[1].public_key, 10**9, "too much"], via=3))
    results = [clients[0].wait_committed(h, timeout_s=60) for h in sent]
    table = Table(title="transactions")
    for col in ("tx", "kind", "height", "outcome", "reason"):
        table.add_column(col)
    kinds = ["mint"] * 6 + ["transfer"] * 7
    for h, kind, r in zip(sent, kinds, results):
        table.add_row(h[:16] + "…", kind, str(r.get("height")), str(r.get("outcome", r.get("status"))),
                      r.get("reason", ""))
    console.print(table)
    balances = Table(title="customer balances (read from branch 2)")
    for col in ("customer", "balance", "nonce"):
        balances.add_column(col)
    for c in customers:
        acct = clients[1].get(f"/v1/accounts/{c.public_key.hex()}")
        balances.add_row(c.public_key.hex()[:16] + "…", str(acct["balance"]), str(acct["nonce"]))
    console.print(balances)
    STATE["receipt_tx"] = sent[6]
    STATE["customer"] = customers[0].public_key.hex()


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
