"""A campaign: K seeded scenarios on fresh networks of n real nodes (a new network every ``per_network``).

Each network: init + proxies + start every node, register the workload's customers, run its share of the
scenarios, then stop every node (SIGTERM) and check each store offline (supply counters and balances).
Every process is killed at the end, also on failure; the work directory is removed unless ``keep``.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.faults import hooks
from tests.faults.checks import check_forks, check_supply_store
from tests.faults.cluster import Cluster
from tests.faults.scenarios import KINDS, READY_S, RSS_LIMIT_MB, Runner, Scenario, plan, summarize
from tests.faults.workload import Workload


def log(*args: object) -> None:
    print("[faults]", *args, file=sys.stderr, flush=True)


async def run_network(scenarios: list[Scenario], n: int, seed: int, root: Path) -> tuple[list[dict], list[dict]]:
    """Run ``scenarios`` on one fresh network; return (scenario results, end-of-network errors)."""
    rng = random.Random(f"net/{seed}/{scenarios[0].index}")
    cluster = Cluster(root, n, rng)
    results: list[dict] = []
    end_errors: list[dict] = []
    try:
        await cluster.open()
        for i in range(n):
            cluster.start(i)
        for i in range(n):
            if not await cluster.wait_ready(i, READY_S):
                raise AssertionError(f"node {cluster.names[i]} did not start:\n{cluster.tail(i)}")
        workload = Workload(cluster, rng)
        await workload.setup()
        runner = Runner(cluster, workload, rng, root)
        for sc in scenarios:
            acked_before = len(workload.acked)
            res = await runner.run(sc)
            res["acked_delta"] = len(workload.acked) - acked_before
            results.append(res)
            log(f"#{sc.index} {sc.kind:<28} recovery {res['recovery_s']:>6.2f}s forks {len(res['forks'])} "
                f"lost {res['lost_count']} supply_err {len(res['supply_errors'])} "
                f"double_signs {len(res['double_signs'])} acked +{res['acked_delta']} "
                f"rss<={max(res['rss_mb'].values(), default=0):.0f}MB "
                f"{res.get('outcome', '')} ({res['wall_s']} s)")
        await check_forks(cluster, runner.view, list(range(n)))
        end_stats = {"proxy": cluster.mesh.stats(), "votes_decoded": cluster.mesh.auditor.decoded,
                     "height": max(runner.view.hashes, default=0)}
        results[-1]["network_stats"] = end_stats
        for i in range(n):
            await cluster.stop(i)
        errors, supplies = check_supply_store({cluster.names[i]: cluster.data_dir(i) for i in range(n)})
        end_errors.extend(errors)
        log(f"network done: stores checked, supply {supplies}, errors {errors}")
    finally:
        await cluster.close()
    return results, end_errors


async def run_campaign(count: int, seed: int, n: int = 4, quick: bool = False, per_network: int = 10,
                       keep: Path | None = None, only: tuple[str, ...] = ()) -> dict:
    t0 = time.monotonic()
    scenarios = plan(seed, count, n, quick, only)
    skipped = {k: hooks.missing(k) for k in KINDS if hooks.missing(k)}
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="carecoin-faults-"))
    results: list[dict] = []
    store_errors: list[dict] = []
    try:
        for start in range(0, len(scenarios), per_network):
            batch = scenarios[start:start + per_network]
            res, errs = await run_network(batch, n, seed, root / f"net{start // per_network}")
            results.extend(res)
            store_errors.extend(errs)
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    summary = summarize(results, skipped)
    summary["supply_errors"] += len(store_errors)
    summary["store_errors"] = store_errors
    summary["seed"], summary["nodes"] = seed, n
    proxy: dict[str, int] = {}
    for r in results:
        for k, v in r.get("network_stats", {}).get("proxy", {}).items():
            proxy[k] = proxy.get(k, 0) + v
    summary["proxy"] = proxy
    summary["votes_audited"] = sum(r.get("network_stats", {}).get("votes_decoded", 0) for r in results)
    summary["wall_s"] = round(time.monotonic() - t0, 1)
    summary["failures"] = [r for r in results if r["forks"] or r["lost_count"] or r["supply_errors"]
                           or r["double_signs"] or r["duplicated"] or r["misplaced"] or r["recovery_s"] > 10.0
                           or r.get("attack_progress_s", 0.0) > 10.0
                           or any(mb > RSS_LIMIT_MB for mb in r.get("rss_mb", {}).values())]
    summary["truncation_outcomes"] = [f"#{r['index']} {r['kind']}: {r.get('outcome')}" for r in results
                                      if r["kind"].startswith("truncate")]
    return summary


def is_clean(summary: dict) -> bool:
    return (summary["forks"] == 0 and summary["lost"] == 0 and summary["supply_errors"] == 0
            and summary["double_signs"] == 0 and summary["duplicated"] == 0 and summary["misplaced"] == 0
            and summary["max_recovery_s"] <= 10.0 and summary["rss_over_limit"] == 0)
