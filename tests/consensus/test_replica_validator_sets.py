"""Validator-set changes: decided in block H, the new set validates from H + 2; every count, quorum, proposer and
certificate uses the set in force at the message's own height."""

import pytest
from hypothesis import given, settings, strategies as st

from consensus import rules
from consensus.errors import ConsensusSafetyError, ReplicaMisuse
from consensus.events import (TIMER_PROPOSE, TIMER_ROUND, BlockValidated, Decide, MessageReceived, Restarted,
                              TimerExpired, ValidateBlock, ValidatorSetScheduled)
from consensus.messages import Commit, Prepare, RoundChange, sign_commit, sign_prepare, sign_proposal, \
    sign_round_change
from consensus.replica import Replica, ReplicaConfig
from consensus.schedule import ValidatorSchedule
from ledger.block import verify_certificate
from tests.consensus.fakenet import CHAIN, FakeNet, broadcasts, make_block, make_keys, of

KEYS = make_keys(5)
PK = tuple(k.public_key for k in KEYS)
V4 = PK[:4]
V5 = PK[:5]
SWAP = (PK[0], PK[1], PK[2], PK[4])  # k3 removed, k4 added
H = 5                                 # block H decides the change; it is in force from H + 2 = 7
PREV = b"\x07" * 32


class Node:
    """One replica (key ``me``) started at ``height`` with the genesis set ``genesis`` and the sets given."""

    def __init__(self, me: int, height: int, genesis=V4, sets=()) -> None:
        self.me = me
        self.r = Replica(ReplicaConfig(CHAIN, genesis), KEYS[me], height, PREV)
        self.prev = PREV
        self.out = self.r.handle(Restarted(None, tuple(ValidatorSetScheduled(h, v) for h, v in sets)))

    def feed(self, event) -> list:
        out = self.r.handle(event)
        self.out += out
        return out

    def recv(self, msg) -> list:
        out = self.feed(MessageReceived(msg))
        for a in list(out):
            if isinstance(a, ValidateBlock):
                out += self.feed(BlockValidated(a.height, a.block.hash, True))
        return out

    def proposal(self, round_: int = 0, salt: int = 0):
        h = self.r.height
        signer = PK.index(self.r.proposer(h, round_))
        block = make_block(h, self.prev, PK[signer], self.r.validator_set(h).validators, salt)
        return sign_proposal(KEYS[signer], CHAIN, h, round_, block, (), ())

    def decide_with(self, signers, round_: int = 0) -> Decide:
        """Deliver the proposal of (height, round_) and COMMITs by ``signers``; return the Decide."""
        prop = self.proposal(round_)
        self.recv(prop)
        out = []
        for i in signers:
            out += self.recv(sign_commit(KEYS[i], CHAIN, prop.height, round_, prop.block.hash))
        decided = of(out, Decide)
        assert len(decided) == 1, f"no decision at height {prop.height} with commits by {signers}"
        self.prev = decided[0].block.hash
        return decided[0]


# ---- the schedule (rules with per-height sets) ------------------------------------------------------------

def test_quorum_grows_from_3_to_4_from_h_plus_2_when_a_fifth_validator_joins():
    s = ValidatorSchedule(V4)
    assert s.schedule(H + 2, V5, started_through=H + 1)
    assert [s.at(h).q for h in (1, H, H + 1, H + 2, H + 9)] == [3, 3, 3, 4, 4]
    assert [s.at(h).f for h in (H + 1, H + 2)] == [1, 1]


def test_proposer_rotation_uses_the_new_set_from_h_plus_2():
    s = ValidatorSchedule(V4)
    s.schedule(H + 2, V5, started_through=H + 1)
    assert s.at(H + 1).proposer(H + 1, 0) == V4[(H + 1) % 4]
    assert s.at(H + 2).proposer(H + 2, 0) == V5[(H + 2) % 5] != V4[(H + 2) % 4]
    assert s.at(H + 2).proposer(H + 2, 3) == rules.get_proposer(V5, H + 2, 3)


def test_scheduling_the_set_already_in_force_changes_nothing():
    s = ValidatorSchedule(V4)
    assert not s.schedule(H + 2, V4, started_through=H + 1)
    assert s.change_points() == ((0, V4),)


def test_a_change_for_a_height_already_started_is_refused_naming_both_sets():
    r = Node(0, H + 2).r
    with pytest.raises(ReplicaMisuse, match=f"scheduled for height {H + 2}, which has already started"):
        r.handle(ValidatorSetScheduled(H + 2, V5))
    r.handle(ValidatorSetScheduled(H + 2, V4))  # the set in force: a no-op, not an error
    assert r.validator_set(H + 2).validators == V4


# ---- the replica ----------------------------------------------------------------------------------------

