"""`carecoin tx <kind>`: build, sign and submit transactions to a node; one command per ledger kind.

Every ``carecoin tx <kind>`` command is GENERATED from the kind's ``KindSpec`` (``ledger.process.KINDS``):
its help, and one option per payload field in payload order, named after the field (``ticket_id`` ->
``--ticket-id``) with the field's help and CLI default. A field's type decides its input:

- ``Account`` / ``Bytes32``: 64 hex digits, checked before signing;
- ``Amount`` / ``Int``: an integer; ``Id`` / ``Text``: text, as given (rules are the ledger's: a refused rule
  commits as a failed result with a reason, which is itself a signed proof of the decision);
- ``ContentHash``: a free text, never put on chain: ``--content "text"`` for the field ``content_hash``
  becomes a salted commitment ``H("carecoin/v1/text", salt || text)`` (fresh 32-byte salt) in the payload,
  and the text with its salt is stored in the node's vault, signed by ``--key``, BEFORE the tx is submitted
  (``cli.texts``); or the commitment itself with ``--content-hash HEX`` (a client that keeps its texts
  elsewhere). An optional text left out is ``NO_TEXT`` (32 zero bytes);
- ``PolicyValue`` (``propose-set-policy --value``): an int when the parameter is an int parameter, else text.

The sender's nonce is read from the node (state nonce + transactions of this sender still pending) unless
``--nonce`` is given; ``--wait`` blocks until the transaction is committed and prints its height and result.

Example:
    carecoin tx open-ticket --key alice.key --ticket-id T1 --category complaint --priority 2 \\
        --order-id O1 --content "parcel arrived damaged" --wait
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import click

from cli.client import NodeClient, read_key_option
from cli.errors import EXIT_CODES_HELP, EXIT_REFUSED, cli_errors
from cli.options import echo_json, node_options, parse_id
from cli.texts import PendingText, new_pending_text, store_texts
from ledger.commitments import NO_TEXT, compute_text_kind
from ledger.context import DEFAULT_POLICY
from ledger.keys import KeyPair, load_key
from ledger.process import KINDS, KindSpec
from ledger.process.payload import REQUIRED, FieldSpec


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
    doc = client.account(account)
    return int(doc.get("next_nonce", int(doc.get("nonce", 0)) + 1))


def submit(client: NodeClient, kind: str, payload: list, key_file: str, second_key_file: str | None,
           nonce: int | None, wait: bool, timeout_s: float, as_json: bool) -> dict:
    """Sign ``payload`` as a ``kind`` transaction, submit it, optionally wait, and print the outcome; a tx a rule
    refused (committed as failed) prints the rule's message and exits 1."""
    key: KeyPair = load_key(key_file)
    client.sign_with(key)  # the sender reads its own nonce and tx status
    extra = [load_key(second_key_file)] if second_key_file else []
    doc: dict = dict(client.submit(kind, payload, key, nonce, extra))
    if wait:
        doc.update(client.wait(doc["tx_hash"], timeout_s))
    if as_json:
        echo_json(doc)
    else:
        echo_tx(doc)
    exit_if_refused(doc)
    return doc


def echo_tx(doc: dict) -> None:
    """One line for a tx: kind, hash, nonce, where it stands; for a refused one the rule and its message."""
    what = f"{doc.get('kind', 'tx')} {doc['tx_hash']}" + (f" nonce {doc['nonce']}" if "nonce" in doc else "")
    if doc.get("status") == "committed":
        at = f"at height {doc['height']}"
        if doc.get("outcome") == "failed":
            click.echo(f"{what}: REFUSED {at} by rule {doc.get('reason')}: {doc.get('detail') or '-'}")
        else:
            click.echo(f"{what}: committed {at}, applied")
    elif doc.get("status") == "evicted":
        click.echo(f"{what}: evicted ({doc.get('reason', '-')}: {doc.get('detail', '-')}) — never committed")
    else:
        click.echo(f"{what}: {doc.get('status', 'pending')}" + (" (add --wait to wait for the block)"
                                                                 if doc.get("status") == "pending" else ""))


def exit_if_refused(doc: dict) -> None:
    """Exit 1 (``cli.errors.EXIT_REFUSED``) when the tx committed as failed or was evicted."""
    if doc.get("outcome") == "failed" or doc.get("status") == "evicted":
        raise click.exceptions.Exit(EXIT_REFUSED)


@click.group("tx")
def tx_group() -> None:
    """Build, sign and submit transactions.

    \b
    Example:
      carecoin tx transfer --key alice.key --to 3f2a... --amount 250 --wait

    A tx a rule refuses still commits (as failed, a signed proof of the decision): the command prints the rule
    and its message and exits 1. Exit codes: 0 committed and applied (or submitted, without --wait);
    1 refused by a rule or evicted; 2 usage; 3 node unreachable or API error.
    """


# --- commands generated from the ledger's kind specs ----------------------------------------------------------


def parse_policy_value(name: str, text: str) -> int | str:
    """The value of ``propose-set-policy NAME``: an int for int parameters (the ledger checks the rest)."""
    default = DEFAULT_POLICY.get(name)
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise click.BadParameter(f"{name} takes an integer, got {text!r}", param_hint="--value") from None
    return text


def _text_option(field: FieldSpec) -> tuple[str, str]:
    """(option, parameter) of the text a ContentHash field commits to: content_hash -> --content."""
    base = field.name.removesuffix("_hash")
    return "--" + base.replace("_", "-"), base


