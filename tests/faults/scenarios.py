"""Seeded scenario plans and the runner of one scenario on a running ``Cluster``.

A plan is a pure function of (seed, index, n, quick): the same seed gives the same list of scenarios
(kinds, target nodes, times, probabilities), whatever happens while they run. A scenario: the mixed
workload runs; after ``start_s`` the fault is applied; after ``duration_s`` it is healed (restart, SIGCONT,
partition healed, links clean); the harness then times how long until a block above every height seen at
the heal is committed on every honest node (recovery; after a restart the clock starts once the restarted
processes answer ``/v1/status``, their start-up time is reported apart as ``startup_s``), lets the load run a little, stops it, drains the
acknowledged txs, and checks the invariants (``tests.faults.checks``).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.faults import hooks
from tests.faults.checks import ChainView, check_forks, check_supply_api, check_txs
from tests.faults.cluster import Cluster
from tests.faults.workload import Workload

# kind -> weight in the draw. Hook-gated kinds are drawn only when the node has the hook.
KINDS: dict[str, int] = {
    "kill_restart": 3, "kill_mid_commit": 3, "pause": 2, "all_crash": 1, "partition_halves": 2,
    "partition_proposer": 2, "partition_minority_blackhole": 1, "lossy_links": 3, "truncate_wal_log": 1,
    "truncate_ldb": 1, "clock_offset": 1, "byzantine": 1,
}
RECOVERY_LIMIT_S = 10.0
RSS_LIMIT_MB = 500.0  # an honest node's resident memory must stay below this (floods must not grow it)
RECOVERY_WAIT_S = 30.0
WORKERS = 4
DRAIN_S = 25.0
READY_S = 30.0
REFUSE_WAIT_S = 12.0


@dataclass(frozen=True)
class Scenario:
    index: int
    kind: str
    node: int
    start_s: float
    duration_s: float
    params: dict = field(default_factory=dict)


def plan(seed: int, count: int, n: int, quick: bool = False, only: tuple[str, ...] = ()) -> list[Scenario]:
    """The campaign's scenarios: same (seed, count, n, quick, only) -> same list."""
    kinds = [k for k in KINDS if hooks.missing(k) is None and (not only or k in only)]
    if not kinds:
        raise ValueError(f"no runnable scenario kind in {only}; known: {', '.join(KINDS)}")
    weights = [KINDS[k] for k in kinds]
    first = sorted(kinds)  # the first len(kinds) scenarios are every kind once, in a seeded order
    random.Random(f"faults/{seed}/order").shuffle(first)
    out = []
    for index in range(count):
        rng = random.Random(f"faults/{seed}/{index}/{n}")
        kind = first[index] if index < len(first) else rng.choices(kinds, weights)[0]
        scale = 0.6 if quick else 1.0
        params: dict = {}
        if kind == "lossy_links":
            params = {"drop_p": round(rng.uniform(0.02, 0.2), 3), "dup_p": round(rng.uniform(0.02, 0.2), 3),
                      "delay_ms": rng.randint(5, 120), "jitter_ms": rng.randint(0, 40)}
        elif kind == "partition_halves":
            nodes = list(range(n))
            rng.shuffle(nodes)
            params = {"groups": [sorted(nodes[: n // 2]), sorted(nodes[n // 2:])],
                      "mode": rng.choice(["close", "blackhole"])}
        elif kind in ("truncate_wal_log", "truncate_ldb"):
            params = {"cut_bytes": rng.randint(1, 200)}
        elif kind == "kill_mid_commit":
            params = {"restart_after_s": round(rng.uniform(0.0, 0.5), 3)}
        elif kind == "clock_offset":
            params = {"offset_ms": rng.choice([-1, 1]) * rng.randint(500, 5000)}
        out.append(Scenario(index, kind, rng.randrange(n), round(rng.uniform(0.3, 1.5) * scale, 3),
                            round(rng.uniform(1.0, 4.0) * scale, 3), params))
    return out


class Runner:
    """Runs scenarios one after another on one cluster; keeps the chain view and the results."""

    def __init__(self, cluster: Cluster, workload: Workload, rng: random.Random, work_dir: Path) -> None:
        self.c, self.w, self.rng, self.work_dir = cluster, workload, rng, work_dir
        self.view = ChainView()
        self.reported_conflicts: set[tuple] = set()
        self.byzantine: set[int] = set()  # misbehaving during the current scenario
        self.skewed: set[int] = set()  # running with a shifted clock until the scenario ends
        self.rss: dict[int, float] = {}  # node -> highest RSS (MB) sampled in the current scenario

    def honest(self) -> list[int]:
        return list(range(self.c.n))

    async def ensure_all_up(self) -> list[str]:
        """Restart any node that is not running (an unexpected exit is reported)."""
        exits = []
        for i in range(self.c.n):
            if i in self.c.paused:
                self.c.resume(i)
            if not self.c.running(i):
                exits.append(f"{self.c.names[i]} exited with {self.c.exit_code(i)}: {self.c.tail(i, 5)}")
                self.c.kill(i)
                self.c.start(i)
                await self.c.wait_ready(i, READY_S)
        return exits

    async def run(self, sc: Scenario) -> dict:
        t0 = time.monotonic()
        result: dict = {"index": sc.index, "kind": sc.kind, "node": self.c.names[sc.node], "params": sc.params}
        result["unexpected_exits"] = await self.ensure_all_up()
        starts_before = dict(self.c.starts)
        self.byzantine.clear()
        self.rss = {}
        stop = asyncio.Event()
        load_deadline = time.monotonic() + sc.start_s + sc.duration_s + RECOVERY_WAIT_S + 5
        workers = [asyncio.create_task(self.w.worker(stop, load_deadline)) for _ in range(WORKERS)]
        try:
            await asyncio.sleep(sc.start_s)
            self.startup_s = self.attack_progress_s = None
            outcome = await self.apply(sc)
            if outcome:
                result["outcome"] = outcome
            if self.attack_progress_s is not None:
                # the first block every other node commits while the byzantine validator misbehaves
                result["attack_progress_s"] = self.attack_progress_s
            if self.startup_s is not None:
                result["startup_s"] = self.startup_s
            result["recovery_s"] = await self.measure_recovery()
            self.sample_rss()
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            self.c.mesh.heal()
            for i in list(self.c.paused):
                self.c.resume(i)
            await self.restore_clocks()
            done, pending = await asyncio.wait(workers, timeout=15)
            for task in pending:
                task.cancel()
        result["unexpected_exits"] += await self.ensure_all_up()
        for i, count in self.c.starts.items():
            if count != starts_before.get(i, 0):
                self.view.forget_node(i)  # restarted: every acknowledged tx is asked of it again
        missing = await self.w.drain(DRAIN_S)
        honest = self.honest()
        result["forks"] = await check_forks(self.c, self.view, honest)
        txs = await check_txs(self.c, self.view, honest, sorted(self.w.acked))
        # a tx some node still lacks after the drain: poll once more for slow catch-up before calling it lost
        if txs["lost"]:
            await asyncio.sleep(3)
            await check_forks(self.c, self.view, honest)
            txs = await check_txs(self.c, self.view, honest, sorted(self.w.acked))
        result["lost"] = txs["lost"][:10]
        result["lost_count"] = len({x["tx"] for x in txs["lost"]})
        result["duplicated"] = txs["duplicated"][:10]
        result["misplaced"] = txs["misplaced"][:10]
        result["supply_errors"] = await check_supply_api(self.c, honest, self.w.accounts())
        byz_keys = {self.c.validator_keys[i] for i in self.byzantine}
        self.reported_conflicts.update((x["signer"], x["kind"], x["height"], x["round"])
                                       for x in self.c.mesh.auditor.conflicts(byz_keys))
        honest_keys = {self.c.validator_keys[i] for i in honest} - byz_keys
        self.byzantine.clear()
        new = [x for x in self.c.mesh.auditor.conflicts(honest_keys)
               if (x["signer"], x["kind"], x["height"], x["round"]) not in self.reported_conflicts]
        self.reported_conflicts.update((x["signer"], x["kind"], x["height"], x["round"]) for x in new)
        result["double_signs"] = new
        result["acked_total"] = len(self.w.acked)
        self.sample_rss()
        result["rss_mb"] = {self.c.names[i]: mb for i, mb in sorted(self.rss.items())}
        result["undrained"] = len(missing)
        result["wall_s"] = round(time.monotonic() - t0, 2)
        return result

    async def measure_recovery(self, exclude: tuple[int, ...] = ()) -> float:
        """Seconds from now (the heal) until every honest node holds a block above every height seen now."""
        t_heal = time.monotonic()
        heights = await asyncio.gather(*(self.c.height(i) for i in range(self.c.n)))
        target = max(max(heights), max(self.view.hashes, default=0)) + 1
        self.sample_rss()
        nodes = [i for i in self.honest() if i not in exclude]
        while time.monotonic() - t_heal < RECOVERY_WAIT_S:
            heights = await asyncio.gather(*(self.c.height(i) for i in nodes))
            if min(heights) >= target:
                return round(time.monotonic() - t_heal, 3)
            await asyncio.sleep(0.05)
        return float(RECOVERY_WAIT_S)

    # ---- faults ----

    async def apply(self, sc: Scenario) -> str | None:
        c, i = self.c, sc.node
        if sc.kind == "kill_restart":
            c.kill(i)
            c.mesh.cut_node(i)
            await asyncio.sleep(sc.duration_s)
            c.start(i)
            await self.await_started([i])
        elif sc.kind == "kill_mid_commit":
            # under load a commit (WriteBatch + fsync) is in flight most of the time: kill at a random ms
            await asyncio.sleep(self.rng.uniform(0, 0.3))
            c.kill(i)
            c.mesh.cut_node(i)
            await asyncio.sleep(sc.params["restart_after_s"])
            c.start(i)
            await self.await_started([i])
        elif sc.kind == "pause":
            c.pause(i)
            await asyncio.sleep(sc.duration_s)
            c.resume(i)
        elif sc.kind == "all_crash":
            for j in range(c.n):
                c.kill(j)
            await asyncio.sleep(sc.duration_s / 2)
            for j in range(c.n):
                c.start(j)
            await self.await_started(list(range(c.n)))
        elif sc.kind == "partition_halves":
            c.mesh.partition(sc.params["groups"], sc.params["mode"])
            await asyncio.sleep(sc.duration_s)
            c.mesh.heal()
        elif sc.kind == "partition_proposer":
            p = await self.next_proposer()
            c.mesh.partition([[p], [j for j in range(c.n) if j != p]], "close")
            await asyncio.sleep(sc.duration_s)
            c.mesh.heal()
            return f"isolated {c.names[p]}"
        elif sc.kind == "partition_minority_blackhole":
            c.mesh.partition([[i], [j for j in range(c.n) if j != i]], "blackhole")
            await asyncio.sleep(sc.duration_s)
            c.mesh.heal()
        elif sc.kind == "lossy_links":
            p = sc.params
            c.mesh.set_lossy(p["drop_p"], p["dup_p"], p["delay_ms"], p["jitter_ms"])
            await asyncio.sleep(sc.duration_s)
            c.mesh.heal()
        elif sc.kind in ("truncate_wal_log", "truncate_ldb"):
            return await self.truncate(sc)
        elif sc.kind == "clock_offset":
            # node i runs with a shifted clock through the window and the recovery (blocks must keep coming
            # with one skewed validator); it restarts with a true clock when the scenario ends
            c.kill(i)
            c.extra_env[hooks.CLOCK_ENV] = str(sc.params["offset_ms"])  # only node i restarts with it
            try:
                c.start(i)
            finally:
                c.extra_env.pop(hooks.CLOCK_ENV, None)
            self.skewed.add(i)
            await self.await_started([i])
            await asyncio.sleep(sc.duration_s)
        elif sc.kind == "byzantine":
            # node i misbehaves for the fault window only (it counts as the one faulty validator), then
            # restarts honest; its votes of that window are not held against the honest set
            self.byzantine.add(i)
            c.kill(i)
            c.extra_env.update({hooks.BYZANTINE_ENV: "equivocate,corrupt_body,replay,flood_future",
                                "CARECOIN_TEST_MODE": "1"})
            try:
                c.start(i)
            finally:
                c.extra_env.pop(hooks.BYZANTINE_ENV, None)
                c.extra_env.pop("CARECOIN_TEST_MODE", None)
            await c.wait_ready(i, READY_S)
            t0 = time.monotonic()
            self.attack_progress_s = await self.measure_recovery(exclude=(i,))  # blocks keep coming meanwhile
            await asyncio.sleep(max(0.0, sc.duration_s - (time.monotonic() - t0)))
            self.sample_rss()
            c.kill(i)
            c.start(i)
            await self.await_started([i])
        else:
            raise ValueError(f"no runner for scenario kind {sc.kind!r}")
        return None

    def sample_rss(self) -> None:
        """Keep each running honest node's highest resident memory of this scenario."""
        for i in range(self.c.n):
            if i in self.byzantine:
                continue
            mb = self.c.rss_mb(i)
            if mb is not None:
                self.rss[i] = max(self.rss.get(i, 0.0), mb)

    async def restore_clocks(self) -> None:
        """Restart the nodes that ran with a shifted clock with a true one (bounded wait)."""
        for i in sorted(self.skewed):
            self.c.kill(i)
            self.c.start(i)
        await asyncio.gather(*(self.c.wait_ready(i, READY_S) for i in self.skewed))
        self.skewed.clear()

    async def await_started(self, nodes: list[int]) -> None:
        """Wait (bounded) until restarted processes answer; the recovery clock starts then.

        Starting a Python node takes seconds on a loaded 2-core machine (imports, store open, index
        rebuild) and says nothing about the protocol, so it is reported apart as ``startup_s``.
        """
        t0 = time.monotonic()
        await asyncio.gather(*(self.c.wait_ready(j, READY_S) for j in nodes))
        self.startup_s = round(time.monotonic() - t0, 3)

    async def next_proposer(self) -> int:
        code, doc = await self.c.get(0, "/v1/status")
        if code != 200:
            return 0
        n = self.c.n
        return (doc["consensus_height"] + doc["round"]) % n

    async def truncate(self, sc: Scenario) -> str:
        """Kill, cut the tail of the newest LevelDB log (or table) file, restart; say what the node did."""
        c, i = self.c, sc.node
        c.kill(i)
        c.mesh.cut_node(i)
        data = c.data_dir(i)
        backup = self.work_dir / f"backup-{c.names[i]}"
        c.snapshot_data(i, backup)
        pattern = "*.log" if sc.kind == "truncate_wal_log" else "*.ldb"
        files = sorted((p for p in data.glob(pattern) if p.stat().st_size > 0), key=lambda p: p.stat().st_mtime)
        if not files and pattern == "*.ldb":
            files = sorted((p for p in data.glob("*.log") if p.stat().st_size > 0), key=lambda p: p.stat().st_mtime)
        if not files:
            c.start(i)
            return "nothing to truncate (no non-empty LevelDB file)"
        victim = files[-1]
        size = victim.stat().st_size
        cut = min(sc.params["cut_bytes"], size - 1)
        with victim.open("r+b") as fh:
            fh.truncate(size - cut)
        what = f"{victim.name} {size}->{size - cut} bytes"
        c.start(i)
        code = await c.wait_exit(i, 3.0)
        if code is None and await c.wait_ready(i, READY_S):
            return f"recovered ({what})"
        code = await c.wait_exit(i, REFUSE_WAIT_S)
        message = c.tail(i, 3).replace("\n", " | ")[-300:]
        clear = "Traceback" not in c.tail(i, 30)
        c.kill(i)
        c.restore_data(i, backup)  # put back the untouched store so the network goes on with n nodes
        c.start(i)
        return f"refused with exit {code} ({'clear' if clear else 'TRACEBACK'}) ({what}): {message}"


def summarize(results: list[dict], skipped: dict[str, str]) -> dict:
    """The campaign's figures."""
    recoveries = [r["recovery_s"] for r in results if "recovery_s" in r]
    recoveries += [r["attack_progress_s"] for r in results if "attack_progress_s" in r]
    return {
        "scenarios": len(results),
        "forks": sum(len(r["forks"]) for r in results),
        "lost": sum(r["lost_count"] for r in results),
        "duplicated": sum(len(r["duplicated"]) for r in results),
        "misplaced": sum(len(r["misplaced"]) for r in results),
        "supply_errors": sum(len(r["supply_errors"]) for r in results),
        "double_signs": sum(len(r["double_signs"]) for r in results),
        "max_recovery_s": max(recoveries, default=0.0),
        "recovery_over_limit": sum(1 for x in recoveries if x > RECOVERY_LIMIT_S),
        "max_startup_s": max((r["startup_s"] for r in results if "startup_s" in r), default=0.0),
        "max_rss_mb": max((mb for r in results for mb in r.get("rss_mb", {}).values()), default=0.0),
        "rss_over_limit": sum(1 for r in results for mb in r.get("rss_mb", {}).values() if mb > RSS_LIMIT_MB),
        "unexpected_exits": sum(len(r["unexpected_exits"]) for r in results),
        "acked_txs": sum(r.get("acked_delta", 0) for r in results),
        "kinds": {k: sum(1 for r in results if r["kind"] == k) for k in sorted({r["kind"] for r in results})},
        "skipped_kinds": skipped,
    }


def as_dict(sc: Scenario) -> dict:
    return asdict(sc)
