"""Rounds above 0: timeouts (R4), the f+1 jump (R5), the new proposer (R6) and justified proposals (R1, R7)."""

from consensus.bodies import compute_body_digest
from consensus.events import (TIMER_PROPOSE, TIMER_ROUND, BlockProposalReady, Persist, RequestBlock, StartTimer,
                              TimerExpired, ValidateBlock)
from consensus.messages import NO_ROUND, Prepare, Proposal, RoundChange
from ledger.block import quorum
from tests.consensus.fakenet import Solo, broadcasts, of


def _started(n=4, me=0, **cfg):
    s = Solo(n, me=me, **cfg)
    s.start()
    s.handle(TimerExpired(1, 0, TIMER_PROPOSE))
    return s


def _prepare_locally(s, round_=0):
    """Make ``s`` prepare the round-``round_`` proposal (accept it + Q-1 PREPAREs)."""
    prop = s.proposal(round_)
    s.accept(prop)
    others = [i for i in range(len(s.validators)) if i != s.me]
    for i in others[:quorum(len(s.validators)) - 1]:
        s.recv(s.prepare(i, round_, prop.block.hash))
    assert s.r.prepared_round == round_
    return prop


def test_timeout_without_prepared_value_sends_empty_round_change_after_persist():
    s = _started(base_timeout_ms=100)
    out = s.handle(TimerExpired(1, 0, TIMER_ROUND))
    rcs = broadcasts(out, RoundChange)
    assert len(rcs) == 1 and rcs[0].round == 1 and rcs[0].prepared_round == NO_ROUND
    assert rcs[0].prepared_block is None and rcs[0].prepares == ()
    assert StartTimer(1, 1, TIMER_ROUND, 200) in out
    kinds = [type(a).__name__ for a in out]
    assert kinds.index("Persist") < kinds.index("Broadcast")
    assert s.r.round == 1


def test_timeout_after_prepare_carries_prepared_block_and_its_prepares():
    s = _started()
    prop = _prepare_locally(s)
    out = s.handle(TimerExpired(1, 0, TIMER_ROUND))
    rc = broadcasts(out, RoundChange)[0]
    assert rc.prepared_round == 0 and rc.prepared_block == prop.block
    assert len(rc.prepares) == quorum(4)
    assert all(p.block_hash == prop.block.hash and p.round == 0 for p in rc.prepares)
    assert of(out, Persist)[0].record.prepared_block == prop.block


def test_timer_durations_double_per_round_and_are_capped():
    s = _started(base_timeout_ms=100, max_timeout_ms=350)
    durations = []
    for r in range(4):
        out = s.handle(TimerExpired(1, r, TIMER_ROUND))
        durations.append(of(out, StartTimer)[0].delay_ms)
    assert durations == [200, 350, 350, 350]


def test_stale_round_timer_is_ignored():
    s = _started()
    s.handle(TimerExpired(1, 0, TIMER_ROUND))
    assert s.handle(TimerExpired(1, 0, TIMER_ROUND)) == []
    assert s.handle(TimerExpired(0, 1, TIMER_ROUND)) == []
    assert s.handle(TimerExpired(1, 1, TIMER_PROPOSE)) == []
    assert s.r.round == 1


def test_f_plus_one_higher_round_changes_jump_to_the_smallest_of_them():
    s = _started(n=4)  # f = 1
    out = s.recv(s.rc(1, 5))
    assert out == [] and s.r.round == 0  # f alone: no jump
    out = s.recv(s.rc(2, 3))
    assert s.r.round == 3
    rcs = broadcasts(out, RoundChange)
    assert [rc.round for rc in rcs] == [3]
    assert StartTimer(1, 3, TIMER_ROUND, 8000) in out


def test_f_round_changes_from_one_signer_never_jump():
    s = _started(n=4)
    s.recv(s.rc(1, 2))
    s.recv(s.rc(1, 3))
    assert s.r.round == 0


def test_quorum_round_changes_without_prepared_value_make_the_proposer_request_a_fresh_block():
    s = _started(n=4, me=2)  # proposer(1, 1) = V[2]
    s.handle(TimerExpired(1, 0, TIMER_ROUND))  # own RC for round 1
    out = s.recv(s.rc(0, 1)) + s.recv(s.rc(1, 1))
    assert RequestBlock(1, 1) in out
    block = s.block(salt=7, round_=1)
    out = s.handle(BlockProposalReady(1, 1, block))
    props = broadcasts(out, Proposal)
    assert len(props) == 1 and props[0].block == block and len(props[0].round_changes) == quorum(4)
    assert of(out, ValidateBlock) == [ValidateBlock(1, block, compute_body_digest(block))]


def test_new_proposer_re_proposes_the_highest_prepared_block_not_its_own():
    s2 = _started(n=4, me=0)  # proposer(1, 3) = V[0]
    old = s2.block(salt=1)
    newer = s2.block(salt=2)
    for r in range(3):
        s2.handle(TimerExpired(1, r, TIMER_ROUND))
    out = s2.recv(s2.prepared_rc(1, 3, old, 0, [1, 2, 3]))
    out += s2.recv(s2.prepared_rc(2, 3, newer, 1, [0, 1, 3]))
    props = broadcasts(out, Proposal)
    assert of(out, RequestBlock) == []
    assert len(props) == 1 and props[0].block == newer
    assert {p.block_hash for p in props[0].prepares} == {newer.hash} and len(props[0].prepares) == 3
    assert any(rc.prepared_round == 1 for rc in props[0].round_changes)


