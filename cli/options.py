"""Options shared by every command that talks to a node, declared once."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import click

from cli.client import DEFAULT_NODE, NodeClient


def node_options(func: Callable) -> Callable:
    """Add ``--node URL`` and ``--json``; pass ``client`` and ``as_json`` to the command."""

    @click.option("--node", "node_url", envvar="CARECOIN_NODE", default=DEFAULT_NODE, show_default=True,
                  help="Base URL of a node's HTTP API (env CARECOIN_NODE).")
    @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
    @functools.wraps(func)
    def wrapper(*args: Any, node_url: str, as_json: bool, **kwargs: Any) -> Any:
        return func(*args, client=NodeClient(node_url), as_json=as_json, **kwargs)

    return wrapper


def echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))
