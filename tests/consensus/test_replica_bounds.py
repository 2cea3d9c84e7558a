"""Untrusted input: bounds on rounds, heights and buffers; duplicates; equivocation; catch-up."""

from consensus.bodies import compute_body_digest
from consensus.events import (TIMER_PROPOSE, TIMER_ROUND, Decide, ReportEvidence, RequestSync, StartTimer, SyncedTo,
                              TimerExpired, ValidateBlock)
from consensus.messages import Prepare
from tests.consensus.fakenet import Solo, broadcasts, of


def _started(n=4, me=0, **cfg):
    s = Solo(n, me=me, **cfg)
    s.start()
    s.handle(TimerExpired(1, 0, TIMER_PROPOSE))
    return s


def test_round_above_the_cap_is_dropped():
    s = _started(round_cap=10)
    assert s.recv(s.rc(1, 11)) == [] and s.recv(s.rc(2, 11)) == []
    assert s.r.round == 0 and s.r.fault_counts["round_out_of_range"] == 2
    assert s.r.buffered_count() == 0


def test_far_future_height_is_dropped_but_near_future_is_buffered():
    s = _started(max_future_heights=3)
    far = s.block(height=5)
    assert s.recv(s.prepare(1, 0, far.hash, height=5)) == []
    assert s.r.buffered_count() == 0 and s.r.fault_counts["height_too_far"] == 1
    s.recv(s.prepare(1, 0, far.hash, height=4))
    assert s.r.buffered_count() == 1


def test_future_height_buffer_is_bounded_per_signer():
    s = _started(max_buffered_per_signer=5)
    for r in range(20):
        s.recv(s.prepare(1, r, b"\x01" * 32, height=2))
    assert s.r.buffered_count() == 5 and s.r.fault_counts["buffer_full"] == 15
    s.recv(s.prepare(2, 0, b"\x01" * 32, height=2))  # another signer has its own budget
    assert s.r.buffered_count() == 6


def test_future_round_votes_are_bounded_per_signer():
    s = _started(max_buffered_per_signer=4)
    for r in range(1, 30):
        s.recv(s.prepare(1, r, b"\x01" * 32))
        s.recv(s.commit(1, r, b"\x01" * 32))
    assert s.r.buffered_count() == 4


def test_buffered_next_height_messages_are_replayed_after_the_decision():
    s = _started()
    prop = s.proposal(0)
    nxt = s.block(height=2, prev_hash=prop.block.hash)
    prop2 = s.proposal(0, block=nxt, height=2)
    assert s.recv(prop2) == [] and s.r.buffered_count() == 1
    s.accept(prop)
    out = []
    for i in (1, 2, 3):
        out += s.recv(s.prepare(i, 0, prop.block.hash))
    for i in (1, 2, 3):
        out += s.recv(s.commit(i, 0, prop.block.hash))
    decide_at = next(i for i, a in enumerate(out) if isinstance(a, Decide))
    assert ValidateBlock(2, nxt, compute_body_digest(nxt)) in out[decide_at:]
    assert s.r.height == 2 and s.r.buffered_count() == 0


def test_duplicate_messages_are_idempotent():
    s = _started()
    prop = s.proposal(0)
    s.accept(prop)
    p = s.prepare(1, 0, prop.block.hash)
    s.recv(p)
    assert s.recv(p) == [] and s.recv(prop) == []
    rc = s.rc(1, 1)
    s.recv(rc)
    assert s.recv(rc) == [] and s.r.evidence == []


def test_equivocating_prepare_is_kept_as_evidence_reported_once_and_counted_once():
    s = _started(n=4)
    prop = s.proposal(0)
    s.accept(prop)
    first = s.prepare(2, 0, prop.block.hash)
    second = s.prepare(2, 0, b"\x55" * 32)
    s.recv(first)
    out = s.recv(second)
    assert out == [ReportEvidence(first, second)] and s.r.evidence == [(first, second)]
    third = s.prepare(2, 0, b"\x56" * 32)
    assert s.recv(third) == []
    # The first vote still counts: one more PREPARE makes the quorum.
    out = s.recv(s.prepare(3, 0, prop.block.hash))
    assert len(broadcasts(out, Prepare)) == 0 and s.r.prepared_round == 0


