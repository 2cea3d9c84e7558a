"""Read-only commands against a node: `status`, `account show`, `history`, `block show`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from cli.client import NodeClient, read_key_option
from cli.errors import cli_errors
from cli.lists import describe_history_end, fetch_all_history
from cli.options import echo_json, node_options, parse_id
from cli.render import echo_fields, format_time

from ledger.receipt_compact import save_receipt


@click.command("status")
@node_options
@read_key_option
@cli_errors
def status(client: NodeClient, as_json: bool) -> None:
    """Show a node's chain id, height, round, peers and mempool.

    \b
    Example:
      carecoin status --node http://127.0.0.1:27100
    """
    doc = client.status()
    if as_json:
        echo_json(doc)
        return
    keys = ("node", "chain_id", "height", "last_block_hash", "round", "peers", "peer_names", "validators",
            "mempool", "validator", "healthy")
    echo_fields({k: doc[k] for k in keys if k in doc})


@click.group("account")
def account_group() -> None:
    """Accounts: balance, nonce, roles.

    \b
    Example:
      carecoin account coin 3f2a... --key alice.key
    """


@account_group.command("show")
@click.argument("account_id")
@node_options
@read_key_option
@cli_errors
def account_show(client: NodeClient, as_json: bool, account_id: str) -> None:
    """Show an account's balance, nonce and roles.

    \b
    Example:
      carecoin account show 3f2a... --key alice.key
    """
    parse_id(account_id, "account id")
    doc = client.account(account_id)
    if as_json:
        echo_json(doc)
        return
    echo_fields(doc)


MAX_HISTORY_PAGES = 400  # pages one `history` run follows (each bounded by the node's time budget)
HISTORY_DEADLINE_S = 60.0  # and the wall-clock time it spends following them
HISTORY_SCAN = 100_000  # blocks a page may scan: the node ends a page sooner when its time budget is spent


def fetch_history(client: NodeClient, account_id: str, limit: int, before: int | None = None) -> dict:
    """The account's history, newest first, following ``next_before`` until ``limit`` items or genesis.

    A node ends a page early when its time budget for one request is spent; the pages are joined here, so
    the caller sees one answer (``next_before``/``scanned_to`` of the last page read: non-null
    ``next_before`` means older history remains). Bounded by ``MAX_HISTORY_PAGES`` and ``HISTORY_DEADLINE_S``.
    """
    deadline = time.monotonic() + HISTORY_DEADLINE_S
    items: list = []
    doc: dict = {}
    for _ in range(MAX_HISTORY_PAGES):
        page = client.history(account_id, limit - len(items), before, HISTORY_SCAN)
        if not isinstance(page, dict):  # not a paged answer: nothing to follow
            return {"items": page if isinstance(page, list) else []}
        doc = page
        items.extend(page.get("items", []))
        before = page.get("next_before")
        if len(items) >= limit or before is None or time.monotonic() >= deadline:
            break
    return {**doc, "items": items}


@click.command("history")
@click.argument("account_id")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000),
              help="Newest transactions to show (the output says when older ones remain; --all for every one).")
@click.option("--before", type=click.IntRange(min=1), help="Only blocks below this height (continue a listing).")
@click.option("--all", "all_pages", is_flag=True,
              help="Follow every page down to the beginning of the chain (ignores --limit).")
@click.option("--receipts", "receipts_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also save each transaction's receipt as DIR/<tx_hash>.json (verify with `receipt verify`).")
@node_options
@read_key_option
@cli_errors
def history(client: NodeClient, as_json: bool, account_id: str, limit: int, before: int | None,
            all_pages: bool, receipts_dir: Path | None) -> None:
    """List the transactions that touched an account, newest first (up to --limit, paging as needed).

    \b
    Example:
      carecoin history 3f2a... --receipts ./receipts
      carecoin history 3f2a... --all --key alice.key
    """
    parse_id(account_id, "account id")
    doc = fetch_all_history(client, account_id, before) if all_pages else fetch_history(client, account_id, limit,
                                                                                          before)
    items = doc["items"]
    if receipts_dir is not None:
        receipts_dir.mkdir(parents=True, exist_ok=True)
        for item in items:
            path = receipts_dir / f"{item['tx_hash']}.json"
            save_receipt(path, client.receipt(item["tx_hash"]))
            item["receipt_file"] = str(path)
    if as_json:
        echo_json(doc)
        return
    if not items:
        click.echo("no transactions")
    for item in items:
        kinds = list(dict.fromkeys(e[0] for e in item.get("events", []) if e))  # e.g. credited, sla_breached
        line = (f"h={item.get('height')} {item.get('kind', '?'):<10} {item.get('tx_hash')} "
                f"{item.get('result', '')} {item.get('reason', '')}").rstrip()
        if kinds:
            line += "  events: " + ", ".join(kinds)
        if "receipt_file" in item:
            line += f"  receipt: {item['receipt_file']}"
        line += f"  at {format_time(item.get('timestamp_ms'))}"
        click.echo(line)
    if all_pages:
        click.echo(describe_history_end(len(items), before))
    elif doc.get("next_before") is not None:
        click.echo(f"{len(items)} newest transactions shown; older history remains: continue with --before "
                   f"{doc['next_before']}, or --all for every page", err=True)


@click.group("block")
def block_group() -> None:
    """Blocks.

    \b
    Example:
      carecoin block show 12 --key auditor.key --json
    """


@block_group.command("show")
@click.argument("height")
@node_options
@read_key_option
@cli_errors
def block_show(client: NodeClient, as_json: bool, height: str) -> None:
    """Show a block header, its transactions and its commit certificate ("latest" for the head).

    \b
    Example:
      carecoin block show latest --key auditor.key
    """
    if height != "latest" and not height.isdigit():
        raise click.BadParameter(f"expected a block height or 'latest', got {height!r}")
    doc = client.block(height)
    if as_json:
        echo_json(doc)
        return
    echo_fields(doc)
