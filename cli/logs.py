"""The node's log: ``[log] format = "text" | "json"`` and ``level`` of node.toml, on stderr.

JSON: one object per line, every line, never a bare traceback (an exception is inside its line):
``ts`` (ISO-8601 UTC, milliseconds), ``level``, ``logger``, ``node`` (the config's name), ``msg`` (the formatted
message), ``src`` (module:line), ``pid``, ``task`` (the asyncio task, when inside one), any ``extra={...}``
fields the call gave, and for an exception ``exc_type`` and ``exc`` (the formatted traceback); Python warnings
are logged too (logger ``py.warnings``). Values that are not JSON are written with ``str``.

Text: ``<time> <node> <LEVEL> <logger>: <message>``. At a terminal (and not under ``CI``) the node's catch-up
draws a rich progress bar (``node.progress``); log lines then go through the current ``sys.stderr`` so the bar
keeps them above itself. JSON logs never get a bar.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import sys

from node.config import NodeConfig
from node.progress import enable_catch_up_bar, progress_enabled

LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def _task_name() -> str | None:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return None
    return task.get_name() if task is not None else None


class JsonFormatter(logging.Formatter):
    """One complete JSON object per log record (see the module docstring)."""

    def __init__(self, node: str = "") -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        doc = {"ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
               "level": record.levelname.lower(), "logger": record.name, "node": self.node,
               "msg": record.getMessage(), "src": f"{record.module}:{record.lineno}", "pid": record.process}
        task = _task_name()
        if task is not None:
            doc["task"] = task
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in doc:
                doc[key] = value
        if record.exc_info:
            doc["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            doc["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (rich swaps it while a bar is drawn, to print above it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def setup_logging(cfg: NodeConfig, *, stream=None) -> None:
    """Log to stderr (or ``stream``) in the node.toml's format and level; turn the catch-up bar on at a terminal
    with text logs."""
    bar = stream is None and cfg.log.format == "text" and progress_enabled(sys.stderr)
    enable_catch_up_bar(bar)
    handler = logging.StreamHandler(stream if stream is not None else _CurrentStderr() if bar else sys.stderr)
    if cfg.log.format == "json":
        handler.setFormatter(JsonFormatter(cfg.name))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {cfg.name} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LOG_LEVELS[cfg.log.level])
    logging.captureWarnings(True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
