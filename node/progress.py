"""Progress bars (rich) for a person at a terminal, and silence for everyone else.

``progress_enabled(stream)`` is the one rule: a bar is drawn only when ``stream`` is a terminal, ``CI`` is unset
(or "false"/"0"), ``CARECOIN_NO_PROGRESS`` is unset and ``TERM`` is not "dumb". Logs to a file, a pipe, JSON logs
and CI runs never get a bar (no escape codes in logs).

``CatchUpProgress`` is the node's catch-up bar (``node.sync.Syncer`` calls ``update(head, target)`` after each
batch and ``done()`` when the task ends); it appears only when the node is at least ``MIN_BEHIND`` blocks
behind, so an ordinary one-block catch-up draws nothing. ``carecoin node start`` turns it on with
``enable_catch_up_bar`` when its log is text at a terminal; by default every node gets the silent one.
``ProgressBar`` is the same thing for the benchmarks and the load generator.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Mapping

MIN_BEHIND = 64
_catch_up_bar = False


def progress_enabled(stream: IO | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """True when a progress bar on ``stream`` (default stderr) would reach a person (see the module docstring)."""
    env = os.environ if environ is None else environ
    stream = sys.stderr if stream is None else stream
    if env.get("CI", "").lower() not in ("", "false", "0") or env.get("CARECOIN_NO_PROGRESS"):
        return False
    if env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def enable_catch_up_bar(enabled: bool) -> None:
    """Let the nodes built from now on draw their catch-up bar (``carecoin node start`` at a terminal)."""
    global _catch_up_bar
    _catch_up_bar = enabled


class ProgressBar:
    """One rich task bar on stderr, or nothing when ``enabled`` is false; ``update``/``close`` are always safe."""

    def __init__(self, description: str, total: float, *, enabled: bool | None = None, unit: str = "") -> None:
        self.enabled = progress_enabled() if enabled is None else enabled
        self._progress = None
        self._task = None
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            columns = [TextColumn("{task.description}"), BarColumn(),
                       MofNCompleteColumn() if unit else TextColumn("{task.percentage:>3.0f}%"),
                       TextColumn(unit), TimeRemainingColumn()]
            self._progress = Progress(*columns, console=Console(file=sys.stderr), transient=True)
            self._progress.start()
            self._task = self._progress.add_task(description, total=total)

    def update(self, completed: float, *, total: float | None = None, description: str | None = None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, total=total, description=description)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class CatchUpProgress:
    """The node's catch-up bar: heights from where catch-up started to the best peer's head."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = _catch_up_bar if enabled is None else enabled
        self._bar: ProgressBar | None = None
        self._start = 0

    def update(self, head: int, target: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            if target - head < MIN_BEHIND:
                return
            self._start = head
            self._bar = ProgressBar("catching up", target - head, enabled=True, unit="blocks")
        self._bar.update(head - self._start, total=max(target - self._start, 1),
                         description=f"catching up to {target}")

    def done(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
