"""The `carecoin` command: a thin click group; each command group lives in its own module.

    carecoin keys new --out alice.key
    carecoin receipt verify receipt.json --genesis genesis.json
"""

from __future__ import annotations

from importlib import metadata

import click

from cli.audit import audit_group
from cli.doctor import doctor
from cli.errors import ApiErrorsGroup
from cli.events import events_group, webhook_group
from cli.examples import add_examples
from cli.gov import gov_group
from cli.keys import keys
from cli.lists import order_list, ticket_list
from cli.network import network
from cli.node import node
from cli.query import account_group, block_group, history, status
from cli.receipt import receipt
from cli.texts import text_group
from cli.tx import tx_group
from cli.domain import customer_group, order_group, policy_group, report, ticket_group


def _version() -> str:
    try:
        return metadata.version("carecoin")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


@click.group(cls=ApiErrorsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="carecoin")
def main() -> None:
    """carecoin: a permissioned customer-service ledger and loyalty coin.

    \b
    Example:
      carecoin status --node http://127.0.0.1:27100

    Exit codes: 0 done; 1 refused (a tx failed a ledger rule, or a local check failed); 2 usage; 3 node
    unreachable or API error. Times print in TZ's zone (--utc for UTC); --json prints machine-readable JSON.
    """


# Command groups: one module per group; add a new group to this list (and its import above).
COMMAND_GROUPS = [
    network,        # carecoin network init ...
    node,           # carecoin node start --config ...
    keys,           # carecoin keys new/show
    tx_group,       # carecoin tx <kind> ...
    account_group,  # carecoin account show ...
    block_group,    # carecoin block show ...
    receipt,        # carecoin receipt verify/get
    status,         # carecoin status
    history,        # carecoin history ID
    ticket_group,   # carecoin ticket show ID / list --branch B
    order_group,    # carecoin order show ID / list --customer C
    policy_group,   # carecoin policy show [--version N]
    report,         # carecoin report [--branch B] [--since T] [--until T]
    customer_group, # carecoin customer register/show/data
    text_group,     # carecoin text show/verify
    gov_group,      # carecoin gov propose/approve/show/list
    audit_group,    # carecoin audit list --key ...
    events_group,   # carecoin events follow --key ...
    webhook_group,  # carecoin webhook add/list/remove/dead-letters --key ...
    doctor,         # carecoin doctor --config ...
]
for _group in COMMAND_GROUPS:
    main.add_command(_group)
ticket_group.add_command(ticket_list)  # the list commands live in cli/lists.py
order_group.add_command(order_list)
add_examples(main)  # every command's --help ends with an Example (cli/examples.py) and the exit codes


if __name__ == "__main__":
    main()