def test_a_replica_restarted_at_h_plus_1_knows_both_sets():
    node = Node(0, H + 1, sets=[(H + 1, V4), (H + 2, V5)])
    assert node.r.validator_set(H + 1).q == 3 and node.r.validator_set(H + 2).q == 4
    assert node.r.proposer(H + 2, 0) == V5[(H + 2) % 5]


def test_quorum_is_three_commits_at_h_plus_1_and_four_at_h_plus_2():
    node = Node(0, H + 1, sets=[(H + 2, V5)])
    node.decide_with([1, 2, 3])  # Q(4) = 3 at H + 1
    prop = node.proposal()
    node.recv(prop)
    out = []
    for i in (1, 2, 3):
        out += node.recv(sign_commit(KEYS[i], CHAIN, H + 2, 0, prop.block.hash))
    assert of(out, Decide) == [] and node.r.height == H + 2  # 3 is no longer a quorum
    out = node.recv(sign_commit(KEYS[4], CHAIN, H + 2, 0, prop.block.hash))
    d = of(out, Decide)[0]
    verify_certificate(CHAIN, H + 2, d.block.hash, d.seals, V5)
    assert len(d.seals) == 4


def test_added_validator_votes_from_h_plus_2_not_before():
    node = Node(4, H + 1, sets=[(H + 2, V5)])
    prop = node.proposal()
    out = node.recv(prop)
    assert broadcasts(out, Prepare) == [] and not node.r.is_member
    out = node.feed(TimerExpired(H + 1, 0, TIMER_PROPOSE)) + node.feed(TimerExpired(H + 1, 0, TIMER_ROUND))
    assert broadcasts(out, RoundChange) == []  # a follower has no vote to change rounds with
    node.decide_with([0, 1, 2])  # it follows: decides H + 1 from the old set's COMMITs
    assert node.r.height == H + 2 and node.r.is_member
    prop = node.proposal()
    out = node.recv(prop)
    assert [p.block_hash for p in broadcasts(out, Prepare)] == [prop.block.hash]
    out = []
    for i in (0, 1, 2):
        out += node.recv(sign_prepare(KEYS[i], CHAIN, H + 2, 0, prop.block.hash))
    assert [c.block_hash for c in broadcasts(out, Commit)] == [prop.block.hash]
    assert min(a.message.height for a in node.out if hasattr(a, "message")) == H + 2  # nothing signed before


def test_removed_validator_cannot_seal_after_change():
    node = Node(3, H + 1, genesis=V4, sets=[(H + 2, SWAP)])
    prop = node.proposal()
    out = node.recv(prop)
    assert len(broadcasts(out, Prepare)) == 1  # still a member at H + 1: it votes there
    node.decide_with([0, 1, 2])
    assert node.r.height == H + 2 and not node.r.is_member
    prop = node.proposal()
    out = node.recv(prop)
    for i in (0, 1, 2, 4):
        out += node.recv(sign_prepare(KEYS[i], CHAIN, H + 2, 0, prop.block.hash))
    out += node.feed(TimerExpired(H + 2, 0, TIMER_ROUND))
    signed = [a.message for a in out if hasattr(a, "message") and a.message.signer == PK[3]]
    assert signed == []
    # The safety rules refuse it too, whoever asks: the seal of a removed validator never exists.
    with pytest.raises(ConsensusSafetyError, match=f"at height {H + 2} by {PK[3].hex()[:16]}, which is not in"):
        node.r.safety.sign_commit(H + 2, 0, prop.block, ())
    with pytest.raises(ConsensusSafetyError, match="not in the validator set"):
        node.r.safety.sign_round_change(H + 2, 1)


def test_certificate_from_old_set_refused_after_change():
    node = Node(0, H + 1, sets=[(H + 2, SWAP)])
    node.decide_with([1, 2, 3])  # k3 still seals H + 1 (the last height the old set seals)
    prop = node.proposal()
    out = node.recv(prop)
    for i in (1, 2, 3):  # a quorum of the old set, k3 removed since H + 2
        out += node.recv(sign_commit(KEYS[i], CHAIN, H + 2, 0, prop.block.hash))
    assert of(out, Decide) == [] and node.r.fault_counts["unknown_signer"] == 1
    out = node.recv(sign_commit(KEYS[4], CHAIN, H + 2, 0, prop.block.hash))
    d = of(out, Decide)[0]
    assert {s.validator for s in d.seals} <= set(SWAP) and PK[3] not in {s.validator for s in d.seals}
    verify_certificate(CHAIN, H + 2, d.block.hash, d.seals, SWAP)


