"""`carecoin gov`: governance by a quorum of distinct branches — propose, approve, show, list.

    carecoin gov propose grant-role --key admin.key --account ab12... --role staff --branch branch-2 --wait
    carecoin gov approve grant-role-1f2e3d4c --key ../branch-3/keys/admin.key --wait
    carecoin gov show grant-role-1f2e3d4c
    carecoin gov list --status open
    carecoin gov propose campaign --key admin.key --campaign-id welcome --trigger first_order --effect bonus \
        --amount 500 --budget 50000 --wait
    carecoin gov campaigns

``gov propose <action>`` is a thin wrapper over the ledger's ``propose-<action>`` kind: its options are the
kind's payload fields, generated from the kind's spec exactly as for ``carecoin tx`` (nothing is declared twice);
only the proposal id is optional here (a fresh ``<action>-<8 hex>`` when absent). With ``--wait`` the command
reads the proposal back and says what happened: still open (approvals so far of the quorum) or decided, and what
the decision did ("decided at height 42: staff role granted to ab12cd34… in branch-2"). A transaction refused by
a rule is committed as failed; the command then exits 1 naming the reason code and what it means.
"""

from __future__ import annotations

import dataclasses
import secrets
import types
from datetime import datetime, timezone
from typing import Any, Callable

import click

from cli.client import NodeClient, read_key_option
from cli.errors import CliError, cli_errors
from cli.options import echo_json, node_options
from cli.tx import compute_payload, next_nonce, payload_options, signed_tx_options
from ledger.keys import load_key
from ledger.process import KINDS, KindSpec
from ledger.reasons import BY_NAME
from ledger.tx import make_tx

PROPOSE = "propose-"
ALIASES = {"governance-quorum": "quorum"}  # the ledger's action name -> the CLI's
STATUSES = ("open", "expired", "decided")


def format_time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_refusal(reason: str) -> str:
    """``reason_code: what it means`` for a rule that refused a transaction."""
    known = BY_NAME.get(reason)
    return f"{reason}: {known.message}" if known else reason


def describe_outcome(doc: dict) -> str:
    """One line on where a proposal stands: decided (and what it did), open or expired."""
    if doc["status"] == "decided":
        return f"decided at height {doc['decided_height']}: {doc['decision']['summary']}"
    branches = ", ".join(a["branch"] for a in doc["approvals"] if a["counts"]) or "none"
    line = f"{doc['status']}: {doc['approval_count']} of {doc['quorum']} branches approved ({branches})"
    if doc["status"] == "open":
        line += f"; expires {format_time(doc['expires_at_ms'])}"
    return line


def echo_proposal(doc: dict) -> None:
    """The human form of a proposal document."""
    click.echo(f"proposal {doc['proposal_id']} ({doc['action']}): {doc['summary']}")
    click.echo(f"  proposed by {doc['proposer'][:8]}… of {doc['proposer_branch']} at {format_time(doc['created_at_ms'])}")
    for a in doc["approvals"]:
        note = "" if a["counts"] else " (branch removed since: does not count)"
        click.echo(f"  approved by {a['branch']} ({a['approver'][:8]}…){note}")
    click.echo(f"  {describe_outcome(doc)}")


def send(client: NodeClient, kind: str, payload: list, proposal_id: str, key_file: str,
         second_key_file: str | None, nonce: int | None, wait: bool, timeout_s: float, as_json: bool) -> None:
    """Sign and submit a governance transaction; with ``wait``, report where the proposal stands (exit 1 if a
    rule refused the transaction)."""
    key = load_key(key_file)
    client.sign_with(key)  # the sender reads its own nonce and tx status
    extra = (load_key(second_key_file),) if second_key_file else ()
    chain_id = client.chain_id()
    nonce = next_nonce(client, key.public_key) if nonce is None else nonce
    tx = make_tx(chain_id, kind, key, nonce, payload, *extra)
    answer = client.submit_tx(tx)
    doc: dict[str, Any] = {"tx_hash": tx.tx_hash.hex(), "kind": kind, "nonce": nonce, "proposal_id": proposal_id,
                           "status": answer.get("status", "pending")}
    if not wait:
        if as_json:
            echo_json(doc)
        else:
            click.echo(f"{kind} {proposal_id}: tx {doc['tx_hash']} pending; see `carecoin gov show {proposal_id}`")
        return
    doc.update(client.wait(tx.tx_hash.hex(), timeout_s))
    refused = doc.get("outcome") == "failed"
    if not refused:
        doc["proposal"] = client.proposal(proposal_id)
    if as_json:
        echo_json(doc)
    if refused:
        raise CliError(f"{kind} {proposal_id} refused at height {doc['height']}: {describe_refusal(doc['reason'])}"
                       + (f" — {doc['detail']}" if doc.get("detail") else ""))
    if not as_json:
        click.echo(f"{kind} {proposal_id} committed at height {doc['height']} (tx {doc['tx_hash'][:16]}…)")
        click.echo(describe_outcome(doc["proposal"]))


