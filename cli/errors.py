"""Turning errors into one-line CLI failures with a documented exit code (never a traceback for bad input).

Exit codes (every command's ``--help`` ends with them):

- 0: done (a tx: committed and applied);
- 1: refused — a tx committed as failed by a ledger rule (the rule's message is printed), or a local check
  failed (a receipt or proof that does not verify, a file that cannot be read);
- 2: usage — a missing or malformed option or argument (click's own code);
- 3: the node — unreachable, an untrusted certificate, or an API error (4xx/5xx: the node's code and message).

Domain code raises typed errors (``LedgerError``, ``OSError``, ``carecoin.ApiError``); only this layer knows
they become ``click.ClickException``. Commands wrap their body with ``@cli_errors``; the ``carecoin`` group
also catches an ``ApiError`` any command lets through (``ApiErrorsGroup``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import click

from carecoin import ApiError
from carecoin.core import SIGN_HINT
from ledger.errors import LedgerError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_NODE = 3
EXIT_CODES_HELP = ("Exit codes: 0 done; 1 refused (a tx failed a ledger rule, or a local check failed); "
                   "2 usage; 3 node unreachable or API error.")


class CliError(click.ClickException):
    """A one-line failure with exit code 1 (refused)."""

    exit_code = EXIT_REFUSED


class NodeError(click.ClickException):
    """A one-line failure talking to the node, exit code 3."""

    exit_code = EXIT_NODE


def to_click(exc: BaseException) -> click.ClickException:
    """Return the one-line failure for a domain, file or API error."""
    if isinstance(exc, ApiError):
        text = str(exc)
        if exc.status == 401 and SIGN_HINT in text:
            text = text.replace(SIGN_HINT, f"pass --key FILE (or set CARECOIN_KEY) to {SIGN_HINT}")
        return NodeError(text)
    if isinstance(exc, LedgerError):
        return CliError(exc.message)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return CliError(f"{where}{exc.strerror or exc}")
    return CliError(str(exc))


def cli_errors(func: F) -> F:
    """Decorator: a ``LedgerError``/``OSError`` (exit 1) or ``ApiError`` (exit 3) escaping ``func`` becomes one
    line."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (LedgerError, OSError, ApiError) as exc:
            raise to_click(exc) from None

    return wrapper  # type: ignore[return-value]


class ApiErrorsGroup(click.Group):
    """A group whose commands' ``ApiError``s become one line and exit code 3 (for commands without
    ``@cli_errors``)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            raise to_click(exc) from None
