"""The simulator with validator-set changes: a validator added (joining from genesis or by catch-up) and one
removed, under the other faults; every certificate is checked against the set in force at its height, and a
core that ignores the changes is caught."""

from __future__ import annotations

import os

from consensus.events import Restarted, ValidatorSetScheduled
from consensus.replica import Replica
from consensus.sim import __main__ as sim_main
from consensus.sim.governance import SetChangePlan, SetTruth
from consensus.sim.invariants import BAD_CERTIFICATE, LIVENESS, NON_MEMBER_VOTE
from consensus.sim.network import LinkModel
from consensus.sim.scenarios import ALL_FAULTS, FaultPlan, compute_plan, get_keys, run_plan
from ledger.block import max_faulty

JOBS = max(1, min(2, os.cpu_count() or 1))


def plan_with_sets(n: int, set_change: SetChangePlan, *, seed: int = 0, gst: int = 0, link=None, byzantine=(),
                   crashes=(), heights: int = 3) -> FaultPlan:
    heights = max(heights, set_change.last_effective_height + 2)
    return FaultPlan(n, seed, ("targeted", "set_change"), gst, link or LinkModel(0.0, 0.0, 1, 10), (),
                     tuple(byzantine), tuple(crashes), (), (), 0.0, heights, set_change)


def sealers_by_height(sim) -> dict[int, set[int]]:
    """Host indices whose seals are in the longest honest log, per height."""
    index = {h.key.public_key: h.idx for h in sim.hosts if h.role != "twins"}
    log = max((h.app.log for h in sim.hosts if h.honest), key=len)
    return {d.block.height: {index[s.validator] for s in d.seals} for d in log}


def test_seeded_scenarios_with_set_changes_keep_every_invariant():
    summary = sim_main.run_many([4, 5, 7], 36, 500, ALL_FAULTS, 3, JOBS, "all")
    with_changes = sum(compute_plan(n, 500 + i, ALL_FAULTS).set_change is not None
                       for i, n in zip(range(36), [4, 5, 7] * 12))
    assert with_changes >= 10  # the sweep really exercised validator-set changes
    assert summary["violations"] == [], summary["violations"][:3]
    assert summary["forks"] == 0 and summary["stalls"] == 0


def test_added_validator_catching_up_late_seals_from_h_plus_2_never_before():
    plan = plan_with_sets(4, SetChangePlan("add", ((2, (0, 1, 2, 3, 4)),), 4, 700), gst=600,
                          link=LinkModel(0.1, 0.0, 1, 40), crashes=[(1, 100, 300, "")])
    result, sim = run_plan(plan)
    assert result.violations == [], result.violations[:2]
    seals = sealers_by_height(sim)
    assert all(4 not in s for h, s in seals.items() if h < 4)
    assert any(4 in s for h, s in seals.items() if h >= 4)
    assert all(len(s) >= 4 for h, s in seals.items() if h >= 4)  # Q(5) = 4 from H + 2 on
    joiner = sim.hosts[4]
    assert any(d.source == "sync" for d in joiner.app.log)  # it started late and caught up
    assert joiner.app.get_height() >= plan.target_heights


def test_removed_validator_stops_sealing_and_keeps_following():
    plan = plan_with_sets(5, SetChangePlan("remove", ((1, (0, 1, 3, 4)),), None, 0), gst=500,
                          link=LinkModel(0.0, 0.0, 1, 60), byzantine=[(4, "equivocate")])
    result, sim = run_plan(plan)
    assert result.violations == [], result.violations[:2]
    seals = sealers_by_height(sim)
    assert any(2 in s for h, s in seals.items() if h <= 2)
    assert all(2 not in s for h, s in seals.items() if h >= 3)
    assert sim.hosts[2].app.get_height() >= plan.target_heights  # the removed validator still follows


def test_four_to_five_to_four_under_a_byzantine_and_a_crash():
    plan = plan_with_sets(4, SetChangePlan("add_remove", ((2, (0, 1, 2, 3, 4)), (4, (0, 2, 3, 4))), 4, 0),
                          gst=800, link=LinkModel(0.05, 0.1, 1, 50), byzantine=[(1, "corrupt_copy")])
    result, sim = run_plan(plan)
    assert result.violations == [], result.violations[:2]
    seals = sealers_by_height(sim)
    assert all(1 not in s for h, s in seals.items() if h >= 6)
    assert result.heights >= 8


def test_fault_plans_stay_within_f_of_every_set_they_use():
    seen = 0
    for n in (4, 5, 7, 10):
        for seed in range(150):
            plan = compute_plan(n, seed, ALL_FAULTS)
            if plan.set_change is None:
                continue
            seen += 1
            keys = tuple(k.public_key for k in get_keys(n, plan.set_change.extra_hosts))
            truth = SetTruth(keys, n, plan.set_change)
            faulty = {keys[i] for i, _ in plan.byzantine} | {keys[c[0]] for c in plan.crashes}
            for _, idx in ((0, tuple(range(n))), *plan.set_change.changes):
                members = {keys[i] for i in idx}
                assert len(faulty & members) <= max_faulty(len(members)), plan.describe()
            assert plan.target_heights >= plan.set_change.last_effective_height + 2
            assert truth.at(plan.set_change.last_effective_height) == tuple(keys[i] for i in
                                                                             plan.set_change.changes[-1][1])
    assert seen > 200


class IgnoresSetChanges(Replica):
    """Test-only broken core: keeps the genesis set for ever."""

    def handle(self, event):
        if isinstance(event, ValidatorSetScheduled):
            return []
        if isinstance(event, Restarted):
            event = Restarted(event.record)
        return super().handle(event)


def test_a_core_that_ignores_set_changes_is_caught():
    kinds = set()
    for kind, change, joiner in (("add", ((1, (0, 1, 2, 3, 4)),), 4), ("remove", ((1, (0, 1, 2, 3)),), None)):
        n = 4 if kind == "add" else 5
        plan = plan_with_sets(n, SetChangePlan(kind, change, joiner, 0))
        result, _ = run_plan(plan, replica_factory=IgnoresSetChanges)
        kinds.update(v.kind for v in result.violations)
    assert kinds & {BAD_CERTIFICATE, NON_MEMBER_VOTE, LIVENESS}, kinds
    assert NON_MEMBER_VOTE in kinds  # the removed validator kept signing
