"""Scenarios: (n, seed) -> a fault plan -> a simulated run -> a result with every invariant checked.

Theory of operation: ``compute_plan(n, seed, faults)`` draws, from ``random.Random(seed)`` only, which of
the enabled faults this scenario uses and when: a heal time (GST) before which links may drop, delay,
reorder and duplicate, partitions come and go (halves, one node isolated, the current proposer isolated)
and honest replicas crash and restart (also right after a Persist or right after sending a COMMIT); up to
f = (n-1)//3 validators are faulty at once, counting byzantine ones (equivocator, twins, silent, a
proposer sending corrupted body copies or a different body to each peer) and
crashed ones together. An outside injector sends forged, far-future and oversized messages. After GST the
network is calm (no drops, no partitions, delays of a few ms, every crashed replica restarted) and every
honest replica must decide ``target_heights`` within ``liveness_bound_ms``; safety invariants are checked
during the whole run (see ``consensus.sim.invariants``). Same (n, seed, faults) -> same run, bit for bit.

``set_change`` adds validator-set changes (``consensus.sim.governance``): a validator added (its host starts
as a follower, from genesis or later by catch-up, and votes from H + 2), one removed, or both; n is the genesis
set's size, faulty validators stay within f of every set used, and the target height moves past the last
change so the new set must decide blocks too. Its draws come from their own stream, so every other fault's
plan for (n, seed) is the same with or without it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.sim.app import FakeApp
from consensus.sim.byzantine import BodyCorrupter, Equivocator, Injector, Silent
from consensus.sim.governance import SET_CHANGE, SetChangePlan, SetTruth, compute_fault_budget, compute_set_change_plan
from consensus.sim.invariants import LIVENESS, InvariantChecker, Violation
from consensus.sim.network import HONEST, Host, LinkModel, Simulation
from ledger.hashing import sha256
from ledger.keys import KeyPair

CHAIN_ID = "carecoin-sim"
NETWORK_FAULTS = ("drop", "delay", "reorder", "duplicate", "partition")
NODE_FAULTS = ("crash", "crash_mid")
BYZANTINE_FAULTS = ("equivocate", "twins", "silent", "corrupt_copy", "split_body")
INJECTED_FAULTS = ("forge", "future", "oversize", "wire")
GOVERNANCE_FAULTS = (SET_CHANGE,)
ALL_FAULTS = NETWORK_FAULTS + NODE_FAULTS + BYZANTINE_FAULTS + INJECTED_FAULTS + GOVERNANCE_FAULTS
BASE_TIMEOUT_MS = 200
MAX_TIMEOUT_MS = 3200
NODE_SYNC_AFTER_MS = 4 * MAX_TIMEOUT_MS  # the node's stall watchdog (node.sync "no block for a while")
BLOCK_INTERVAL_MS = 100  # paces heights so a run does not decide hundreds of blocks before GST
CALM_LINK = LinkModel(0.0, 0.0, 1, 10)


def get_keys(n: int, extra: int = 0) -> list[KeyPair]:
    """Deterministic validator keys for a network of ``n`` (the same in every scenario of that size), plus
    ``extra`` keys of validators that join later."""
    return [KeyPair.from_seed(sha256(b"carecoin-sim-validator/%d/%d" % (n, i))) for i in range(n + extra)]


OUTSIDER = KeyPair.from_seed(sha256(b"carecoin-sim-outsider"))


def parse_faults(text: str) -> tuple[str, ...]:
    """'all' | 'none' | comma list of names from ALL_FAULTS -> the enabled faults (ValueError on unknown)."""
    text = text.strip()
    if text == "all":
        return ALL_FAULTS
    if text in ("none", ""):
        return ()
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [x for x in names if x not in ALL_FAULTS]
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}; expected 'all', 'none' or names from "
                         f"{', '.join(ALL_FAULTS)}")
    return names


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Everything a scenario will do, drawn from its seed before it starts."""

    n: int
    seed: int
    faults: tuple[str, ...]                       # the faults this scenario actually uses
    gst_ms: int                                   # heal time: after it the network is calm
    link: LinkModel                               # the link before GST
    partitions: tuple[tuple[int, int, str], ...]  # (start_ms, end_ms, "halves" | "isolate_one" | "isolate_proposer")
    byzantine: tuple[tuple[int, str], ...]        # (validator index, one of BYZANTINE_FAULTS)
    crashes: tuple[tuple[int, int, int, str], ...]  # (validator index, at_ms, restart_after_ms, trigger)
    injections: tuple[int, ...]                   # times of injector bursts
    injection_kinds: tuple[str, ...]
    wire_p: float
    target_heights: int
    set_change: SetChangePlan | None = None       # validator-set changes (consensus.sim.governance)

    @property
    def fault_budget(self) -> int:
        """f of the smallest-f validator set the scenario uses."""
        return compute_fault_budget(self.n, self.set_change)

    @property
    def faulty_count(self) -> int:
        """Byzantine plus crashed validators (all may be down at once)."""
        return len(self.byzantine) + len(self.crashes)

    def describe(self) -> str:
        """One line a human can read."""
        parts = [f"n={self.n} seed={self.seed} gst={self.gst_ms}ms"]
        if self.byzantine:
            parts.append("byz=" + ",".join(f"{i}:{k}" for i, k in self.byzantine))
        if self.crashes:
            parts.append("crash=" + ",".join(f"{i}@{t}+{d}{'/' + g if g else ''}" for i, t, d, g in self.crashes))
        if self.partitions:
            parts.append("part=" + ",".join(f"{m}[{a},{b})" for a, b, m in self.partitions))
        if self.set_change is not None:
            parts.append(self.set_change.describe())
        parts.append("faults=" + ",".join(self.faults))
        return " ".join(parts)