@click.group("gov")
def gov_group() -> None:
    """Governance: roles, policy, validators, the training catalogue and the quorum change only when admins of
    a quorum of distinct branches approve the same proposal.

    \b
    Example:
      carecoin gov propose grant-role --key admin.key --account ab12... --role staff --branch branch-2 --wait
      carecoin gov approve grant-role-1f2e3d4c --key other-branch-admin.key --wait
    """


@gov_group.group("propose")
def propose_group() -> None:
    """Open a proposal (you are a branch admin; your branch's approval counts at once)."""


def make_propose_command(action: str, spec: KindSpec) -> click.Command:
    """``carecoin gov propose <action>`` from the ``propose-<action>`` kind's spec (the id made optional)."""
    id_field = spec.fields[0]
    optional_id = dataclasses.replace(id_field, default="", help=f"{id_field.help} Default: {action}-<8 random hex>.")
    shown = types.SimpleNamespace(fields=(optional_id, *spec.fields[1:]))

    def command(client: NodeClient, as_json: bool, key_file: str, second_key_file: str | None, nonce: int | None,
                wait: bool, timeout_s: float, **values: Any) -> None:
        values[id_field.name] = values[id_field.name] or f"{action}-{secrets.token_hex(4)}"
        payload = compute_payload(spec, values)
        send(client, spec.name, payload, values[id_field.name], key_file, second_key_file, nonce, wait, timeout_s,
             as_json)

    command.__name__ = f"propose_{action.replace('-', '_')}"
    func: Callable = cli_errors(command)
    func = node_options(func)
    func = signed_tx_options(func)
    for decorator in reversed(payload_options(shown)):
        func = decorator(func)
    return click.command(action, help=f"{spec.help}\n\nSent by: {spec.senders}. Same as `carecoin tx {spec.name}`.")(func)


for _name, _spec in KINDS.items():
    if _name.startswith(PROPOSE):
        _action = _name.removeprefix(PROPOSE)
        propose_group.add_command(make_propose_command(ALIASES.get(_action, _action), _spec))


@gov_group.command("approve")
@click.argument("proposal_id")
@signed_tx_options
@node_options
@cli_errors
def approve(client: NodeClient, as_json: bool, key_file: str, second_key_file: str | None, nonce: int | None,
            wait: bool, timeout_s: float, proposal_id: str) -> None:
    """Approve proposal PROPOSAL_ID for your branch; the approval reaching the quorum decides it."""
    spec = KINDS["approve-proposal"]
    payload = compute_payload(spec, {spec.fields[0].name: proposal_id})
    send(client, spec.name, payload, proposal_id, key_file, second_key_file, nonce, wait, timeout_s, as_json)


@gov_group.command("show")
@click.argument("proposal_id")
@node_options
@read_key_option
@cli_errors
def show(client: NodeClient, as_json: bool, proposal_id: str) -> None:
    """Show a proposal: what it asks, who proposed and approved it, the quorum, and what the decision did."""
    doc = client.proposal(proposal_id)
    if as_json:
        echo_json(doc)
    else:
        echo_proposal(doc)


@gov_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only proposals of this status.")
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True, help="At most this many.")
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Skip this many.")
@node_options
@read_key_option
@cli_errors
def list_proposals(client: NodeClient, as_json: bool, status: str | None, limit: int, offset: int) -> None:
    """List proposals: open first, then expired, then decided (newest first in each)."""
    doc = client.proposals(status, offset, limit)
    if as_json:
        echo_json(doc)
        return
    if not doc["items"]:
        click.echo("no proposals")
    for p in doc["items"]:
        what = (f"at height {p['decided_height']}: {p['decision']['summary']}" if p["status"] == "decided"
                else p["summary"])
        click.echo(f"{p['proposal_id']:<24} {p['status']:<8} {p['approval_count']}/{p['quorum']}  {what}")
    if doc["next_offset"] is not None:
        click.echo(f"... {doc['total'] - doc['next_offset']} more: --offset {doc['next_offset']}")


@gov_group.command("campaigns")
@node_options
@read_key_option
@cli_errors
def list_campaigns(client: NodeClient, as_json: bool) -> None:
    """List the active campaigns: trigger, effect, conditions, and how much of the budget is left."""
    doc = client.campaigns()
    if as_json:
        echo_json(doc)
        return
    if not doc["items"]:
        click.echo("no active campaigns")
    for c in doc["items"]:
        only = ", ".join(f"{name} {c[name]}" for name in ("branch", "currency", "min_amount", "min_tier") if c[name])
        click.echo(f"{c['campaign_id']:<20} on {c['trigger']:<15} {c['effect']} {c['amount']}  "
                   f"budget {c['remaining']} of {c['budget']} left, {c['per_customer']} per customer"
                   + (f"; only {only}" if only else ""))
