"""The `carecoin` command: a thin click group; each command group lives in its own module.

    carecoin keys new --out alice.key
    carecoin receipt verify receipt.json --genesis genesis.json
"""

from __future__ import annotations

from importlib import metadata

import click

from cli.keys import keys
from cli.receipt import receipt


def _version() -> str:
    try:
        return metadata.version("carecoin")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="carecoin")
def main() -> None:
    """carecoin: a permissioned customer-service ledger and loyalty coin."""


# Command groups. Later groups are added here, one line each, e.g.:
#   from cli.network import network; main.add_command(network)
#   from cli.node import node;       main.add_command(node)
#   from cli.tx import tx;           main.add_command(tx)
#   from cli.query import query;     main.add_command(query)
COMMAND_GROUPS = [keys, receipt]
for _group in COMMAND_GROUPS:
    main.add_command(_group)


if __name__ == "__main__":
    main()