def compute_plan(n: int, seed: int, enabled: tuple[str, ...], target_heights: int = 3) -> FaultPlan:
    """Draw the fault plan of scenario (n, seed) from the enabled faults (see the module docstring)."""
    rng = random.Random(f"plan/{n}/{seed}")
    use = [f for f in enabled if f != SET_CHANGE and rng.random() < 0.5]
    set_change = compute_set_change_plan(n, seed, 0) if SET_CHANGE in enabled else None
    if set_change is not None:
        use.append(SET_CHANGE)
    gst = rng.randint(200, 1500) if use else 0
    if set_change is not None:
        set_change = compute_set_change_plan(n, seed, gst)  # the same draw, now with the joiner's start time
        target_heights = max(target_heights, set_change.last_effective_height + 2)
    f = compute_fault_budget(n, set_change)
    n_hosts = n + (set_change.extra_hosts if set_change is not None else 0)
    link = LinkModel(0.0, 0.0, 1, 10)
    if "drop" in use:
        link.drop_p = rng.choice((0.05, 0.1, 0.2, 0.4))
    if "duplicate" in use:
        link.dup_p = rng.choice((0.05, 0.2, 0.5))
    if "delay" in use:
        link.min_delay_ms, link.max_delay_ms = rng.choice(((50, 150), (100, 400), (200, 900)))
    if "reorder" in use:
        link.min_delay_ms, link.max_delay_ms = 0, max(link.max_delay_ms, rng.choice((60, 250, 600)))
    partitions = []
    if "partition" in use:
        t = 0
        for _ in range(rng.randint(1, 2)):
            if t >= gst - 1:
                break
            start = min(rng.randint(t, max(t, gst - 100)), gst - 1)
            end = rng.randint(start + 1, gst)
            partitions.append((start, end, rng.choice(("halves", "isolate_one", "isolate_proposer"))))
            t = end
    byz_kinds = [k for k in BYZANTINE_FAULTS if k in use]
    crash_kinds = [k for k in NODE_FAULTS if k in use]
    byzantine = []
    if byz_kinds:  # byzantine and crashed validators share the budget of f
        for i in rng.sample(range(n), rng.randint(0 if crash_kinds else 1, f)):
            kind = rng.choice(byz_kinds)
            if kind == "twins" and any(k == "twins" for _, k in byzantine):
                kind = "equivocate" if "equivocate" in byz_kinds else "silent" if "silent" in byz_kinds else kind
                if kind == "twins":
                    continue
            byzantine.append((i, kind))
    crashes = []
    budget = f - len(byzantine)
    if crash_kinds and budget > 0:
        byz_idx = {i for i, _ in byzantine}
        honest_idx = [i for i in range(n_hosts) if i not in byz_idx]
        for i in rng.sample(honest_idx, rng.randint(1, budget)):
            at = rng.randint(0, max(0, gst - 50))
            restart_after = rng.randint(20, max(20, gst - at))
            trigger = rng.choice(("persist", "commit")) if rng.choice(crash_kinds) == "crash_mid" else ""
            crashes.append((i, at, restart_after, trigger))
    injection_kinds = tuple(k for k in ("forge", "future", "oversize") if k in use)
    injections = ()
    if injection_kinds:
        injections = tuple(sorted(rng.randint(0, gst + 500) for _ in range(rng.randint(1, 4))))
    wire_p = rng.choice((0.1, 0.5)) if "wire" in use else 0.0
    return FaultPlan(n, seed, tuple(use), gst, link, tuple(partitions), tuple(byzantine), tuple(crashes),
                     injections, injection_kinds, wire_p, target_heights, set_change)


