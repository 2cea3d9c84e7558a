"""Seeded deterministic fault simulator for the consensus core (the core never imports this package).

Run it: ``python -m consensus.sim --validators 4,5,7,10 --seeds 100 --faults all --json``. In code:
``run_scenario(n, seed, faults)`` or ``run_plan(compute_plan(...))``; see ``scenarios`` for how a seed
becomes a fault plan, ``network`` for the virtual clock and links, ``invariants`` for what is checked.
"""

from consensus.sim.invariants import InvariantChecker, Violation
from consensus.sim.scenarios import (ALL_FAULTS, FaultPlan, ScenarioResult, compute_plan, parse_faults, run_plan,
                                     run_scenario)

__all__ = ["ALL_FAULTS", "FaultPlan", "InvariantChecker", "ScenarioResult", "Violation", "compute_plan",
           "parse_faults", "run_plan", "run_scenario"]
