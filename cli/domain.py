"""Domain reads and helpers: `ticket show`, `order show`, `policy show`, `report`, `customer register/show/data`,
and `account coin/proof/verify-proof` (added to the `account` group of ``cli.query``).

    carecoin ticket show T1 --json
    carecoin policy show --version 0
    carecoin report --branch north --since 2026-11-01
    carecoin customer register --key staff.key --customer 3f2a... --kyc-level 1 --name "Ann" --email a@x.org --wait
    carecoin account proof 3f2a... -o proof.json && carecoin account verify-proof proof.json --genesis genesis.json
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import click

from carecoin import ApiError
from cli import tx as tx_module
from cli.client import NodeClient, read_key_option
from cli.errors import CliError, cli_errors
from cli.options import echo_json, node_options, parse_id
from cli.render import echo_fields, format_coins, format_fiat, format_policy_value
from cli.query import account_group
from cli.texts import read_text
from ledger.genesis import load_genesis

from ledger.state_proof import verify_state_proof

MAX_PROOF_FILE = 1024 * 1024


def _echo_doc(doc: dict, as_json: bool) -> None:
    if as_json:
        echo_json(doc)
        return
    echo_fields(doc)


# ---- ticket / order / policy / report -------------------------------------------------------------------


@click.group("ticket")
def ticket_group() -> None:
    """Tickets: state, category, priority, SLA times."""


@ticket_group.command("show")
@click.argument("ticket_id")
@click.option("--key", "key_file", default=None, envvar="CARECOIN_KEY", type=click.Path(dir_okay=False),
              help="The customer's or a staff key (or an auditor's): signs the read and also shows the texts "
                   "(message, response, resolution) from the node's vault (env CARECOIN_KEY).")
@node_options
@cli_errors
def ticket_show(client: NodeClient, as_json: bool, ticket_id: str, key_file: str | None) -> None:
    """Show a ticket: state, category, priority, assignee, first-response and resolution times (and with
    --key its texts, checked against their on-chain commitments)."""
    if key_file:
        client.sign_with(key_file)
    doc = client.ticket(ticket_id)
    texts: dict[str, str] = {}
    for name in ("content_hash", "last_response_hash", "resolution_hash") if key_file else ():
        commitment = doc.get(name) or ""
        if len(commitment) == 64 and commitment != "00" * 32:
            try:
                texts[name.removesuffix("_hash")] = read_text(client, key_file, commitment)["text"]
            except (ApiError, click.ClickException) as exc:  # erased (410), on another node (404), not opening
                texts[name.removesuffix("_hash")] = f"({exc})"
    if key_file:
        doc["texts"] = texts
    if as_json:
        echo_json(doc)
        return
    _echo_doc({k: v for k, v in doc.items() if k != "texts"} | {f"text {k}": v for k, v in texts.items()}, False)


@click.group("order")
def order_group() -> None:
    """Orders: amounts, coins paid, earned, refund."""


@order_group.command("show")
@click.argument("order_id")
@node_options
@read_key_option
@cli_errors
def order_show(client: NodeClient, as_json: bool, order_id: str) -> None:
    """Show an order: status, fiat amount, coins paid, coins earned, refund."""
    _echo_doc(client.order(order_id), as_json)


@click.group("policy")
def policy_group() -> None:
    """The on-chain policy and its versions."""


@policy_group.command("show")
@click.option("--version", "version", type=click.IntRange(min=0), default=None,
              help="A past version (0 = genesis); default: the current one.")
@node_options
@read_key_option
@cli_errors
def policy_show(client: NodeClient, as_json: bool, version: int | None) -> None:
    """Show every policy parameter at a version, and the list of changes."""
    doc = client.policy(version)
    if as_json:
        echo_json(doc)
        return
    click.echo(f"policy version {doc['version']} (current {doc['current_version']})")
    base = doc["policy"].get("base_currency")
    for name, value in doc["policy"].items():
        click.echo(f"{name:>35}: {format_policy_value(name, value, base)}")
    for change in doc["changes"]:
        name = change["name"]
        click.echo(f"  v{change['version']} at height {change['height']}: {name} "
                   f"{format_policy_value(name, change['previous'], base)} -> "
                   f"{format_policy_value(name, change['value'], base)}")


def parse_time_ms(text: str | None, what: str) -> int | None:
    """Milliseconds since the epoch from an integer or an ISO 8601 date/time (UTC when no zone is given)."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"expected ms since the epoch or an ISO date such as 2026-11-01, got {text!r}",
                                 param_hint=what) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