@dataclass(slots=True)
class ScenarioResult:
    """What one scenario did and whether every invariant held."""

    n: int
    seed: int
    plan: str
    outcome: str                   # "done" | "time" | "steps" | "idle"
    heights: int                   # the height every honest replica reached
    decisions: int                 # decisions by honest replicas (consensus + sync)
    violations: list[Violation] = field(default_factory=list)
    stalled: bool = False
    liveness_asserted: bool = True
    forks: int = 0
    steps: int = 0
    virtual_ms: int = 0
    messages: int = 0
    max_buffered: int = 0
    evidence: int = 0
    max_round: int = 0
    watchdog_syncs: int = 0
    activity: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"n": self.n, "seed": self.seed, "plan": self.plan, "outcome": self.outcome,
                "heights": self.heights, "decisions": self.decisions, "stalled": self.stalled,
                "forks": self.forks, "violations": [v.to_dict() for v in self.violations],
                "steps": self.steps, "virtual_ms": self.virtual_ms, "messages": self.messages,
                "max_buffered": self.max_buffered, "evidence": self.evidence, "max_round": self.max_round,
                "watchdog_syncs": self.watchdog_syncs, "activity": self.activity}


def default_replica_factory() -> Callable:
    """The real core: ``consensus.replica.Replica`` (imported late so the simulator loads without it)."""
    from consensus.replica import Replica
    return Replica


def make_config(n_keys: list[KeyPair], **overrides):
    """The ReplicaConfig every simulated replica runs with."""
    from consensus.replica import ReplicaConfig
    params = dict(base_timeout_ms=BASE_TIMEOUT_MS, max_timeout_ms=MAX_TIMEOUT_MS,
                  block_interval_ms=BLOCK_INTERVAL_MS,
                  round_cap=1000, max_future_heights=8, max_buffered_per_signer=64)
    params.update(overrides)
    return ReplicaConfig(CHAIN_ID, tuple(k.public_key for k in n_keys), **params)


SIM_WIRE_LIMIT = 256 * 1024  # the frame limit the simulated nodes configure (well above any real message)


def get_wire_limit() -> int | None:
    """The frame limit simulated nodes decode with, or None when ``consensus.wire`` is not there."""
    try:
        from consensus import wire  # noqa: F401
    except ImportError:
        return None
    return SIM_WIRE_LIMIT


