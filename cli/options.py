"""Options shared by every command that talks to a node, declared once."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import click

from cli.client import DEFAULT_NODE, NodeClient, find_network_ca
from cli.render import utc_option
from ledger.errors import LedgerError
from ledger.keys import parse_public_key


def node_options(func: Callable) -> Callable:
    """Add ``--node URL``, ``--ca FILE``, ``--json`` and ``--utc`` (times in UTC, ``cli.render``); pass ``client`` and ``as_json`` to the command.

    For an https:// node the CLI trusts ``--ca`` / ``CARECOIN_CA``, else the network CA found next to the
    command's ``--key`` (``find_network_ca``: ``company/tls-ca.pem`` of the network directory), else the
    system's CAs."""

    @click.option("--node", "node_url", envvar="CARECOIN_NODE", default=DEFAULT_NODE, show_default=True,
                  help="Base URL of a node's HTTP API (env CARECOIN_NODE).")
    @click.option("--ca", "ca_file", envvar="CARECOIN_CA", default=None, type=click.Path(dir_okay=False, exists=True),
                  help="CA certificate to trust for an https:// node (env CARECOIN_CA; default: the network's "
                       "company/tls-ca.pem found next to --key).")
    @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
    @utc_option
    @functools.wraps(func)
    def wrapper(*args: Any, node_url: str, ca_file: str | None, as_json: bool, **kwargs: Any) -> Any:
        ca = ca_file or find_network_ca(kwargs.get("key_file"))
        return func(*args, client=NodeClient(node_url, ca_file=ca), as_json=as_json, **kwargs)

    return wrapper


def echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


def parse_id(text: str, what: str) -> bytes:
    """A 64-hex-digit id given on the command line (account, customer, commitment, salt); a malformed one is a
    usage error (exit 2) naming what was seen and what was expected."""
    try:
        return parse_public_key(text, what)
    except LedgerError as exc:
        raise click.BadParameter(exc.message) from None
