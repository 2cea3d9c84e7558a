"""`carecoin keys`: create and inspect Ed25519 key files (mode 0600)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.errors import cli_errors
from ledger.keys import KeyPair, load_key, save_key


@click.group("keys")
def keys() -> None:
    """Create and inspect Ed25519 key files (the public key is the account id)."""


def _describe(path: Path, key: KeyPair) -> dict[str, str]:
    return {"file": str(path), "type": "ed25519", "public_key": key.public_key.hex(), "account_id": key.hex}


@keys.command("new", epilog="Example: carecoin keys new --out alice.key")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Key file to create (mode 0600); an existing file is never overwritten.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@cli_errors
def new(out: Path, as_json: bool) -> None:
    """Generate a new key, write it to --out and print its public key (the account id)."""
    key = KeyPair.generate()
    save_key(out, key)
    info = _describe(out, key)
    if as_json:
        click.echo(json.dumps(info))
    else:
        click.echo(f"wrote {out} (mode 0600)")
        click.echo(f"account id (public key): {key.hex}")


@keys.command("show", epilog="Example: carecoin keys show alice.key --json")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@cli_errors
def show(file: Path, as_json: bool) -> None:
    """Print the public key (account id) of a key file; never prints the secret."""
    key = load_key(file)
    info = _describe(file, key)
    if as_json:
        click.echo(json.dumps(info))
    else:
        click.echo(f"account id (public key): {key.hex}")
