"""Read-only commands against a node: `status`, `account show`, `history`, `block show`."""

from __future__ import annotations

import click

from cli.client import NodeClient
from cli.errors import cli_errors
from cli.options import echo_json, node_options
from ledger.keys import parse_public_key


@click.command("status")
@node_options
@cli_errors
def status(client: NodeClient, as_json: bool) -> None:
    """Show a node's chain id, height, round, peers and mempool.

    \b
    Example:
      carecoin status --node http://127.0.0.1:7000
    """
    doc = client.get("/v1/status")
    if as_json:
        echo_json(doc)
        return
    for key in ("node", "chain_id", "height", "last_block_hash", "round", "peers", "mempool", "validator"):
        if key in doc:
            click.echo(f"{key:>16}: {doc[key]}")


@click.group("account")
def account_group() -> None:
    """Accounts: balance, nonce, roles."""


@account_group.command("show")
@click.argument("account_id")
@node_options
@cli_errors
def account_show(client: NodeClient, as_json: bool, account_id: str) -> None:
    """Show an account's balance, nonce and roles."""
    parse_public_key(account_id, "account id")
    doc = client.get(f"/v1/accounts/{account_id}")
    if as_json:
        echo_json(doc)
        return
    for key, value in doc.items():
        click.echo(f"{key:>12}: {value}")


@click.command("history")
@click.argument("account_id")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@node_options
@cli_errors
def history(client: NodeClient, as_json: bool, account_id: str, limit: int) -> None:
    """List the transactions that touched an account, newest first."""
    parse_public_key(account_id, "account id")
    doc = client.get(f"/v1/accounts/{account_id}/history?limit={limit}")
    if as_json:
        echo_json(doc)
        return
    items = doc.get("items", doc if isinstance(doc, list) else [])
    if not items:
        click.echo("no transactions")
    for item in items:
        click.echo(f"h={item.get('height')} {item.get('kind', '?'):<10} {item.get('tx_hash')} "
                   f"{item.get('result', item.get('status', ''))} {item.get('reason', '')}".rstrip())


@click.group("block")
def block_group() -> None:
    """Blocks."""


@block_group.command("show")
@click.argument("height")
@node_options
@cli_errors
def block_show(client: NodeClient, as_json: bool, height: str) -> None:
    """Show a block header, its transactions and its commit certificate ("latest" for the head)."""
    if height != "latest" and not height.isdigit():
        raise click.BadParameter(f"expected a block height or 'latest', got {height!r}")
    doc = client.get(f"/v1/blocks/{height}")
    if as_json:
        echo_json(doc)
        return
    for key, value in doc.items():
        click.echo(f"{key:>18}: {value}")
