"""One ``Example:`` for every command's ``--help``, kept in one table (a command whose own help has one keeps
it). ``add_examples(main)`` appends them once the command groups are registered; a generated command
(``carecoin tx <kind>``, ``carecoin gov propose <action>``) gets one built from its required options."""

from __future__ import annotations

import click

from cli.errors import EXIT_CODES_HELP

EXAMPLES: dict[str, str] = {
    "carecoin": "carecoin status --node http://127.0.0.1:27100",
    "network": "carecoin network init --dir ./net --branches 4 --tls",
    "network init": "carecoin network init --dir ./net --branches 4 --tls",
    "network add-branch": "carecoin network add-branch --dir ./net --name branch-5",
    "node": "carecoin node start --config ./net/branch-1/node.toml",
    "node start": "carecoin node start --config ./net/branch-1/node.toml",
    "keys": "carecoin keys new --out alice.key",
    "keys new": "carecoin keys new --out alice.key",
    "keys show": "carecoin keys show alice.key",
    "account coin": "carecoin account coin 3f2a... --key alice.key",
    "account proof": "carecoin account proof 3f2a... --key alice.key -o proof.json",
    "account verify-proof": "carecoin account verify-proof proof.json --genesis genesis.json",
    "receipt": "carecoin receipt get 9c1f... -o receipt.json --key alice.key",
    "receipt verify": "carecoin receipt verify receipt.json --genesis genesis.json",
    "receipt get": "carecoin receipt get 9c1f... -o receipt.json --key alice.key",
    "ticket": "carecoin ticket show T1 --key alice.key",
    "ticket show": "carecoin ticket show T1 --key alice.key",
    "order": "carecoin order show O1 --key alice.key",
    "order show": "carecoin order show O1 --key alice.key --json",
    "policy": "carecoin policy show --version 0",
    "policy show": "carecoin policy show --version 0",
    "report": "carecoin report --branch branch-1 --since 2026-11-01 --key auditor.key",
    "customer": "carecoin customer show 3f2a... --key staff.key",
    "customer register": "carecoin customer register --key staff.key --customer 3f2a... --kyc-level 1 "
                         "--name \"Ann Lee\" --email ann@example.org --wait",
    "customer show": "carecoin customer show 3f2a... --key staff.key",
    "customer data": "carecoin customer data 3f2a... --key staff.key",
    "text": "carecoin text show 5d0e... --key alice.key",
    "text show": "carecoin text show 5d0e... --key alice.key",
    "text verify": "carecoin text verify --commitment 5d0e... --salt 9a8b... --text \"parcel arrived damaged\"",
    "gov propose": "carecoin gov propose quorum --quorum 3 --key admin.key --wait",
    "gov approve": "carecoin gov approve grant-role-1f2e3d4c --key other-branch-admin.key --wait",
    "gov show": "carecoin gov show grant-role-1f2e3d4c",
    "gov list": "carecoin gov list --status open",
    "gov campaigns": "carecoin gov campaigns --json",
    "audit": "carecoin audit list --key compliance.key --customer 3f2a...",
    "audit list": "carecoin audit list --key compliance.key --customer 3f2a...",
}


def generated_example(path: str, command: click.Command) -> str:
    """``carecoin <path> --opt VALUE ...`` with every required option (for generated commands)."""
    parts = [f"carecoin {path}"]
    for param in command.params:
        if isinstance(param, click.Option) and param.required:
            name = max(param.opts, key=len)
            parts.append(f"{name} {'SENDER.key' if param.name == 'key_file' else param.name.upper()}")
    if any(isinstance(p, click.Option) and p.name == "wait" for p in command.params):
        parts.append("--wait")
    return " ".join(parts)


def add_examples(group: click.Group, prefix: str = "") -> None:
    """Append the example (and, for commands that talk to a node, the exit codes) to every help without one."""
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        help_text = command.help or ""
        if "Example:" not in help_text + (command.epilog or ""):
            example = EXAMPLES.get(path) or generated_example(path, command)
            help_text += f"\n\n\b\nExample:\n  {example}"
        if not isinstance(command, click.Group) and "Exit codes:" not in help_text:
            help_text += f"\n\n{EXIT_CODES_HELP}"
        command.help = help_text
        if isinstance(command, click.Group):
            add_examples(command, f"{path} ")
