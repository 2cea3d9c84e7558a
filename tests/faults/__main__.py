"""`python -m tests.faults --scenarios K --seed S [--nodes N] [--quick] [--json]`: run a fault campaign.

Prints the campaign's figures (one JSON object with ``--json``); exits 1 unless there were 0 forks, 0 lost
acknowledged txs, 0 supply errors, 0 double signs, every recovery took at most 10 s and no honest node's RSS passed 500 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from tests.faults.campaign import is_clean, run_campaign


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", type=int, default=20, help="how many scenarios (default 20)")
    ap.add_argument("--seed", type=int, default=1, help="plan seed: same seed, same scenarios (default 1)")
    ap.add_argument("--nodes", type=int, default=4, help="validators per network (default 4)")
    ap.add_argument("--quick", action="store_true", help="shorter faults (about 0.6x)")
    ap.add_argument("--per-network", type=int, default=10, help="scenarios per fresh network (default 10)")
    ap.add_argument("--keep", type=Path, default=None, help="keep networks and logs in this directory")
    ap.add_argument("--kinds", default="", help="comma list: draw only these scenario kinds")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if not 1 <= args.scenarios <= 100_000 or not 3 <= args.nodes <= 16:
        ap.error("--scenarios must be 1..100000 and --nodes 3..16")
    summary = asyncio.run(run_campaign(args.scenarios, args.seed, args.nodes, args.quick, args.per_network,
                                       args.keep, tuple(k for k in args.kinds.split(",") if k)))
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        for key in ("scenarios", "forks", "lost", "supply_errors", "double_signs", "max_recovery_s", "max_startup_s",
                    "max_rss_mb", "recovery_over_limit", "acked_txs", "wall_s", "kinds", "skipped_kinds", "truncation_outcomes"):
            print(f"{key}: {summary[key]}")
    return 0 if is_clean(summary) else 1


if __name__ == "__main__":
    sys.exit(main())
