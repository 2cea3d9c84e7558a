"""`make demo` keeps working: the demo script runs a real 4-node network to the end and verifies a receipt."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end_and_stops_cleanly():
    out = subprocess.run([sys.executable, "-m", "cli.demo"], cwd=ROOT, capture_output=True, text=True,
                         timeout=110, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "all nodes agree" in out.stdout
    assert "verified offline" in out.stdout
    assert "valid receipt" in out.stdout
    assert "exit codes [0, 0, 0, 0]" in out.stdout
