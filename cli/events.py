"""`carecoin events follow` and `carecoin webhook add/list/remove/dead-letters`: following committed events.

    carecoin events follow --key alice.key                     # from now on, until Ctrl-C
    carecoin events follow --key auditor.key --last-event-id 120:0:3 --count 50 --json
    carecoin webhook add --key branch-1/keys/admin.key --url https://crm.example/carecoin
    carecoin webhook dead-letters 3f9c0a1b2c3d4e5f --key branch-1/keys/admin.key --redrive

Every request is signed by ``--key``. ``events follow`` reads ``GET /v1/events`` (server-sent events) and, when
the node cuts a reader that fell behind, reconnects from the id the node named.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import click

from cli.client import NodeClient
from cli.errors import cli_errors
from cli.options import echo_json, node_options
from cli.render import format_time
from cli.texts import signed_request
from ledger.keys import load_key

_KEY = click.option("--key", "key_file", required=True, envvar="CARECOIN_KEY", type=click.Path(dir_okay=False),
                    help="Key file that signs the request (env CARECOIN_KEY).")


def _stream(client: NodeClient, last_event_id: str | None) -> Iterator[dict[str, Any]]:
    """The frames of one ``GET /v1/events`` response: {"id", "event", "data"} (``carecoin.Client.events``)."""
    return client.events(last_event_id)  # keepalives come every 15 s; 60 s of silence is a dead stream


def _line(doc: dict[str, Any]) -> str:
    when = format_time(doc["time_ms"])
    fields = " ".join(f"{k}={(v[:16] + '…') if isinstance(v, str) and len(v) == 64 else v}"
                      for k, v in doc["fields"].items())
    return f"{when}  {doc['id']:<12} {doc['kind']:<20} {fields}"


@click.group("events")
def events_group() -> None:
    """Follow committed events as they happen (the ones your key may see)."""


@events_group.command("follow")
@_KEY
@click.option("--last-event-id", default=None, help="Resume after this event id (height:index:event).")
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after this many events.")
@node_options
@cli_errors
def follow(client: NodeClient, as_json: bool, key_file: str, last_event_id: str | None, count: int | None) -> None:
    """Print committed events as they are committed, one a line (--json: one JSON document a line).

    Example: carecoin events follow --key alice.key --last-event-id 120:0:3
    """
    client.sign_with(load_key(key_file))
    seen = 0
    while True:
        cut = None
        for frame in _stream(client, last_event_id):
            if frame.get("event") == "cut":
                cut = frame["data"]
                break
            doc = frame["data"]
            click.echo(json.dumps(doc, sort_keys=True) if as_json else _line(doc))
            last_event_id = doc["id"]
            seen += 1
            if count is not None and seen >= count:
                return
        if cut is None:
            raise click.ClickException(f"the node closed the stream; resume with --last-event-id {last_event_id}")
        click.echo(f"(cut by the node: {cut['reason']}; resuming after {cut['resume_from']})", err=True)
        last_event_id = cut["resume_from"]


@click.group("webhook")
def webhook_group() -> None:
    """Webhooks of your branch: every committed event your branch may read, POSTed to a URL."""


@webhook_group.command("add")
@_KEY
@click.option("--url", required=True, help="http:// or https:// URL that receives one POST per event.")
@node_options
@cli_errors
def webhook_add(client: NodeClient, as_json: bool, key_file: str, url: str) -> None:
    """Register a webhook for your branch (a branch admin's key). Prints the secret once: keep it.

    Example: carecoin webhook add --key branch-1/keys/admin.key --url https://crm.example/carecoin
    """
    doc = signed_request(client, key_file, "POST", "/v1/webhooks", {"url": url})
    if as_json:
        echo_json(doc)
        return
    click.echo(f"webhook {doc['id']} for branch {doc['branch']} -> {doc['url']}")
    click.echo(f"secret {doc['secret']}")
    click.echo("each POST carries X-Carecoin-Signature: v1=hex(HMAC-SHA256(secret, X-Carecoin-Timestamp + '.' + "
               "body)); X-Carecoin-Delivery is the same on every retry of one event")


@webhook_group.command("list")
@_KEY
@node_options
@cli_errors
def webhook_list(client: NodeClient, as_json: bool, key_file: str) -> None:
    """List your branch's webhooks (staff or branch admin key).

    Example: carecoin webhook list --key branch-1/keys/staff.key
    """
    doc = signed_request(client, key_file, "GET", "/v1/webhooks")
    if as_json:
        echo_json(doc)
        return
    if not doc["items"]:
        click.echo(f"branch {doc['branch']} has no webhooks")
    for h in doc["items"]:
        click.echo(f"{h['id']}  {h['url']}  at {h['cursor']}  dead letters: {h['dead_letters']}")


@webhook_group.command("remove")
@click.argument("hook_id")
@_KEY
@node_options
@cli_errors
def webhook_remove(client: NodeClient, as_json: bool, key_file: str, hook_id: str) -> None:
    """Delete a webhook of your branch (a branch admin's key).

    Example: carecoin webhook remove 3f9c0a1b2c3d4e5f --key branch-1/keys/admin.key
    """
    doc = signed_request(client, key_file, "DELETE", f"/v1/webhooks/{hook_id}")
    echo_json(doc) if as_json else click.echo(f"webhook {doc['deleted']} deleted")


@webhook_group.command("dead-letters")
@click.argument("hook_id")
@_KEY
@click.option("--redrive", is_flag=True, help="Try every dead letter again (a branch admin's key).")
@node_options
@cli_errors
def webhook_dead_letters(client: NodeClient, as_json: bool, key_file: str, hook_id: str, redrive: bool) -> None:
    """Show the events a webhook could not deliver; --redrive queues them again.

    Example: carecoin webhook dead-letters 3f9c0a1b2c3d4e5f --key branch-1/keys/admin.key --redrive
    """
    if redrive:
        doc = signed_request(client, key_file, "POST", f"/v1/webhooks/{hook_id}/dead-letters/redrive")
        echo_json(doc) if as_json else click.echo(f"{doc['redriven']} dead letters queued again")
        return
    doc = signed_request(client, key_file, "GET", f"/v1/webhooks/{hook_id}/dead-letters")
    if as_json:
        echo_json(doc)
        return
    click.echo(f"{len(doc['items'])} dead letters ({doc['redrive_queued']} queued again)")
    for d in doc["items"]:
        click.echo(f"{d['delivery_id']}  {d['event']['kind']}  {d['attempts']} attempts: {d['error']}")