def test_prepared_certificate_of_the_old_quorum_size_is_refused_after_growth():
    node = Node(0, H + 2, sets=[(H + 2, V5)])
    block = make_block(H + 2, PREV, V5[(H + 2) % 5], V5)
    proof = tuple(sign_prepare(KEYS[i], CHAIN, H + 2, 0, block.hash) for i in (1, 2, 3))  # Q(4), not Q(5)
    rc = sign_round_change(KEYS[1], CHAIN, H + 2, 1, 0, block, proof)
    node.recv(rc)
    assert node.r.fault_counts["invalid_round_change"] == 1


def test_future_height_messages_are_checked_again_with_the_set_final_at_their_height():
    node = Node(0, H, sets=[])
    early = sign_commit(KEYS[3], CHAIN, H + 2, 0, b"\x09" * 32)
    node.recv(early)  # k3 is in the tentative set of H + 2 (no change known yet): buffered
    assert node.r.buffered_count() == 1
    node.decide_with([1, 2, 3])
    node.feed(ValidatorSetScheduled(H + 2, SWAP))  # block H removed k3
    node.decide_with([1, 2, 3])  # k3 still seals H + 1
    assert node.r.height == H + 2 and node.r.fault_counts["unknown_signer"] == 1 and node.r.buffered_count() == 0


def test_messages_of_an_unknown_joiner_are_not_buffered():
    node = Node(0, H, sets=[])
    node.recv(sign_prepare(KEYS[4], CHAIN, H + 2, 0, b"\x09" * 32))
    assert node.r.buffered_count() == 0 and node.r.fault_counts["unknown_signer"] == 1


# ---- a network through two changes ----------------------------------------------------------------------

def test_four_to_five_to_four_keeps_deciding_with_certificates_of_the_set_in_force():
    # Block 2 adds k4 (in force from 4), block 5 removes k1 (in force from 7).
    net = FakeNet(4, extra=1, changes={2: (0, 1, 2, 3, 4), 5: (0, 2, 3, 4)})
    net.start()
    net.run_until_height(11)
    for i, ds in net.decided.items():
        assert [d.block.height for d in ds] == list(range(1, len(ds) + 1))
        for d in ds:
            verify_certificate(CHAIN, d.block.height, d.block.hash, d.seals, net.set_at(d.block.height))
    tops = {tuple(d.block.hash for d in ds[:10]) for ds in net.decided.values()}
    assert len(tops) == 1  # everyone, followers included, decided the same 10 blocks
    for i, a in net.sent:
        m = getattr(a, "message", None)
        if m is not None and i in (1, 4):
            assert m.signer in net.set_at(m.height), (i, type(m).__name__, m.height)
    assert any(getattr(a, "message", None) is not None and a.message.height == 4 for i, a in net.sent if i == 4)
    assert {s.validator for s in net.decided[0][8].seals} <= set(net.set_at(9)) and PK[1] not in net.set_at(9)


@settings(max_examples=10, deadline=None)
@given(st.sampled_from([(4, 1, {2: (0, 1, 2, 3, 4), 4: (0, 2, 3, 4)}), (5, 0, {1: (0, 1, 3, 4)}),
                        (4, 2, {1: (0, 1, 2, 3, 4, 5), 3: (0, 1, 4, 5)})]), st.data())
def test_any_order_with_drops_and_duplicates_stays_safe_and_live_across_set_changes(case, data):
    n, extra, changes = case
    net = FakeNet(n, extra=extra, changes=changes, base_timeout_ms=50, max_timeout_ms=800)
    net.start()
    for _ in range(300):  # chaotic phase: reorder, drop and duplicate peer messages, fire timers early
        if net.queue and data.draw(st.integers(0, 9), label="timer?") != 0:
            k = data.draw(st.integers(0, len(net.queue) - 1), label="pick")
            net.queue.rotate(-k)
            i, ev = net.queue.popleft()
            net.queue.rotate(k)
            fate = data.draw(st.integers(0, 9), label="fate") if isinstance(ev, MessageReceived) else 2
            if fate == 0:
                continue  # dropped
            if fate == 1:
                net.queue.append((i, ev))  # duplicated (delivered again later)
            net.deliver(i, ev)
        elif not net.advance(drain=False):
            break
    goal = max(max(r.height for r in net.replicas) + 1, max(changes) + 4)
    net.run_until_height(goal, max_timer_fires=800)
    by_height: dict[int, set[bytes]] = {}
    for ds in net.decided.values():
        for d in ds:
            verify_certificate(CHAIN, d.block.height, d.block.hash, d.seals, net.set_at(d.block.height))
            by_height.setdefault(d.block.height, set()).add(d.block.hash)
    assert all(len(v) == 1 for v in by_height.values()), by_height
    for i, a in net.sent:  # nobody signed at a height whose set does not hold its key
        m = getattr(a, "message", None)
        if m is not None:
            assert m.signer in net.set_at(m.height), (i, type(m).__name__, m.height)