def build_simulation(plan: FaultPlan, replica_factory: Callable | None = None, config=None) -> Simulation:
    """Hosts, behaviours, checker and every scheduled fault of ``plan``, ready to ``run``."""
    extra = plan.set_change.extra_hosts if plan.set_change is not None else 0
    keys = get_keys(plan.n, extra)
    validators = tuple(k.public_key for k in keys[:plan.n])
    truth = SetTruth(tuple(k.public_key for k in keys), plan.n, plan.set_change)
    config = config or make_config(keys[:plan.n])
    rng = random.Random(f"run/{plan.n}/{plan.seed}")
    byz = dict(plan.byzantine)
    hosts: list[Host] = []
    for i, key in enumerate(keys):
        role = byz.get(i, HONEST)
        host = Host(i, key, role, FakeApp(CHAIN_ID, validators, salt=b"node%d" % i, sets_at=truth.at))
        if role == "equivocate":
            host.behaviour = Equivocator()
        elif role == "silent":
            host.behaviour = Silent()
        elif role in ("corrupt_copy", "split_body"):
            host.behaviour = BodyCorrupter(split=role == "split_body")
        hosts.append(host)
    for i, kind in plan.byzantine:  # a twin: a second host with the same key, peers split between the two
        if kind != "twins":
            continue
        twin = Host(len(hosts), keys[i], "twins", FakeApp(CHAIN_ID, validators, salt=b"twin%d" % i,
                                                          sets_at=truth.at))
        hosts.append(twin)
        side_a, side_b = {i}, {twin.idx}
        for h in hosts[:len(keys)]:
            if h.idx == i:
                continue
            pick = rng.random()
            if pick < 0.4 or pick >= 0.8:
                side_a.add(h.idx)
            if pick >= 0.4:
                side_b.add(h.idx)
        hosts[i].reachable, twin.reachable = frozenset(side_a), frozenset(side_b)
    honest_keys = frozenset(h.key.public_key for h in hosts if h.honest)
    checker = InvariantChecker(CHAIN_ID, validators, honest_keys,
                               len(truth.all_keys) * config.max_buffered_per_signer, sets_at=truth.at)
    wire_limit = get_wire_limit()
    wire_p = plan.wire_p if wire_limit is not None else 0.0
    sim = Simulation(CHAIN_ID, keys[:plan.n], hosts, config, rng, checker,
                     replica_factory or default_replica_factory(), wire_p=wire_p, max_wire_bytes=wire_limit,
                     sets_at=truth.at, decided_by=truth.decided_by)
    sim.link = LinkModel(plan.link.drop_p, plan.link.dup_p, plan.link.min_delay_ms, plan.link.max_delay_ms)
    _schedule_faults(sim, plan, wire_limit)
    return sim


def _schedule_faults(sim: Simulation, plan: FaultPlan, wire_limit: int | None) -> None:
    for start, end, mode in plan.partitions:
        sim.schedule(start, lambda s, m=mode: _partition(s, m))
        sim.schedule(end, _heal)
    for idx, at, restart_after, trigger in plan.crashes:
        host = sim.hosts[idx]
        if trigger:
            host.crash_trigger, host.crash_trigger_after_ms, host.restart_delay_ms = trigger, at, restart_after
            sim.schedule(plan.gst_ms, lambda s, h=host: _disarm(h))
        else:
            sim.queue.push(at, "crash", (idx, restart_after))
    if plan.injections:
        byz_key = next((sim.hosts[i].key for i, _ in plan.byzantine), None)
        kinds = tuple(k for k in plan.injection_kinds if k != "oversize" or wire_limit is not None)
        sim.injector = Injector(kinds, byz_key, OUTSIDER, wire_limit)
        for t in plan.injections:
            sim.schedule(t, lambda s: s.injector.process_injection(s))
    sim.schedule(plan.gst_ms, _calm)


