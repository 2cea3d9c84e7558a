"""Property: across simulated runs with crashes and restarts, no vote leaves before a record covering it is
persisted, and a validator (restarted or not) never signs two conflicting votes."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.events import Broadcast, Persist, Restarted, SendTo
from consensus.messages import Commit, Prepare, Proposal
from consensus.replica import Replica
from consensus.safety import record_covers
from consensus.sim.scenarios import compute_plan, run_plan

FAULTS = ("drop", "delay", "partition", "crash", "crash_mid", "equivocate", "corrupt_copy", "split_body")


class RecordingReplica:
    """The real replica, with every (event, action list) it returned kept in order for one incarnation."""

    def __init__(self, logs: dict, config, key, height: int, prev_hash: bytes) -> None:
        self.inner = Replica(config, key, height, prev_hash)
        self.log: list = []
        logs.setdefault(key.public_key, []).append(self.log)

    def handle(self, event):
        actions = self.inner.handle(event)
        self.log.append((event, actions))
        return actions

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _vote_key(msg) -> tuple:
    if isinstance(msg, Proposal):
        return ("PROPOSAL", msg.height, msg.round), msg.block.hash
    if isinstance(msg, Prepare):
        return ("PREPARE", msg.height, msg.round), msg.block_hash
    if isinstance(msg, Commit):
        return ("COMMIT", msg.height, msg.round), msg.block_hash
    return ("ROUND-CHANGE", msg.height, msg.round), (msg.prepared_round, msg.prepared_hash)


def check_incarnations(public_key: bytes, incarnations: list[list]) -> None:
    """Every message signed by ``public_key`` follows (in its list or an earlier one of the same incarnation,
    or the record read back at restart) a Persist whose record covers it; no two conflicting votes, ever."""
    signed: dict[tuple, object] = {}
    for log in incarnations:
        durable = None
        for event, actions in log:
            if isinstance(event, Restarted):
                durable = event.record
            for action in actions:
                if isinstance(action, Persist):
                    durable = action.record
                elif isinstance(action, (Broadcast, SendTo)) and action.message.signer == public_key:
                    msg = action.message
                    assert record_covers(durable, msg), f"{type(msg).__name__} h={msg.height} r={msg.round} " \
                                                        f"left without a covering record ({durable})"
                    slot, value = _vote_key(msg)
                    assert signed.setdefault(slot, value) == value, f"conflicting {slot}: {value} vs {signed[slot]}"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.sampled_from([4, 5, 7]), seed=st.integers(min_value=0, max_value=2**32))
def test_no_vote_leaves_unpersisted_and_no_restarted_replica_signs_a_conflicting_vote(n, seed):
    plan = compute_plan(n, seed, FAULTS)
    logs: dict[bytes, list] = {}
    result, sim = run_plan(plan, lambda *a: RecordingReplica(logs, *a))
    assert result.violations == []
    honest = {h.key.public_key for h in sim.hosts if h.honest}
    assert honest and all(logs.get(k) for k in honest)
    for key in honest:
        check_incarnations(key, logs[key])


def test_crash_right_after_persist_restarts_without_a_conflicting_vote():
    """Deterministic companion of the property: seeds whose plans crash honest replicas mid-batch."""
    checked = 0
    for seed in range(60):
        plan = compute_plan(4, seed, ("crash_mid", "drop"))
        if not any(trigger for _, _, _, trigger in plan.crashes):
            continue
        logs: dict[bytes, list] = {}
        result, sim = run_plan(plan, lambda *a: RecordingReplica(logs, *a))
        assert result.violations == []
        for h in sim.hosts:
            if h.honest:
                check_incarnations(h.key.public_key, logs[h.key.public_key])
        checked += sum(len(v) > 1 for k, v in logs.items())
        if checked >= 5:
            break
    assert checked >= 5  # restarts really happened
