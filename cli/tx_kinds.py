"""`carecoin tx <kind>` for every transaction kind beyond mint and transfer (those live in ``cli.tx``).

Each command is generated from one row of ``KIND_FIELDS``: the kind and its payload fields in order, each
field an option named after it (``ticket_id`` -> ``--ticket-id``). Field types:

- ``account``: 64 hex digits, checked before signing;
- ``int`` / ``str``: as given (rule checks are the ledger's: a refused rule commits as a failed result
  with a reason, which is itself a signed proof of the decision);
- ``hash``: text hashed client-side into the 32-byte field, ``--content "text"`` ->
  ``H("carecoin/v1/content", text)``; or give the hash itself with ``--content-hash HEX``;
- ``bytes32``: 64 hex digits (a commitment, a second-factor public key);
- ``policy``: the value of ``set-policy``, parsed as an int when the parameter is an int parameter.

Example:
    carecoin tx open-ticket --key alice.key --ticket-id T1 --category complaint --priority 2 \\
        --order-id O1 --content "parcel arrived damaged" --wait
"""

from __future__ import annotations

from typing import Any, Callable

import click

from cli import tx as tx_module
from cli.errors import cli_errors
from cli.options import node_options
from cli.tx import signed_tx_options, tx_group
from ledger.context import DEFAULT_POLICY
from ledger.hashing import H
from ledger.keys import parse_public_key

TAG_CONTENT = "carecoin/v1/content"

# kind -> (help, [(field, type, default or None = required)]) in payload order.
KIND_FIELDS: dict[str, tuple[str, list[tuple[str, str, Any]]]] = {
    "set-policy": ("Change one policy parameter (branch admin); every version stays visible.",
                   [("name", "str", None), ("value", "policy", None)]),
    "grant-role": ("Give an account a role (branch-admin, staff, issuer, compliance) in a branch (branch admin).",
                   [("account", "account", None), ("role", "str", None), ("branch", "str", None)]),
    "revoke-role": ("Take a role away from an account (branch admin).",
                    [("account", "account", None), ("role", "str", None)]),
    "register-customer": ("Register a customer with a KYC level and the commitment of their personal data (staff). "
                          "See `carecoin customer register` to store the data in the vault first.",
                          [("customer", "account", None), ("kyc_level", "int", None), ("commitment", "bytes32", None)]),
    "set-second-factor": ("Register (or replace) the sender's second-factor public key.",
                          [("second_key", "bytes32", None)]),
    "erase-customer-data": ("Erase a customer's personal data: the branch vaults delete its key (staff or the "
                            "customer).", [("customer", "account", None)]),
    "freeze-account": ("Freeze an account with a reason code (compliance).",
                       [("account", "account", None), ("reason_code", "str", None)]),
    "unfreeze-account": ("Lift an account's freeze with a reason code (compliance).",
                         [("account", "account", None), ("reason_code", "str", None)]),
    "buy-privilege": ("Spend coins on a privilege: priority or vip (customer).", [("privilege", "str", None)]),
    "issue-coupon": ("Issue a coupon of a campaign: fiat value, expiry, per-customer limit, total copies.",
                     [("coupon_id", "str", None), ("campaign", "str", None), ("value", "int", None),
                      ("expires_at_ms", "int", None), ("per_customer_limit", "int", 1), ("total", "int", 1)]),
    "redeem-coupon": ("Redeem a coupon on one of your unpaid orders (customer).",
                      [("coupon_id", "str", None), ("order_id", "str", None)]),
    "create-order": ("Create an order for a registered customer (staff).",
                     [("order_id", "str", None), ("customer", "account", None), ("fiat_amount", "int", None),
                      ("currency", "str", "EUR"), ("items_hash", "hash", "")]),
    "pay-order": ("Pay your order: COINS in coins (up to the policy share), the rest in fiat (customer).",
                  [("order_id", "str", None), ("coins", "int", 0)]),
    "confirm-order": ("Confirm a paid order; the customer earns coins (staff).", [("order_id", "str", None)]),
    "request-refund": ("Refund an order inside the refund window (customer or staff).",
                       [("order_id", "str", None), ("reason", "str", "")]),
    "open-ticket": ("Open a ticket: complaint, inquiry or suggestion, priority 1-3, optionally on an order.",
                    [("ticket_id", "str", None), ("category", "str", None), ("priority", "int", 2),
                     ("order_id", "str", ""), ("content_hash", "hash", None)]),
    "assign-ticket": ("Assign a ticket to a staff member (staff or branch admin).",
                      [("ticket_id", "str", None), ("staff", "account", None)]),
    "respond-ticket": ("Respond to a ticket (staff); the first response fixes the first-response time.",
                       [("ticket_id", "str", None), ("content_hash", "hash", None)]),
    "resolve-ticket": ("Resolve a ticket (staff).", [("ticket_id", "str", None), ("resolution_hash", "hash", None)]),
    "reopen-ticket": ("Reopen your resolved ticket (customer).", [("ticket_id", "str", None), ("reason", "str", "")]),
    "close-ticket": ("Close a ticket for good (its customer or staff).", [("ticket_id", "str", None)]),
    "compensate": ("Pay coins on a complaint ticket, capped per ticket by policy (staff).",
                   [("ticket_id", "str", None), ("amount", "int", None)]),
    "submit-feedback": ("Rate a resolved ticket or a confirmed order 1-5; rewarded once (customer).",
                        [("target_kind", "str", None), ("target_id", "str", None), ("rating", "int", None),
                         ("comment_hash", "hash", "")]),
    "record-training": ("Record a completed training course; rewards the staff member once (branch admin).",
                        [("staff", "account", None), ("course_id", "str", None)]),
}