def _partition(sim: Simulation, mode: str) -> None:
    n_nodes = len(sim.hosts)
    sim.activity["partitions"] += 1
    if mode == "halves":
        order = list(range(n_nodes))
        sim.rng.shuffle(order)
        half = frozenset(order[: n_nodes // 2])
        sim.link.groups = (half, frozenset(range(n_nodes)) - half)
        return
    if mode == "isolate_one":
        victim_key = sim.rng.choice(sim.hosts).key.public_key
    else:  # the proposer of the (height, round) most honest replicas are in
        slots = [(h.replica.height, h.replica.round) for h in sim.hosts if h.honest and h.up]
        if not slots:
            return
        height, round_ = max(set(slots), key=lambda s: (slots.count(s), s))
        in_force = sim.sets_at(height)
        victim_key = in_force[(height + round_) % len(in_force)]
    alone = frozenset(h.idx for h in sim.hosts if h.key.public_key == victim_key)
    sim.link.groups = (alone, frozenset(range(n_nodes)) - alone)


def _heal(sim: Simulation) -> None:
    sim.link.groups = ()


def _disarm(host: Host) -> None:
    host.crash_trigger = ""


def _calm(sim: Simulation) -> None:
    sim.link = LinkModel(CALM_LINK.drop_p, CALM_LINK.dup_p, CALM_LINK.min_delay_ms, CALM_LINK.max_delay_ms)
    for host in sim.hosts:  # every crashed replica is back by GST
        host.crash_trigger = ""
        if not host.up and host.honest:
            sim.start_host(host)


def _get_activity(sim: Simulation) -> dict:
    """How much each fault actually happened in this run (so a sweep can show its faults bit)."""
    out = dict(sim.activity)
    inj = sim.injector
    out["injected"] = inj.injected if inj else 0
    out["oversize_refused"] = inj.oversize_refused if inj else 0
    out["equivocations_sent"] = sum(getattr(h.behaviour, "sent", 0) for h in sim.hosts)
    out["evidence"] = sum(len(h.evidence) for h in sim.hosts)
    return out


def compute_liveness_bound_ms(plan: FaultPlan) -> int:
    """Virtual time after GST within which every honest replica must reach the target height."""
    return plan.target_heights * (plan.fault_budget + 4) * MAX_TIMEOUT_MS


def run_scenario(n: int, seed: int, faults: tuple[str, ...] = ALL_FAULTS, *, target_heights: int = 3,
                 replica_factory: Callable | None = None, max_steps: int = 400_000,
                 node_sync: bool = False) -> ScenarioResult:
    """Run scenario (n, seed) with the enabled faults; every invariant is checked along the way."""
    plan = compute_plan(n, seed, faults, target_heights)
    return run_plan(plan, replica_factory, max_steps, node_sync=node_sync)[0]


def run_plan(plan: FaultPlan, replica_factory: Callable | None = None, max_steps: int = 400_000,
             config=None, node_sync: bool = False) -> tuple[ScenarioResult, Simulation]:
    """Run one fault plan to its goal or bound; return the result and the finished simulation.

    By default only the core's own ``RequestSync`` helps a lagging replica (pure-core liveness);
    ``node_sync=True`` adds the node's stall watchdog (node.sync: "no block committed for a while").
    """
    n, seed = plan.n, plan.seed
    sim = build_simulation(plan, replica_factory, config)
    sim.node_sync_after_ms = NODE_SYNC_AFTER_MS if node_sync else 0
    honest = [h for h in sim.hosts if h.honest]
    target = plan.target_heights
    max_round = [0]

    def note_decide(host: Host, height: int) -> None:
        if host.honest and host.up and host.replica is not None:
            max_round[0] = max(max_round[0], host.app.log[-1].round)

    sim.on_decide = note_decide
    joiner = plan.set_change.joiner if plan.set_change is not None else None
    for host in sim.hosts:
        if host.idx == joiner and plan.set_change.joiner_start_ms > 0:  # joins later: catch-up from genesis
            sim.schedule(plan.set_change.joiner_start_ms, lambda s, h=host: None if h.up else s.start_host(h))
        else:
            sim.start_host(host)

    goal = [target]

    def set_goal(s: Simulation) -> None:  # after GST everyone must also decide one more height than anyone had
        goal[0] = max(target, max(h.app.get_height() for h in honest) + 1)

    sim.schedule(plan.gst_ms, set_goal)

    def done(s: Simulation) -> bool:
        if s.checker.violations:
            return True  # fail fast: the first violation is the one to replay
        return (s.now >= plan.gst_ms
                and all(h.up and h.app.get_height() >= goal[0] for h in honest))

    deadline = plan.gst_ms + compute_liveness_bound_ms(plan)
    outcome = sim.run(done, deadline, max_steps)
    checker = sim.checker
    heights = min(h.app.get_height() for h in honest)
    stalled = outcome != "done"
    asserted = plan.faulty_count <= plan.fault_budget
    violations = list(checker.violations)
    if stalled and asserted:
        violations.append(Violation(LIVENESS, -1, sim.now, f"honest replicas reached height {heights} of "
                                    f"{goal[0]} by {sim.now} ms (GST {plan.gst_ms} ms, stop: {outcome}); heights "
                                    + ",".join(str(h.app.get_height()) for h in honest)))
    result = ScenarioResult(
        n=n, seed=seed, plan=plan.describe(), outcome=outcome, heights=heights,
        decisions=sum(h.app.get_height() for h in honest), violations=violations, stalled=stalled,
        liveness_asserted=asserted, forks=checker.forks, steps=sim.steps, virtual_ms=sim.now,
        messages=sim.messages_sent, max_buffered=checker.max_buffered,
        evidence=sum(len(h.evidence) for h in sim.hosts), max_round=max_round[0],
        watchdog_syncs=sim.watchdog_syncs, activity=_get_activity(sim))
    return result, sim
