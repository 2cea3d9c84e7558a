"""The node's log as an operator's log pipeline sees it: with ``[log] format = "json"`` every line is one
complete JSON object (exceptions and warnings included); progress bars only for a person at a terminal."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import tomli_w

from cli.ports import free_port_base
from cli.logs import JsonFormatter, setup_logging
from cli.network import init_network
from node.config import load_config
from node.progress import MIN_BEHIND, CatchUpProgress, progress_enabled

ROOT = Path(__file__).resolve().parents[2]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record(msg: str, **extra) -> logging.LogRecord:
    record = logging.getLogger("carecoin.test").makeRecord("carecoin.test", logging.WARNING, __file__, 7, msg, (),
                                                          None, extra=extra)
    return record


def test_a_json_line_carries_time_level_node_source_and_the_extra_fields():
    doc = json.loads(JsonFormatter("branch-2").format(_record("peer %s down", height=12, peer="branch-3")))
    assert doc["ts"].endswith("Z") and "T" in doc["ts"]
    assert (doc["level"], doc["logger"], doc["node"]) == ("warning", "carecoin.test", "branch-2")
    assert doc["msg"] == "peer %s down" and doc["height"] == 12 and doc["peer"] == "branch-3"
    assert doc["src"].startswith("test_logs:")


def test_an_exception_stays_inside_its_one_json_line():
    try:
        raise ValueError("bad frame")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter("b").format(record)
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["exc_type"] == "ValueError" and "bad frame" in doc["exc"]


def test_setup_logging_json_writes_only_json_lines_warnings_included(tmp_path):
    summary = init_network(tmp_path / "net", 1, base_port=free_port_base(2))
    cfg = load_config(summary.branches[0].config_path)
    cfg = dataclasses.replace(cfg, log=dataclasses.replace(cfg.log, format="json", level="info"))
    out = io.StringIO()
    setup_logging(cfg, stream=out)
    try:
        logging.getLogger("carecoin.node").info("ready at height %d", 3)
        warnings.warn("old option", DeprecationWarning)
        logging.getLogger("carecoin.sync").exception("catch-up failed", exc_info=RuntimeError("x"))
    finally:
        logging.captureWarnings(False)
        logging.getLogger().handlers.clear()
    lines = out.getvalue().splitlines()
    docs = [json.loads(line) for line in lines]
    assert docs[0]["msg"] == "ready at height 3" and docs[0]["node"] == cfg.name
    assert any(d["logger"] == "py.warnings" and "old option" in d["msg"] for d in docs)
    assert docs[-1]["exc_type"] == "RuntimeError"


def test_a_json_node_that_cannot_start_says_so_in_one_json_line(tmp_path):
    summary = init_network(tmp_path / "net", 1, base_port=free_port_base(2))
    path = summary.branches[0].config_path
    doc = tomllib.loads(path.read_text())
    doc["log"]["format"] = "json"
    doc["node"]["genesis_file"] = "missing-genesis.json"
    path.write_text(tomli_w.dumps(doc))
    proc = subprocess.run([sys.executable, "-m", "cli.node", "start", "--config", str(path)], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines and all(json.loads(line) for line in lines)
    assert "did not start" in json.loads(lines[-1])["msg"] and json.loads(lines[-1])["level"] == "error"


def test_progress_bars_only_for_a_terminal_outside_ci():
    assert progress_enabled(_Tty(), {})
    assert not progress_enabled(_Tty(), {"CI": "true"})
    assert progress_enabled(_Tty(), {"CI": "false"})
    assert not progress_enabled(_Tty(), {"CARECOIN_NO_PROGRESS": "1"})
    assert not progress_enabled(io.StringIO(), {})  # a pipe or a log file


def test_the_catch_up_bar_appears_only_far_behind_and_never_when_off(capsys):
    off = CatchUpProgress(enabled=False)
    off.update(0, 10 * MIN_BEHIND)
    near = CatchUpProgress(enabled=True)
    near.update(100, 100 + MIN_BEHIND - 1)
    assert off._bar is None and near._bar is None
    far = CatchUpProgress(enabled=True)
    far.update(0, 2 * MIN_BEHIND)
    far.update(MIN_BEHIND, 2 * MIN_BEHIND)
    assert far._bar is not None
    far.done()
    assert far._bar is None