def test_equivocating_proposer_is_reported_and_only_its_first_proposal_is_voted():
    s = _started(n=4)
    a = s.proposal(0, block=s.block(salt=1))
    b = s.proposal(0, block=s.block(salt=2))
    out_a = s.accept(a)
    out_b = s.accept(b)
    assert of(out_b, ReportEvidence) == [ReportEvidence(a, b)]
    assert [p.block_hash for p in broadcasts(out_a + out_b, Prepare)] == [a.block.hash]


def test_equivocating_commit_and_round_change_are_evidence():
    s = _started(n=4)
    c1, c2 = s.commit(1, 0, b"\x01" * 32), s.commit(1, 0, b"\x02" * 32)
    s.recv(c1)
    assert of(s.recv(c2), ReportEvidence) == [ReportEvidence(c1, c2)]
    block = s.block(salt=9)
    r1 = s.rc(2, 1)
    r2 = s.prepared_rc(2, 1, block, 0, [0, 1, 3])
    s.recv(r1)
    assert of(s.recv(r2), ReportEvidence) == [ReportEvidence(r1, r2)]
    assert len(s.r.evidence) == 2


def test_forged_signature_never_raises_and_is_counted():
    s = _started()
    good = s.prepare(1, 0, b"\x01" * 32)
    forged = Prepare(good.height, good.round, good.block_hash, good.signer, b"\x02" * 64)
    assert s.recv(forged) == [] and s.r.fault_counts["bad_signature"] == 1
    garbage = Prepare(1, 0, b"", good.signer, b"")
    assert s.recv(garbage) == []


def test_f_plus_one_validators_at_a_higher_height_trigger_one_sync_request():
    s = _started(n=4)  # f = 1
    out = s.recv(s.prepare(1, 0, b"\x01" * 32, height=3))
    assert of(out, RequestSync) == []
    out = s.recv(s.prepare(2, 0, b"\x01" * 32, height=3))
    assert of(out, RequestSync) == [RequestSync(2)]
    out = s.recv(s.prepare(3, 0, b"\x01" * 32, height=3))
    assert of(out, RequestSync) == []  # rate-limited per height


def test_far_future_height_still_counts_towards_sync():
    s = _started(n=4, max_future_heights=2)
    s.recv(s.prepare(1, 0, b"\x01" * 32, height=50))
    out = s.recv(s.prepare(2, 0, b"\x01" * 32, height=60))
    assert of(out, RequestSync) == [RequestSync(49)] and s.r.buffered_count() == 0


def test_synced_to_jumps_past_the_synced_height_and_ignores_old_ones():
    s = _started(block_interval_ms=10)
    out = s.handle(SyncedTo(4, b"\x07" * 32))
    assert s.r.height == 5 and out[0] == StartTimer(5, 0, TIMER_PROPOSE, 10)
    assert s.handle(SyncedTo(3, b"\x08" * 32)) == [] and s.r.height == 5


def test_timer_of_a_left_height_is_ignored():
    s = _started()
    s.handle(SyncedTo(1, b"\x07" * 32))
    assert s.handle(TimerExpired(1, 0, TIMER_ROUND)) == []
    assert s.r.height == 2 and s.r.round == 0


def test_round_timeout_retries_sync_when_a_single_validator_is_ahead():
    s = _started(n=4)  # f + 1 = 2: one validator ahead does not trigger the immediate request
    out = s.recv(s.rc(1, 3, height=2))
    assert of(out, RequestSync) == []
    out = s.handle(TimerExpired(1, 0, TIMER_ROUND))
    assert of(out, RequestSync) == [RequestSync(1)]


def test_a_byzantine_far_future_claim_does_not_mute_the_f_plus_one_sync_trigger():
    s = _started(n=4)
    s.recv(s.prepare(3, 0, b"\x01" * 32, height=1_000_000))  # one signer claims a height nobody has
    assert of(s.handle(TimerExpired(1, 0, TIMER_ROUND)), RequestSync) == [RequestSync(999_999)]
    out = s.recv(s.prepare(1, 0, b"\x01" * 32, height=3))  # an honest validator really is ahead: f+1 with it
    assert of(out, RequestSync) == [RequestSync(2)]


def test_round_timeout_requests_no_sync_when_nobody_is_ahead():
    s = _started(n=4)
    assert of(s.handle(TimerExpired(1, 0, TIMER_ROUND)), RequestSync) == []
