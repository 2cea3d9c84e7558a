"""The click side of the client library: the CLI speaks HTTP only through ``carecoin.Client``.

``NodeClient`` is ``carecoin.Client`` (``client.get(path)``, ``client.post(path, body)``, one method per
route); ``node_options`` (``cli.options``) builds one per command and ``read_key_option`` makes it sign
reads with ``--key FILE`` / ``CARECOIN_KEY``. Refusals are ``carecoin.ApiError``: ``cli.errors`` turns them
into one line and exit code 3.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import click

from carecoin import DEFAULT_NODE, Client, find_network_ca  # noqa: F401 - re-exported for the commands

NodeClient = Client


def read_key_option(func: Callable) -> Callable:
    """Add ``--key FILE`` (env ``CARECOIN_KEY``) to a read command: the ``client`` signs its requests with it.

    Put it below ``node_options`` (which passes ``client``)."""

    @click.option("--key", "read_key_file", envvar="CARECOIN_KEY", default=None, type=click.Path(dir_okay=False),
                  help="Key file that signs the read (env CARECOIN_KEY): the account itself, staff of its branch, "
                       "an auditor or compliance key.")
    @functools.wraps(func)
    def wrapper(*args: Any, client: NodeClient, read_key_file: str | None, **kwargs: Any) -> Any:
        if read_key_file:
            client.sign_with(read_key_file)
            if client.ca_file is None:
                client.trust(find_network_ca(read_key_file))
        return func(*args, client=client, **kwargs)

    return wrapper
