"""Round 0 at one height: start, proposal, PREPARE quorum, COMMIT quorum, decision."""

import pytest

from consensus.bodies import compute_body_digest
from consensus.errors import ReplicaMisuse
from consensus.events import (TIMER_PROPOSE, TIMER_ROUND, BlockProposalReady, BlockValidated, Decide,
                              MessageReceived, Persist, RequestBlock, StartTimer, TimerExpired, ValidateBlock)
from consensus.messages import Commit, Prepare, Proposal
from ledger.block import quorum, verify_certificate
from tests.consensus.fakenet import CHAIN, Solo, broadcasts, of


def test_fresh_start_only_arms_the_propose_timer_with_the_block_interval():
    s = Solo(4, block_interval_ms=500)
    assert s.start() == [StartTimer(1, 0, TIMER_PROPOSE, 500)]


def test_event_before_restarted_is_refused():
    s = Solo(4)
    with pytest.raises(ReplicaMisuse):
        s.handle(TimerExpired(1, 0, TIMER_ROUND))


def test_propose_timer_starts_round_zero_timer_and_proposer_requests_a_block():
    s = Solo(4, me=1, base_timeout_ms=700)  # proposer(1, 0) = V[1]
    s.start()
    out = s.handle(TimerExpired(1, 0, TIMER_PROPOSE))
    assert out == [StartTimer(1, 0, TIMER_ROUND, 700), RequestBlock(1, 0)]


def test_non_proposer_starts_round_timer_without_requesting_a_block():
    s = Solo(4, me=0)
    s.start()
    out = s.handle(TimerExpired(1, 0, TIMER_PROPOSE))
    assert of(out, RequestBlock) == [] and of(out, StartTimer)[0].kind == TIMER_ROUND


def test_own_block_is_signed_broadcast_and_validated_like_any_proposal():
    s = Solo(4, me=1)
    s.start()
    s.handle(TimerExpired(1, 0, TIMER_PROPOSE))
    block = s.block()
    out = s.handle(BlockProposalReady(1, 0, block))
    props = broadcasts(out, Proposal)
    assert len(props) == 1 and props[0].block == block and props[0].signer == s.validators[1]
    assert of(out, ValidateBlock) == [ValidateBlock(1, block, compute_body_digest(block))]
    assert broadcasts(out, Prepare) == []  # not before the block is validated
    out = s.handle(BlockValidated(1, block.hash, True))
    assert [p.block_hash for p in broadcasts(out, Prepare)] == [block.hash]


def test_round_zero_proposal_accepted_sends_persisted_prepare():
    s = Solo(4)
    s.start()
    prop = s.proposal(0)
    out = s.accept(prop)
    prepares = broadcasts(out, Prepare)
    assert [(p.height, p.round, p.block_hash) for p in prepares] == [(1, 0, prop.block.hash)]
    persist_at = next(i for i, a in enumerate(out) if isinstance(a, Persist))
    prepare_at = next(i for i, a in enumerate(out) if getattr(a, "message", None) == prepares[0])
    assert persist_at < prepare_at
    assert of(out, Persist)[0].record.prepare_votes == ((0, prop.block.hash),)


def test_proposal_from_the_wrong_proposer_is_refused():
    s = Solo(4)
    s.start()
    wrong = s.proposal(0, signer=2)  # proposer(1, 0) is V[1]
    out = s.accept(wrong)
    assert out == [] and s.r.fault_counts["invalid_proposal"] == 1


def test_proposal_with_a_forged_signature_is_refused():
    s = Solo(4)
    s.start()
    prop = s.proposal(0)
    forged = Proposal(prop.height, prop.round, prop.block, (), (), prop.signer, b"\x01" * 64)
    assert s.accept(forged) == [] and s.r.fault_counts["invalid_proposal"] == 1


def test_proposal_for_another_parent_is_refused():
    s = Solo(4)
    s.start()
    prop = s.proposal(0, block=s.block(prev_hash=b"\x09" * 32))
    assert s.accept(prop) == []


def test_invalid_block_is_dropped_and_never_revalidated():
    s = Solo(4)
    s.start()
    prop = s.proposal(0)
    out = s.recv(prop)
    assert len(of(out, ValidateBlock)) == 1
    out = s.handle(BlockValidated(1, prop.block.hash, False))
    assert broadcasts(out, Prepare) == [] and s.r.fault_counts["invalid_block"] == 1
    assert s.recv(prop) == []


def test_block_is_validated_once_per_hash():
    s = Solo(4)
    s.start()
    prop = s.proposal(0)
    first = s.recv(prop)
    second = s.recv(prop)
    assert len(of(first, ValidateBlock)) == 1 and of(second, ValidateBlock) == []


def _prepared(s, n_prepares):
    """Accept the round-0 proposal and deliver PREPAREs from the first other validators."""
    prop = s.proposal(0)
    out = s.accept(prop)
    others = [i for i in range(len(s.validators)) if i != s.me]
    for i in others[:n_prepares]:
        out += s.recv(s.prepare(i, 0, prop.block.hash))
    return prop, out


