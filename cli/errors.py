"""Turning domain errors into one-line CLI failures (exit code 1, never a traceback for bad input).

Domain code raises typed errors (``LedgerError`` and its subclasses, or ``OSError`` for files); only this
layer knows they become ``click.ClickException``. Commands wrap their body with ``@cli_errors``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import click

from ledger.errors import LedgerError

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A one-line failure with exit code 1."""

    exit_code = 1


def to_click(exc: BaseException) -> CliError:
    """Return the one-line ``CliError`` for a domain or file error."""
    if isinstance(exc, LedgerError):
        return CliError(exc.message)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return CliError(f"{where}{exc.strerror or exc}")
    return CliError(str(exc))


def cli_errors(func: F) -> F:
    """Decorator: a ``LedgerError`` or ``OSError`` escaping ``func`` becomes a ``CliError`` (exit 1)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (LedgerError, OSError) as exc:
            raise to_click(exc) from None

    return wrapper  # type: ignore[return-value]