def _justified(s, round_, block, rcs, prepares=()):
    return s.proposal(round_, block=block, rcs=rcs, prepares=prepares)


def test_justified_higher_round_proposal_moves_the_round_and_prepares():
    s = _started(n=4)
    block = s.block(salt=3, round_=2)
    rcs = [s.rc(i, 2) for i in (1, 2, 3)]
    out = s.accept(_justified(s, 2, block, rcs))
    assert s.r.round == 2
    assert [(p.round, p.block_hash) for p in broadcasts(out, Prepare)] == [(2, block.hash)]
    assert StartTimer(1, 2, TIMER_ROUND, 4000) in out


def test_justified_re_proposal_of_the_prepared_block_is_accepted():
    s = _started(n=4)
    prepared = s.block(salt=4)
    rcs = [s.prepared_rc(1, 1, prepared, 0, [1, 2, 3]), s.rc(2, 1), s.rc(3, 1)]
    proof = rcs[0].prepares
    out = s.accept(_justified(s, 1, prepared, rcs, proof))
    assert [p.block_hash for p in broadcasts(out, Prepare)] == [prepared.hash]


def test_re_proposal_of_another_block_than_the_highest_prepared_is_refused():
    s = _started(n=4)
    prepared = s.block(salt=4)
    other = s.block(salt=5)
    rcs = [s.prepared_rc(1, 1, prepared, 0, [1, 2, 3]), s.rc(2, 1), s.rc(3, 1)]
    out = s.accept(_justified(s, 1, other, rcs, rcs[0].prepares))
    assert broadcasts(out, Prepare) == [] and s.r.fault_counts["invalid_proposal"] == 1


def test_re_proposal_must_follow_the_highest_prepared_round_not_a_lower_one():
    s = _started(n=4)
    low = s.block(salt=4)
    high = s.block(salt=5)
    rcs = [s.prepared_rc(1, 2, low, 0, [1, 2, 3]), s.prepared_rc(2, 2, high, 1, [0, 1, 3]), s.rc(3, 2)]
    out = s.accept(_justified(s, 2, low, rcs, rcs[0].prepares))
    assert broadcasts(out, Prepare) == []
    out = s.accept(_justified(s, 2, high, rcs, rcs[1].prepares))
    assert [p.block_hash for p in broadcasts(out, Prepare)] == [high.hash]


def test_justification_with_fewer_than_quorum_round_changes_is_refused():
    s = _started(n=4)
    out = s.accept(_justified(s, 1, s.block(salt=3, round_=1), [s.rc(1, 1), s.rc(2, 1)]))
    assert broadcasts(out, Prepare) == [] and s.r.round == 0


def test_justification_with_a_duplicated_signer_is_refused():
    s = _started(n=4)
    rcs = [s.rc(1, 1), s.rc(2, 1), s.rc(2, 1)]
    assert broadcasts(s.accept(_justified(s, 1, s.block(salt=3, round_=1), rcs)), Prepare) == []


def test_round_change_with_prepared_round_not_below_its_round_is_refused():
    s = _started(n=4)
    block = s.block(salt=4)
    bad = s.prepared_rc(1, 1, block, 1, [1, 2, 3])  # pr == r
    rcs = [bad, s.rc(2, 1), s.rc(3, 1)]
    assert broadcasts(s.accept(_justified(s, 1, block, rcs, bad.prepares)), Prepare) == []
    s.recv(bad)
    assert s.r.fault_counts["invalid_round_change"] == 1


def test_prepared_certificate_for_the_wrong_hash_is_refused():
    s = _started(n=4)
    block = s.block(salt=4)
    wrong = tuple(s.prepare(j, 0, b"\x44" * 32) for j in (1, 2, 3))
    bad = s.rc(1, 1, block, 0, wrong)
    rcs = [bad, s.rc(2, 1), s.rc(3, 1)]
    assert broadcasts(s.accept(_justified(s, 1, block, rcs, wrong)), Prepare) == []


def test_prepared_certificate_with_too_few_prepares_is_refused():
    s = _started(n=4)
    block = s.block(salt=4)
    bad = s.prepared_rc(1, 1, block, 0, [1, 2])
    rcs = [bad, s.rc(2, 1), s.rc(3, 1)]
    assert broadcasts(s.accept(_justified(s, 1, block, rcs, bad.prepares)), Prepare) == []


def test_round_zero_proposal_with_a_justification_is_refused():
    s = _started(n=4)
    prop = s.proposal(0, rcs=[s.rc(1, 1)])
    assert s.accept(prop) == []


def test_old_round_proposal_after_moving_on_is_ignored():
    s = _started(n=4)
    s.handle(TimerExpired(1, 0, TIMER_ROUND))
    assert s.accept(s.proposal(0)) == []