def compute_payload(spec: KindSpec, values: dict[str, Any]) -> list:
    """Build the payload of ``spec``'s kind from option values, for callers that store no texts (``cli.gov``):
    a text option is refused (``--<name>-hash HEX`` and left-out optional texts are fine)."""
    payload, texts = compute_payload_and_texts(spec, values)
    if texts:
        option = "--" + texts[0].field.replace("_", "-")
        raise click.UsageError(f"{spec.name} takes no text here: give {option} HEX, or use `carecoin tx {spec.name}`")
    return payload


def compute_payload_and_texts(spec: KindSpec, values: dict[str, Any]) -> tuple[list, list[PendingText]]:
    """Build the payload of ``spec``'s kind from the command's option values, in field order, and the texts
    (salted commitments already in the payload) that must be stored in the vault before it is submitted."""
    payload: list = []
    texts: list[PendingText] = []
    for field in spec.fields:
        cli, value = field.scalar.cli, values.get(field.name)
        if cli == "hash":
            option, base = _text_option(field)
            text = values.get(base)
            if text is not None and value is not None:
                raise click.UsageError(f"give {option} or {field.option}, not both")
            if value is not None:
                payload.append(parse_id(value, field.name.replace("_", " ")))
            elif text:
                texts.append(new_pending_text(field.name, compute_text_kind(spec.name, field.name), text, option))
                payload.append(texts[-1].commitment)
            elif field.default is not REQUIRED:
                payload.append(NO_TEXT)
            else:
                raise click.UsageError(f"missing {option} TEXT (or {field.option} HEX)")
        elif cli in ("account", "bytes32"):
            payload.append(parse_id(value, field.name.replace("_", " ")))
        elif cli == "policy":
            payload.append(parse_policy_value(values["name"], value))
        else:
            payload.append(value)
    return payload, texts


def payload_options(spec: KindSpec) -> list[Callable]:
    """The click options of ``spec``'s payload fields, in field order."""
    decorators = []
    for field in spec.fields:
        cli, required = field.scalar.cli, field.default is REQUIRED
        if cli == "hash":
            option, base = _text_option(field)
            decorators.append(click.option(option, base, default=None,
                                           help=f"{field.help}, as text: kept in the node's vault, only a salted "
                                                f"commitment goes on chain ({field.name})."
                                                + (f"  [required: this or {field.option}]" if required else "")))
            decorators.append(click.option(field.option, field.name, default=None,
                                           help=f"{field.name} as 64 hex digits (a commitment to a text kept "
                                                "elsewhere)."))
            continue
        kind: Any = str
        if cli == "int":
            kind = int if field.cli_min is None else click.IntRange(min=field.cli_min)
        if required:  # no ``default=`` at all: click counts an explicit None as a given default
            decorators.append(click.option(field.option, field.name, type=kind, required=True, help=field.help))
        else:
            decorators.append(click.option(field.option, field.name, type=kind, default=field.default,
                                           show_default=field.default != "", help=field.help))
    return decorators


def make_command(spec: KindSpec) -> click.Command:
    """Build ``carecoin tx <kind>`` from the kind's spec."""

    def command(client: NodeClient, as_json: bool, key_file: str, second_key_file: str | None, nonce: int | None,
                wait: bool, timeout_s: float, **values: Any) -> None:
        payload, texts = compute_payload_and_texts(spec, values)
        client.sign_with(key_file)  # the sender reads its own nonce, tickets and tx status
        if texts:  # kept before the tx exists: a commitment on chain always has its text in a vault
            store_texts(client, key_file, values, texts, quiet=as_json, kind=spec.name)
        submit(client, spec.name, payload, key_file, second_key_file, nonce, wait, timeout_s, as_json)

    command.__name__ = spec.name.replace("-", "_")
    command.__doc__ = spec.help
    func: Callable = cli_errors(command)
    func = node_options(func)
    func = signed_tx_options(func)
    for decorator in reversed(payload_options(spec)):
        func = decorator(func)
    return click.command(spec.name, help=f"{spec.help}\n\nSent by: {spec.senders}.\n\n"
                                        f"\b\nExample:\n  {example(spec)}\n\n{EXIT_CODES_HELP}")(func)


def example(spec: KindSpec) -> str:
    """A command line of ``spec``'s kind with every required option (placeholders in capitals)."""
    parts = [f"carecoin tx {spec.name} --key SENDER.key"]
    for field in spec.fields:
        if field.default is not REQUIRED:
            continue
        cli = field.scalar.cli
        if cli == "hash":
            parts.append(f'{_text_option(field)[0]} "TEXT"')
        elif cli in ("account", "bytes32"):
            parts.append(f"{field.option} HEX64")
        elif cli == "int":
            parts.append(f"{field.option} 1")
        else:
            parts.append(f"{field.option} {field.name.upper()}")
    return " ".join(parts + ["--wait"])


def register(group: click.Group) -> None:
    """Add every ledger kind's command to ``group`` (idempotent)."""
    for name, spec in KINDS.items():
        if name not in group.commands:
            group.add_command(make_command(spec))


@tx_group.command("status")
@click.argument("tx_hash")
@node_options
@read_key_option
@cli_errors
def status(client: NodeClient, as_json: bool, tx_hash: str) -> None:
    """Show a transaction's status: pending, committed (applied, or refused by a rule with its message),
    evicted. Exits 1 when it was refused or evicted.

    \b
    Example:
      carecoin tx status 9c1f... --key alice.key
    """
    doc = dict(client.tx_status(tx_hash))
    if as_json:
        echo_json(doc)
    else:
        echo_tx(doc)
    exit_if_refused(doc)


register(tx_group)
