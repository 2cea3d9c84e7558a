"""`carecoin tx <kind>`: build, sign and submit transactions to a node.

The sender's nonce is read from the node (state nonce + transactions of this sender still pending) unless
``--nonce`` is given; ``--wait`` blocks until the transaction is committed and prints its height and result.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import click

from cli.client import NodeClient
from cli.errors import cli_errors
from cli.options import echo_json, node_options
from ledger.keys import KeyPair, load_key, parse_public_key
from ledger.tx import make_tx


def signed_tx_options(func: Callable) -> Callable:
    """Add ``--key``, ``--second-key``, ``--nonce`` and ``--wait`` to a tx command."""

    @click.option("--key", "key_file", required=True, envvar="CARECOIN_KEY", type=click.Path(dir_okay=False),
                  help="Sender's key file (env CARECOIN_KEY).")
    @click.option("--second-key", "second_key_file", type=click.Path(dir_okay=False),
                  help="Second-factor key file, where policy requires one.")
    @click.option("--nonce", type=click.IntRange(min=1), help="Nonce to use (default: the next one).")
    @click.option("--wait/--no-wait", default=False, help="Wait until the transaction is committed.")
    @click.option("--timeout", "timeout_s", default=30.0, show_default=True, help="Seconds to wait with --wait.")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def next_nonce(client: NodeClient, account: bytes) -> int:
    doc = client.get(f"/v1/accounts/{account.hex()}")
    return int(doc.get("next_nonce", int(doc.get("nonce", 0)) + 1))


def submit(client: NodeClient, kind: str, payload: list, key_file: str, second_key_file: str | None,
           nonce: int | None, wait: bool, timeout_s: float, as_json: bool) -> dict:
    """Sign ``payload`` as a ``kind`` transaction, submit it, optionally wait, and print the outcome."""
    key: KeyPair = load_key(key_file)
    extra = (load_key(second_key_file),) if second_key_file else ()
    chain_id = client.get("/v1/status")["chain_id"]
    if nonce is None:
        nonce = next_nonce(client, key.public_key)
    tx = make_tx(chain_id, kind, key, nonce, payload, *extra)
    answer = client.post("/v1/tx", {"tx": tx.raw.hex()})
    doc = {"tx_hash": tx.tx_hash.hex(), "kind": kind, "nonce": nonce, "status": answer.get("status", "pending")}
    if wait:
        doc.update(client.wait_committed(tx.tx_hash.hex(), timeout_s))
    if as_json:
        echo_json(doc)
    else:
        line = f"{kind} {doc['tx_hash']} nonce={nonce} status={doc['status']}"
        if "height" in doc and doc["height"] is not None:
            line += f" height={doc['height']}"
        if doc.get("reason"):
            line += f" reason={doc['reason']}"
        click.echo(line)
    return doc


@click.group("tx")
def tx_group() -> None:
    """Build, sign and submit transactions.

    \b
    Example:
      carecoin tx transfer --key alice.key --to 3f2a... --amount 250 --wait
    """


def account_arg(value: str) -> bytes:
    return parse_public_key(value, "account id")


@tx_group.command("mint")
@click.option("--to", "to", required=True, help="Account id (64 hex digits) receiving the coins.")
@click.option("--amount", required=True, type=click.IntRange(min=1), help="Amount in the smallest unit.")
@signed_tx_options
@node_options
@cli_errors
def mint(client: NodeClient, as_json: bool, to: str, amount: int, key_file: str, second_key_file: str | None,
         nonce: int | None, wait: bool, timeout_s: float) -> None:
    """Mint new coins to an account (the sender must hold the issuer role)."""
    submit(client, "mint", [account_arg(to), amount], key_file, second_key_file, nonce, wait, timeout_s, as_json)


@tx_group.command("transfer")
@click.option("--to", "to", required=True, help="Account id (64 hex digits) receiving the coins.")
@click.option("--amount", required=True, type=click.IntRange(min=1), help="Amount in the smallest unit.")
@click.option("--memo", default="", help="A short note (at most 140 characters).")
@signed_tx_options
@node_options
@cli_errors
def transfer(client: NodeClient, as_json: bool, to: str, amount: int, memo: str, key_file: str,
             second_key_file: str | None, nonce: int | None, wait: bool, timeout_s: float) -> None:
    """Send coins from the key's account to another account."""
    submit(client, "transfer", [account_arg(to), amount, memo], key_file, second_key_file, nonce, wait,
           timeout_s, as_json)


@tx_group.command("status")
@click.argument("tx_hash")
@node_options
@cli_errors
def status(client: NodeClient, as_json: bool, tx_hash: str) -> None:
    """Show a transaction's status: pending, committed (applied or failed with a reason), evicted, unknown."""
    doc = client.get(f"/v1/tx/{tx_hash}")
    if as_json:
        echo_json(doc)
    else:
        click.echo(" ".join(f"{k}={v}" for k, v in doc.items() if v not in (None, "")))