def compute_content_hash(text: str) -> bytes:
    """The 32-byte hash a text field becomes on chain: ``H("carecoin/v1/content", utf-8 text)``."""
    return H(TAG_CONTENT, text.encode())


def _option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _hash_text_field(field: str) -> str:
    return field.removesuffix("_hash")


def parse_policy_value(name: str, text: str) -> int | str:
    """The value of ``set-policy NAME``: an int for int parameters (the ledger checks the rest)."""
    default = DEFAULT_POLICY.get(name)
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise click.BadParameter(f"{name} takes an integer, got {text!r}", param_hint="--value") from None
    return text


def compute_payload(kind: str, values: dict[str, Any]) -> list:
    """Build the payload of ``kind`` from the command's option values, in field order."""
    payload: list = []
    for field, ftype, default in KIND_FIELDS[kind][1]:
        if ftype == "hash":
            text, hex_value = values.get(_hash_text_field(field)), values.get(field)
            if text is not None and hex_value is not None:
                raise click.UsageError(f"give {_option_name(_hash_text_field(field))} or {_option_name(field)}, "
                                       "not both")
            if hex_value is not None:
                payload.append(parse_public_key(hex_value, field.replace("_", " ")))
            elif text is not None or default is not None:
                payload.append(compute_content_hash(text if text is not None else default))
            else:
                raise click.UsageError(f"missing {_option_name(_hash_text_field(field))} TEXT "
                                       f"(or {_option_name(field)} HEX)")
        elif ftype in ("account", "bytes32"):
            payload.append(parse_public_key(values[field], field.replace("_", " ")))
        elif ftype == "policy":
            payload.append(parse_policy_value(values["name"], values[field]))
        else:
            payload.append(values[field])
    return payload


def _options(kind: str) -> list[Callable]:
    """The click options of ``kind``'s payload fields."""
    decorators = []
    for field, ftype, default in KIND_FIELDS[kind][1]:
        name = _option_name(field)
        required = default is None
        if ftype == "hash":
            text = _hash_text_field(field)
            decorators.append(click.option(_option_name(text), text, default=None,
                                           help=f"{text.replace('_', ' ')} text, hashed client-side into {field}"))
            decorators.append(click.option(name, field, default=None, help=f"{field} as 64 hex digits"))
        elif ftype == "account":
            decorators.append(click.option(name, field, required=True, help=f"{field} account id (64 hex digits)"))
        elif ftype == "bytes32":
            # ``--second-key`` is the co-signing key file of every tx command: this field is a public key
            opt = "--second-public-key" if field == "second_key" else name
            decorators.append(click.option(opt, field, required=True, help=f"{field} (64 hex digits)"))
        elif required:  # no ``default=`` at all: this click counts an explicit None as a given default
            decorators.append(click.option(name, field, type=int if ftype == "int" else str, required=True))
        else:
            decorators.append(click.option(name, field, type=int if ftype == "int" else str, default=default,
                                           show_default=default != ""))
    return decorators


def make_command(kind: str) -> click.Command:
    """Build ``carecoin tx <kind>`` from its ``KIND_FIELDS`` row."""
    help_text, _ = KIND_FIELDS[kind]

    def command(client: Any, as_json: bool, key_file: str, second_key_file: str | None, nonce: int | None,
                wait: bool, timeout_s: float, **values: Any) -> None:
        payload = compute_payload(kind, values)
        tx_module.submit(client, kind, payload, key_file, second_key_file, nonce, wait, timeout_s, as_json)

    command.__name__ = kind.replace("-", "_")
    command.__doc__ = help_text
    func: Callable = cli_errors(command)
    func = node_options(func)
    func = signed_tx_options(func)
    for decorator in reversed(_options(kind)):
        func = decorator(func)
    return click.command(kind, help=help_text)(func)


def register(group: click.Group = tx_group) -> None:
    """Add every kind's command to the ``tx`` group (idempotent)."""
    for kind in KIND_FIELDS:
        if kind not in group.commands:
            group.add_command(make_command(kind))


register()
