"""`carecoin audit list`: the node's audit trail of personal-data reads (compliance and auditors).

    carecoin audit list --key compliance.key                      # the first page, oldest first
    carecoin audit list --key auditor.key --customer 5c1e... --since 200 --limit 50

The request is signed by ``--key`` (``GET /v1/audit``); a key that is neither compliance nor auditor is
refused (403 ``not_auditor``). ``--since`` is a sequence number: pass the previous page's ``next``.
"""

from __future__ import annotations

from datetime import datetime, timezone

import click

from cli.client import NodeClient
from cli.errors import cli_errors
from cli.options import echo_json, node_options, parse_id



@click.group("audit")
def audit_group() -> None:
    """The audit trail: who read which customer's personal data, when, and with what outcome."""


@audit_group.command("list")
@click.option("--key", "key_file", required=True, envvar="CARECOIN_KEY", type=click.Path(dir_okay=False),
              help="A compliance or auditor key file (signs the request).")
@click.option("--customer", default=None, help="Only reads of this customer (account id, 64 hex digits).")
@click.option("--since", type=click.IntRange(0), default=0, show_default=True,
              help="Only records after this sequence number (the previous page's next).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Records per page.")
@node_options
@cli_errors
def audit_list(client: NodeClient, as_json: bool, key_file: str, customer: str | None, since: int,
               limit: int) -> None:
    """List audit records of personal-data reads on this node."""
    who = parse_id(customer, "customer id") if customer else None
    doc = client.sign_with(key_file).audit(who, since, limit)
    if as_json:
        echo_json(doc)
        return
    for r in doc["records"]:
        when = datetime.fromtimestamp(r["time_ms"] / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        click.echo(f"{r['seq']:>6} {when} {r['role']:<10} {r['signer'][:16]}… customer "
                   f"{(r['customer'] or '-')[:16]} {r['record'][:24]:<24} {r['route']} -> {r['outcome']}")
    if doc.get("next") is not None:
        click.echo(f"more: --since {doc['next']}")
