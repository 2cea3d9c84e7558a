"""Lists that page: `ticket list`, `order list` (added to the `ticket` and `order` groups by ``cli.main``) and
the page-following behind `history --all`.

    carecoin ticket list --branch branch-1 --state active --key staff.key
    carecoin order list --customer 3f2a... --all --key alice.key
    carecoin history 3f2a... --all --key alice.key

Every list is newest first. Without ``--all`` one page is shown and, when more remain, the last line says how
to get the next one (``--cursor``); with ``--all`` every page is followed to the end of the list (the history
to the beginning of the chain) and the last line says so. A listing never stops silently: if the bounds of one
run (pages, time) are reached it fails and names where to continue.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable

import click

from cli.client import NodeClient, read_key_option
from cli.errors import CliError, cli_errors
from cli.options import echo_json, node_options, parse_id
from cli.render import format_coins, format_fiat, format_time


MAX_LIST_LIMIT = 200  # the node's largest page
MAX_PAGES = 10_000  # pages one --all run follows ...
DEADLINE_S = 300.0  # ... and the wall-clock time it spends on them
HISTORY_PAGE = 1000  # history items per page with --all
HISTORY_SCAN = 100_000  # blocks one history page may scan (the node also ends a page on its time budget)
STATES = "open, assigned, in_progress, waiting, resolved, closed, or active (= the first four)"


def follow_pages(fetch_page: Callable[[Any], dict[str, Any]], position: Any, next_key: str,
                 stopped: Callable[[int, int, Any], str]) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """Read pages from ``position`` until ``doc[next_key]`` is None, within one run's bounds (``MAX_PAGES``,
    ``DEADLINE_S``): (last page, every item, pages read). Past the bounds, ``stopped(items, pages, position)``
    says how far it got and how to continue."""
    deadline = time.monotonic() + DEADLINE_S
    items: list[dict[str, Any]] = []
    for pages in range(1, MAX_PAGES + 1):
        doc = fetch_page(position)
        items.extend(doc["items"])
        position = doc.get(next_key)
        if position is None:
            return doc, items, pages
        if time.monotonic() >= deadline:
            break
    raise CliError(stopped(len(items), pages, position))


def _bounds() -> str:
    return f"bounds of one run: {MAX_PAGES} pages, {DEADLINE_S:.0f} s"


def fetch_list(fetch: Callable[..., dict[str, Any]], limit: int, cursor: str | None,
               all_pages: bool) -> dict[str, Any]:
    """One page of a list (``fetch(limit=, cursor=)``: a ``carecoin.Client`` list method with its scope bound),
    or with ``all_pages`` every page from ``cursor`` to the end, joined (``pages`` says how many were read)."""
    if not all_pages:
        return {**fetch(limit=limit, cursor=cursor), "pages": 1}
    doc, items, pages = follow_pages(
        lambda at: fetch(limit=MAX_LIST_LIMIT, cursor=at), cursor, "next_cursor",
        lambda n, k, at: f"listed {n} items in {k} pages and stopped ({_bounds()}); continue with --cursor {at}")
    return {**doc, "items": items, "count": len(items), "pages": pages}


def fetch_all_history(client: NodeClient, account_id: str, before: int | None = None) -> dict[str, Any]:
    """Every tx of the account below ``before`` (default: all), newest first, following ``next_before`` down
    to height 1 (``pages`` says how many pages were read)."""
    doc, items, pages = follow_pages(
        lambda at: client.history(account_id, limit=HISTORY_PAGE, before=at, scan=HISTORY_SCAN), before,
        "next_before",
        lambda n, k, at: f"read {n} transactions in {k} pages and stopped ({_bounds()}); continue with --all "
                         f"--before {at}")
    return {**doc, "items": items, "pages": pages, "complete": True}


def describe_history_end(count: int, before: int | None) -> str:
    """The last line of `history --all`: how many, and that the listing reached the beginning of the chain."""
    below = f" below height {before}" if before is not None else ""
    return f"{count} transaction{'s' * (count != 1)}{below}: the whole history, back to the beginning of the chain"


def describe_page_end(doc: dict[str, Any], noun: str, cursor: str | None) -> str:
    """The last line of a list: how many of how many, and how to see the rest (never a silent stop)."""
    count, total = len(doc["items"]), doc.get("total", len(doc["items"]))
    if doc.get("next_cursor"):
        return (f"{count} {noun} shown of {total}, newest first; next page: --cursor {doc['next_cursor']} "
                f"(or --all for every page)")
    if cursor is None:
        return f"{count} {noun}: the whole list" if count else f"no {noun}"
    return f"{count} {noun}, to the end of the list ({total} in all)"


def _echo_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _sla(ticket: dict[str, Any]) -> str:
    breached = ticket.get("breached", 0)
    if breached:
        return "breached: " + ", ".join(n for bit, n in ((1, "first response"), (2, "resolution")) if breached & bit)
    due = ticket.get("resolution_due") if ticket.get("first_response_at") else ticket.get("first_response_due")
    return f"due {format_time(due)}" if due and ticket.get("state") not in ("resolved", "closed") else "-"


@click.command("list")
@click.option("--branch", default=None, help="A branch's queue (staff of that branch, auditors, compliance).")
@click.option("--customer", default=None, help="A customer's tickets (the customer, staff of their branch, "
                                               "auditors, compliance); 64 hex digits.")
@click.option("--state", default=None, help=f"Only tickets in these states, comma-separated: {STATES}.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIST_LIMIT),
              help="Tickets per page.")
@click.option("--cursor", default=None, help="Continue a listing: the cursor the previous page printed.")
@click.option("--all", "all_pages", is_flag=True, help="Follow every page to the end of the list.")
@node_options
@read_key_option
@cli_errors
def ticket_list(client: NodeClient, as_json: bool, branch: str | None, customer: str | None, state: str | None,
                limit: int, cursor: str | None, all_pages: bool) -> None:
    """List tickets, newest first: a branch's queue (--branch) or a customer's tickets (--customer); with
    neither, every ticket (auditors and compliance).

    \b
    Example:
      carecoin ticket list --branch branch-1 --state active --key staff.key
      carecoin ticket list --customer 3f2a... --all --key alice.key
    """
    if branch is not None and customer is not None:
        raise click.UsageError("give --branch or --customer, not both")
    if customer is not None:
        parse_id(customer, "customer")
    doc = fetch_list(functools.partial(client.tickets, branch=branch, customer=customer, state=state), limit,
                     cursor, all_pages)
    if as_json:
        echo_json(doc)
        return
    rows = [(t["ticket_id"], t["state"], t["category"], str(t["priority"]), t["branch"], format_time(t["opened_at"]),
             t["customer"][:16] + "…", _sla(t)) for t in doc["items"]]
    if rows:
        _echo_rows(("TICKET", "STATE", "CATEGORY", "PRIORITY", "BRANCH", "OPENED", "CUSTOMER", "SLA"), rows)
    click.echo(describe_page_end(doc, "tickets", cursor))


@click.command("list")
@click.option("--customer", required=True, help="The customer's account id (64 hex digits).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIST_LIMIT),
              help="Orders per page.")
@click.option("--cursor", default=None, help="Continue a listing: the cursor the previous page printed.")
@click.option("--all", "all_pages", is_flag=True, help="Follow every page to the end of the list.")
@node_options
@read_key_option
@cli_errors
def order_list(client: NodeClient, as_json: bool, customer: str, limit: int, cursor: str | None,
               all_pages: bool) -> None:
    """List a customer's orders, newest first (the customer, staff of their branch, auditors, compliance).

    \b
    Example:
      carecoin order list --customer 3f2a... --key alice.key
      carecoin order list --customer 3f2a... --all --json --key staff.key
    """
    parse_id(customer, "customer")
    doc = fetch_list(functools.partial(client.orders, customer), limit, cursor, all_pages)
    if as_json:
        echo_json(doc)
        return
    rows = [(o["order_id"], o["status"], format_fiat(o["amount_due"], o["currency"]), format_coins(o["coins_paid"]),
             format_coins(o["earned"]), format_fiat(o["fiat_refunded"], o["currency"]) if o.get("refunded_at") else "-",
             o["branch"], format_time(o["created_at"])) for o in doc["items"]]
    if rows:
        _echo_rows(("ORDER", "STATUS", "DUE", "PAID", "EARNED", "REFUNDED", "BRANCH", "CREATED"), rows)
    click.echo(describe_page_end(doc, "orders", cursor))