@click.command("report")
@click.option("--branch", default=None, help="One branch (default: all).")
@click.option("--since", default=None, help="From this block time: ms or ISO date/time (UTC).")
@click.option("--until", default=None, help="Before this block time: ms or ISO date/time (UTC).")
@node_options
@read_key_option
@cli_errors
def report(client: NodeClient, as_json: bool, branch: str | None, since: str | None, until: str | None) -> None:
    """Analytics: coins minted/earned/redeemed/expired/compensated, orders, fiat in the base currency, tickets,
    SLA times and breaches, ratings; coins and debt outstanding now."""
    doc = client.report(branch, parse_time_ms(since, "--since"), parse_time_ms(until, "--until"))
    if as_json:
        echo_json(doc)
        return
    click.echo(f"report for {doc['branch'] or 'all branches'} (blocks up to {doc['indexed_height']})")
    click.echo("  coins:   " + ", ".join(f"{k} {v}" for k, v in doc["coins"].items()))
    click.echo("  orders:  " + ", ".join(f"{k} {v}" for k, v in doc["orders"].items()))
    f = doc["fiat"]
    base = f["base_currency"]
    click.echo(f"  fiat (totals in {base}, each order at its own rate): "
               + ", ".join(_fiat_flow(flow, f[flow], base) for flow in ("ordered", "paid", "confirmed", "refunded")))
    o = doc["outstanding"]
    click.echo(f"  outstanding at height {o['height']} (all branches): {format_coins(o['coins'])}, worth "
               f"{format_fiat(o['value_minor'], o['base_currency'])} (the company's liability); debt owed "
               f"{format_coins(o['debt'])} ({format_fiat(o['debt_value_minor'], o['base_currency'])})")
    t = doc["tickets"]
    click.echo(f"  tickets: {t['total']} — " + ", ".join(f"{k} {v}" for k, v in t["by_state"].items() if v)
               + " | " + ", ".join(f"{k} {v}" for k, v in t["by_category"].items() if v))
    click.echo(f"  mean first response {_ms(t['mean_first_response_ms'])}, mean resolution "
               f"{_ms(t['mean_resolution_ms'])}")
    b = t["sla_breaches"]
    click.echo(f"  SLA breaches: {b['total']} (first response {b['first_response']}, resolution {b['resolution']}),"
               f" {b['compensated']} coins compensated automatically")
    r = doc["ratings"]
    click.echo(f"  ratings: {r['count']}, average {r['average'] if r['average'] is not None else '-'}")


def _fiat_flow(flow: str, doc: dict, base: str) -> str:
    """``paid EUR 142.00 (EUR 50.00, USD 100.00)``: the base-currency total, then each currency's own amount."""
    each = ", ".join(format_fiat(amount, currency) for currency, amount in doc["by_currency"].items())
    return f"{flow} {format_fiat(doc['base_minor'], base)}" + (f" ({each})" if each else "")


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value / 1000:.1f} s"


# ---- customers ---------------------------------------------------------------------------------------------


@click.group("customer")
def customer_group() -> None:
    """Customers: register (personal data into the branch vault), on-chain record, vault data."""


@customer_group.command("register")
@click.option("--customer", required=True, help="The customer's account id (64 hex digits).")
@click.option("--kyc-level", type=click.IntRange(0, 2), default=0, show_default=True,
              help="Identity checks done: 0 none, 1 basic, 2 full (higher levels have higher daily limits).")
@click.option("--name", default=None, help="Personal data: full name.")
@click.option("--email", default=None, help="Personal data: email address.")
@click.option("--phone", default=None, help="Personal data: phone number.")
@click.option("--field", "fields", multiple=True, metavar="NAME=VALUE", help="More personal data (repeatable).")
@tx_module.signed_tx_options
@node_options
@cli_errors
def customer_register(client: NodeClient, as_json: bool, customer: str, kyc_level: int, name: str | None,
                      email: str | None, phone: str | None, fields: tuple[str, ...], key_file: str,
                      second_key_file: str | None, nonce: int | None, wait: bool, timeout_s: float) -> None:
    """Store a customer's personal data in the node's vault, then register them on chain with its commitment.

    The data never goes on chain: only H(salt || data). The staff key signs both the vault request and the tx.
    """
    account = parse_id(customer, "customer id")
    data = {k: v for k, v in (("name", name), ("email", email), ("phone", phone)) if v is not None}
    for item in fields:
        k, sep, v = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--field")
        data[k] = v
    if not data:
        raise click.UsageError("give at least one of --name, --email, --phone or --field")
    stored = client.sign_with(key_file).store_customer_data(account, data)
    payload = [account, kyc_level, bytes.fromhex(stored["commitment"])]
    if not as_json:
        click.echo(f"vault: data stored, commitment {stored['commitment']}")
        tx_module.submit(client, "register-customer", payload, key_file, second_key_file, nonce, wait, timeout_s,
                         False)
        return
    with contextlib.redirect_stdout(io.StringIO()):  # ``submit`` prints; --json prints one document at the end
        doc = tx_module.submit(client, "register-customer", payload, key_file, second_key_file, nonce, wait,
                               timeout_s, True)
    echo_json({**doc, "commitment": stored["commitment"], "salt": stored["salt"]})


