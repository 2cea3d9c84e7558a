"""`make demo` keeps working: the demo script runs a real 4-node network to the end and verifies a receipt; it
shows an SLA breach compensated by a block's sweep, a campaign bonus, an order in USD and the coins outstanding."""

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
    # nobody answers the urgent complaint: a block's sweep compensates Alice (history, receipt, report)
    assert "sla_breached T2 first_response (+100)" in out.stdout
    assert "the SLA sweep's receipt" in out.stdout and "event: sla_breached T2" in out.stdout
    assert "SLA breaches: 1 (first response 1, resolution 0), 100 coins compensated automatically" in out.stdout
    # a campaign decided by three branches' admins pays its bonus on the USD order's confirmation
    assert "credited 105, order_confirmed, credited 250, campaign_applied 250" in out.stdout
    # fiat per currency and in EUR (the USD part at treasury's rate), and the company's liability in coins
    assert "paid EUR 220.40 (EUR 115.00, USD 114.57)" in out.stdout
    assert "1001 coins, worth EUR 10.01 (the company's liability); debt owed 0 coins" in out.stdout