def test_quorum_prepare_persists_prepared_state_before_commit():
    s = Solo(4)
    s.start()
    prop, out = _prepared(s, quorum(4) - 1)  # + own PREPARE = Q
    commits = broadcasts(out, Commit)
    assert len(commits) == 1
    commit_at = next(i for i, a in enumerate(out) if getattr(a, "message", None) == commits[0])
    persists = [(i, a) for i, a in enumerate(out) if isinstance(a, Persist)]
    last_persist_at, rec = persists[-1]
    assert last_persist_at == commit_at - 1
    assert rec.record.prepared_round == 0 and rec.record.prepared_block == prop.block
    assert rec.record.commit_votes == ((0, prop.block.hash),)
    assert len(rec.record.prepared_proof) == quorum(4)


def test_one_short_of_prepare_quorum_sends_no_commit():
    s = Solo(4)
    s.start()
    _, out = _prepared(s, quorum(4) - 2)
    assert broadcasts(out, Commit) == []


def test_prepares_for_another_hash_do_not_count():
    s = Solo(4)
    s.start()
    prop = s.proposal(0)
    s.accept(prop)
    out = []
    for i in (1, 2, 3):
        out += s.recv(s.prepare(i, 0, b"\x33" * 32))
    assert broadcasts(out, Commit) == []


def test_quorum_commit_decides_with_exactly_quorum_seals_and_moves_to_next_height():
    s = Solo(4, block_interval_ms=250)
    s.start()
    prop, _ = _prepared(s, 2)
    out = []
    for i in (1, 2, 3):
        out += s.recv(s.commit(i, 0, prop.block.hash))
    decides = of(out, Decide)
    assert len(decides) == 1
    d = decides[0]
    assert d.block == prop.block and d.round == 0 and len(d.seals) == quorum(4)
    assert len({x.validator for x in d.seals}) == quorum(4)
    verify_certificate(CHAIN, 1, prop.block.hash, d.seals, s.validators)
    assert s.r.height == 2 and s.r.round == 0
    after = out[out.index(d) + 1:]
    assert StartTimer(2, 0, TIMER_PROPOSE, 250) in after


@pytest.mark.parametrize("n", [5, 6, 8])  # n = 7: 2f+1 = Q = 5, no gap
def test_two_f_plus_one_commits_do_not_decide_when_quorum_is_larger(n):
    s = Solo(n)
    f = (n - 1) // 3
    assert 2 * f + 1 < quorum(n)
    s.start()
    prop, _ = _prepared(s, n - 1)  # everyone prepared; own COMMIT already counted
    out = []
    others = [i for i in range(n) if i != s.me]
    for i in others[:2 * f]:  # own + 2f = 2f + 1 commits
        out += s.recv(s.commit(i, 0, prop.block.hash))
    assert of(out, Decide) == [] and s.r.height == 1
    for i in others[2 * f:quorum(n) - 1]:
        out += s.recv(s.commit(i, 0, prop.block.hash))
    decides = of(out, Decide)
    assert len(decides) == 1 and len(decides[0].seals) == quorum(n)


@pytest.mark.parametrize("n", [5, 6, 8])  # n = 7: 2f+1 = Q = 5, no gap
def test_two_f_plus_one_prepares_do_not_commit_when_quorum_is_larger(n):
    s = Solo(n)
    s.start()
    f = (n - 1) // 3
    _, out = _prepared(s, 2 * f)  # own + 2f = 2f + 1 prepares
    assert broadcasts(out, Commit) == []


def test_commits_from_non_members_do_not_count():
    s = Solo(4)
    s.start()
    prop, _ = _prepared(s, 2)
    outsider = Solo(5)  # V[4] of a 5-set is not in the 4-set
    out = s.recv(outsider.commit(4, 0, prop.block.hash))
    out += s.recv(s.commit(1, 0, prop.block.hash))
    assert of(out, Decide) == [] and s.r.fault_counts["unknown_signer"] == 1


def test_commit_quorum_before_the_proposal_decides_once_the_block_is_validated():
    s = Solo(4)
    s.start()
    prop = s.proposal(0)
    for i in (1, 2, 3):
        assert of(s.recv(s.commit(i, 0, prop.block.hash)), Decide) == []
    out = s.accept(prop)
    decides = of(out, Decide)
    assert len(decides) == 1 and decides[0].block == prop.block


def test_commit_with_a_bad_seal_is_dropped():
    s = Solo(4)
    s.start()
    prop, _ = _prepared(s, 2)
    good = s.commit(1, 0, prop.block.hash)
    bad = Commit(good.height, good.round, good.block_hash, b"\x00" * 64, good.signer, good.signature)
    assert s.recv(bad) == [] and s.r.fault_counts["bad_signature"] == 1


def test_message_received_wrapper_is_the_same_as_recv():
    s = Solo(4)
    s.start()
    prop = s.proposal(0)
    assert of(s.handle(MessageReceived(prop)), ValidateBlock) == [
        ValidateBlock(1, prop.block, compute_body_digest(prop.block))]