@customer_group.command("show")
@click.argument("customer_id")
@node_options
@read_key_option
@cli_errors
def customer_show(client: NodeClient, as_json: bool, customer_id: str) -> None:
    """Show a customer's on-chain record: KYC level, commitment, branch, erasure (never personal data)."""
    parse_id(customer_id, "customer id")
    _echo_doc(client.customer(customer_id), as_json)


@customer_group.command("data")
@click.argument("customer_id")
@click.option("--key", "key_file", required=True, envvar="CARECOIN_KEY", type=click.Path(dir_okay=False),
              help="A staff key file (signs the vault request).")
@node_options
@cli_errors
def customer_data(client: NodeClient, as_json: bool, customer_id: str, key_file: str) -> None:
    """Show a customer's personal data from this node's vault (staff only; refused once erased)."""
    parse_id(customer_id, "customer id")
    doc = client.sign_with(key_file).customer_data(customer_id)
    if as_json:
        echo_json(doc)
        return
    echo_fields(doc["data"])


# ---- account coin view and state proofs ---------------------------------------------------------------------


@account_group.command("coin")
@click.argument("account_id")
@node_options
@read_key_option
@cli_errors
def account_coin(client: NodeClient, as_json: bool, account_id: str) -> None:
    """Show the coin view: spendable balance, lots expiring within 30 days, tier, privileges, freeze, KYC."""
    parse_id(account_id, "account id")
    _echo_doc(client.coin(account_id), as_json)


@account_group.command("proof")
@click.argument("account_id")
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Write the proof document here (default: print it).")
@node_options
@read_key_option
@cli_errors
def account_proof(client: NodeClient, as_json: bool, account_id: str, out: str | None) -> None:
    """Fetch the account's state proof against the latest quorum-signed header."""
    parse_id(account_id, "account id")
    doc = client.proof(account_id)
    if out is None:
        echo_json(doc)
        return
    Path(out).write_text(json.dumps(doc, indent=2))
    click.echo(f"proof of {account_id[:16]}… at height {doc['height']} written to {out}")


@account_group.command("verify-proof")
@click.argument("proof_file", type=click.Path(dir_okay=False))
@click.option("--genesis", "genesis_file", required=True, type=click.Path(dir_okay=False),
              help="The network's genesis.json: the only thing trusted.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@cli_errors
def account_verify_proof(proof_file: str, genesis_file: str, as_json: bool) -> None:
    """Check an account state proof offline against genesis.json; print the proven balance."""
    path = Path(proof_file)
    if path.stat().st_size > MAX_PROOF_FILE:
        raise CliError(f"{proof_file} is larger than {MAX_PROOF_FILE} bytes; not a state proof")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CliError(f"{proof_file} is not JSON") from None
    proven = verify_state_proof(doc, load_genesis(genesis_file))
    result = {"valid": True, "account": proven.account.hex(), "height": proven.height,
              "balance": proven.spendable, "stored_balance": proven.balance, "nonce": proven.nonce,
              "kyc_level": proven.kyc_level, "frozen": proven.frozen, "lifetime_earned": proven.lifetime_earned,
              "signers": len(proven.signers), "timestamp_ms": proven.timestamp_ms}
    if as_json:
        echo_json(result)
    else:
        click.echo(f"valid state proof: account {result['account'][:16]}… holds {proven.spendable} spendable at "
                   f"height {proven.height} (nonce {proven.nonce}), sealed by {len(proven.signers)} validators")


DOMAIN_COMMANDS = [ticket_group, order_group, policy_group, report, customer_group]
