"""Free texts kept off chain: `carecoin text verify/show`, and the helpers `carecoin tx` uses for text options.

A text option of a transaction (``--content``, ``--reason``, ``--resolution``, ``--memo``, ``--comment``,
``--items``...) never puts the text on chain. The CLI draws a fresh 32-byte salt, puts
``H("carecoin/v1/text", salt || text)`` in the payload (``ledger.commitments``), and stores the text with its
salt in the node's vault (``POST /v1/vault/texts``, signed by the same ``--key`` as the tx) BEFORE it submits
the transaction: a transaction is never committed with a text nobody kept. The text belongs to (is encrypted
under the vault key of) the ticket's or order's customer when the transaction names an existing ticket or
order, else the payload's ``--customer``, else the sender.

    carecoin text show 5c1e... --key alice.key          # read a text back (customer, staff, compliance, auditor)
    carecoin text verify --commitment 5c1e... --salt 9a0b... --text "parcel arrived damaged"   # offline proof
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import click

from carecoin import NotFound
from cli.client import NodeClient
from cli.errors import CliError, cli_errors
from cli.options import echo_json, node_options, parse_id
from ledger.commitments import SALT_BYTES, TextError, compute_text_commitment, verify_text_commitment
from ledger.keys import load_key


@dataclass(frozen=True, slots=True)
class PendingText:
    """A text option turned into a commitment, to be stored in the vault before its tx is submitted."""

    field: str  # the payload field, e.g. content_hash
    kind: str  # e.g. ticket_message
    salt: bytes
    commitment: bytes
    text: str


def new_pending_text(field: str, kind: str, text: str, option: str) -> PendingText:
    """Commit to ``text`` under a fresh random salt; ``click.BadParameter`` for an empty or too long text."""
    salt = secrets.token_bytes(SALT_BYTES)
    try:
        commitment = compute_text_commitment(salt, text)
    except TextError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    return PendingText(field, kind, salt, commitment, text)


def signed_request(client: NodeClient, key_file: str, method: str, path: str, body: dict | None = None) -> dict:
    """Send a vault request signed by ``key_file`` (``NodeClient.request`` signs); refusals become one-line
    errors."""
    raw = b"" if body is None else json.dumps(body).encode()
    return client.request(method, path, data=raw, key=load_key(key_file))


CREATES = {"open-ticket": "ticket", "create-order": "order"}  # the kind of object each of these txs creates


def _get_or_none(client: NodeClient, what: str, ref: str) -> dict | None:
    """The ticket or order ``ref`` as the client's key reads it; None when the node says there is none (404). A
    refusal (403: not the signer's to read, whether or not it exists) stops the command: the key may not act
    on it either."""
    try:
        return client.ticket(ref) if what == "ticket" else client.order(ref)
    except NotFound:
        return None


def find_text_owner(client: NodeClient, values: dict[str, Any], sender: bytes,
                    kind: str = "") -> tuple[bytes, tuple[str, str]]:
    """(customer, about) of the texts of a tx with option ``values``, read from the node where needed.

    ``about`` is ("ticket", id) or ("order", id) when the tx names one (its branch's staff may then read the
    text), else ("", ""). The customer is the existing ticket's or order's customer, else ``--customer``,
    else the sender.
    """
    refs = [("ticket", values.get("ticket_id")), ("order", values.get("order_id"))]
    if values.get("target_kind") in ("ticket", "order"):
        refs.append((values["target_kind"], values.get("target_id")))
    refs = [(what, ref) for what, ref in refs if ref]
    for what, ref in refs:
        if what == CREATES.get(kind) and ref in (values.get("ticket_id"), values.get("order_id")):
            continue  # the object this tx creates: nothing to read yet
        doc = _get_or_none(client, what, ref)
        if doc is not None:
            return bytes.fromhex(doc["customer"]), (what, ref)
    about = refs[0] if refs else ("", "")  # a ticket or order this very tx creates
    customer = values.get("customer")
    return (parse_id(customer, "customer id") if customer else sender), about


def store_texts(client: NodeClient, key_file: str, values: dict[str, Any], texts: list[PendingText],
                quiet: bool, kind: str = "") -> None:
    """Store each pending text in the node's vault, signed by ``key_file`` (the tx's sender)."""
    customer, (about_kind, about_id) = find_text_owner(client, values, load_key(key_file).public_key, kind)
    for pending in texts:
        body = {"customer": customer.hex(), "commitment": pending.commitment.hex(), "salt": pending.salt.hex(),
                "text": pending.text, "kind": pending.kind}
        if about_kind:
            body[about_kind] = about_id
        signed_request(client, key_file, "POST", "/v1/vault/texts", body)
        if not quiet:
            click.echo(f"vault: {pending.kind} stored, commitment {pending.commitment.hex()}")


def read_text(client: NodeClient, key_file: str, commitment: str) -> dict:
    """The vault's text record of ``commitment``, checked here: its salt and text must open the commitment."""
    wanted = parse_id(commitment, "commitment")
    doc = signed_request(client, key_file, "GET", f"/v1/vault/texts/{wanted.hex()}")
    if not verify_text_commitment(wanted, bytes.fromhex(doc["salt"]), doc["text"]):
        raise CliError(f"the node's text for {wanted.hex()[:16]}… does not open the commitment: not trusted")
    return doc


# ---- commands ---------------------------------------------------------------------------------------------


@click.group("text")
def text_group() -> None:
    """Texts behind on-chain commitments (ticket messages, responses, reasons, memos): read, prove."""


@text_group.command("show")
@click.argument("commitment")
@click.option("--key", "key_file", required=True, envvar="CARECOIN_KEY", type=click.Path(dir_okay=False),
              help="The customer's key, or a staff, compliance or auditor key (signs the vault request).")
@node_options
@cli_errors
def text_show(client: NodeClient, as_json: bool, commitment: str, key_file: str) -> None:
    """Show the text behind COMMITMENT from the node's vault (checked against the commitment here)."""
    doc = read_text(client, key_file, commitment)
    if as_json:
        echo_json(doc)
        return
    for name in ("kind", "customer", "ticket", "order", "salt"):
        if name in doc:
            click.echo(f"{name:>10}: {doc[name]}")
    click.echo(f"{'text':>10}: {doc['text']}")


@text_group.command("verify")
@click.option("--commitment", required=True, help="The commitment on chain (64 hex digits).")
@click.option("--salt", required=True, help="The salt revealed with the text (64 hex digits).")
@click.option("--text", required=True, help="The text.")
@cli_errors
def text_verify(commitment: str, salt: str, text: str) -> None:
    """Prove offline what was said: SALT and TEXT must open COMMITMENT, H("carecoin/v1/text", salt || text)."""
    wanted = parse_id(commitment, "commitment")
    if not verify_text_commitment(wanted, parse_id(salt, "salt"), text):
        raise CliError(f"salt and text do NOT open commitment {wanted.hex()}")
    click.echo(f"ok: salt and text open commitment {wanted.hex()}")
