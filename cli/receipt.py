"""`carecoin receipt`: check a transaction receipt offline with nothing but the network's genesis file."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from cli.errors import CliError, cli_errors
from ledger.errors import GenesisError, ReceiptError
from ledger.genesis import Genesis, load_genesis
from cli.client import NodeClient, read_key_option
from cli.options import node_options, parse_id
from ledger.receipt import VerifiedReceipt, verify
from ledger.receipt_compact import load_receipt, save_receipt


@click.group("receipt")
def receipt() -> None:
    """Verify transaction receipts offline."""


def _fail(as_json: bool, check: str, message: str, prefix: str,
          passed: list[tuple[str, str]] | None = None) -> None:
    passed = passed or []
    if as_json:
        click.echo(json.dumps({"valid": False, "check": check, "message": message,
                               "passed": [name for name, _ in passed]}))
        sys.exit(1)
    text = f"{prefix}{check}: {message}" if check not in ("genesis", "file") else f"{prefix}{message}"
    if passed:  # the checks that held before the failing one, each on its own line
        text += "".join(f"\n  ✓ {name}: {detail}" for name, detail in passed) + f"\n  ✗ {check}"
    raise CliError(text)


def _short(raw: bytes) -> str:
    return raw.hex()[:16] + "…"


def summary(v: VerifiedReceipt, genesis: Genesis) -> str:
    """A short human summary of a verified receipt."""
    names = {val.public_key: val.name for val in genesis.validators}
    when = datetime.fromtimestamp(v.timestamp_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    outcome = "applied" if v.applied else f"FAILED with status {v.status} ({v.reason})"
    lines = [
        f"valid receipt: tx {v.tx_hash.hex()} was committed and {outcome}",
        f"  chain {v.chain_id}, block {v.height} ({_short(v.block_hash)}) at {when}, "
        f"tx {v.leaf_index + 1} of {v.tx_count}",
        f"  {v.kind} by {v.sender.hex()} (nonce {v.nonce})",
    ]
    for event in v.events:
        lines.append("  event: " + " ".join(x.hex() if isinstance(x, bytes) else str(x) for x in event))
    signers = ", ".join(names.get(s, _short(s)) for s in v.signers)
    if v.set_changes:
        lines.append(f"  sealed by {len(v.signers)} validators of the set in force after {v.set_changes} "
                     f"validator-set change(s): {signers}")
    else:
        lines.append(f"  sealed by {len(v.signers)} of {len(genesis.validators)} validators "
                     f"(quorum {genesis.quorum}): {signers}")
    return "\n".join(lines)


@receipt.command("verify", epilog="Example: carecoin receipt verify receipt.json --genesis genesis.json")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--genesis", "genesis_path", required=True, type=click.Path(path_type=Path),
              help="The network's genesis.json (its chain id and validator set are all that is trusted).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@cli_errors
def verify_cmd(file: Path, genesis_path: Path, as_json: bool) -> None:
    """Verify a receipt (JSON or compact) offline; exit 0 if valid, 1 with the failing check if not.

    Every check is shown: the tx hash and signatures, the envelope bytes, the result and events, the block
    hash, the audit path, the walk of validator-set changes from the genesis set, the set named by the header,
    the commit seals and the chain id.
    """
    try:
        genesis = load_genesis(genesis_path)
    except GenesisError as exc:
        _fail(as_json, "genesis", f"cannot use genesis: {exc.message}", "")
        return
    if not file.is_file():
        _fail(as_json, "file", f"receipt file {file} does not exist or is not a file", "")
        return
    checks: list[tuple[str, str]] = []
    try:
        verified = verify(load_receipt(file), genesis, on_check=lambda name, detail: checks.append((name, detail)))
    except ReceiptError as exc:
        _fail(as_json, exc.check, exc.message.removeprefix(f"{exc.check}: "), "invalid receipt: ", checks)
        return
    if as_json:
        doc = verified.to_json()
        doc["checks"] = [{"check": name, "detail": detail} for name, detail in checks]
        click.echo(json.dumps(doc))
    else:
        click.echo(summary(verified, genesis))
        click.echo("  checks:\n" + "\n".join(f"    ✓ {name}: {detail}" for name, detail in checks))


@receipt.command("get", epilog="Example: carecoin receipt get 3f2a… -o receipt.json --node http://127.0.0.1:27100")
@click.argument("tx_hash")
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write the receipt to.")
@click.option("--compact", is_flag=True, help="Write the compact msgpack form (about 1.1-1.4 KB) instead of JSON.")
@node_options
@read_key_option
@cli_errors
def get_cmd(client: NodeClient, as_json: bool, tx_hash: str, out: Path, compact: bool) -> None:
    """Fetch a committed transaction's receipt from a node and save it (verify it with `receipt verify`)."""
    parse_id(tx_hash, "tx hash")
    doc = client.receipt(tx_hash)
    save_receipt(out, doc, compact=compact)
    if as_json:
        click.echo(json.dumps({"tx_hash": tx_hash, "file": str(out), "compact": compact}))
    else:
        click.echo(f"receipt for {tx_hash} written to {out}")
