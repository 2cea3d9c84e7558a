"""Restart from the write-ahead record: never a conflicting vote, never a lower round."""

import pytest

from consensus.errors import ConsensusSafetyError, ReplicaMisuse
from consensus.events import TIMER_PROPOSE, Broadcast, Decide, TIMER_ROUND, Persist, Restarted, StartTimer, TimerExpired
from consensus.messages import Commit, Prepare, RoundChange
from consensus.replica import Replica
from consensus.wal import decode_record, encode_record
from tests.consensus.fakenet import Solo, broadcasts, of


def _last_record(actions):
    return of(actions, Persist)[-1].record


def _restarted(s, record):
    """A fresh replica with the same key, restarted from ``record`` after a round trip through the WAL codec."""
    s.r = Replica(s.config, s.keys[s.me], s.height, s.prev_hash)
    return s.start(decode_record(encode_record(record)))


def test_restart_after_prepare_refuses_a_conflicting_proposal_in_the_same_round():
    s = Solo(4)
    s.start()
    a = s.proposal(0, block=s.block(salt=1))
    before = s.accept(a)
    record = _last_record(before)
    out = _restarted(s, record)
    assert out == [StartTimer(1, 0, TIMER_ROUND, 1000), Broadcast(broadcasts(before, Prepare)[0])]
    b = s.proposal(0, block=s.block(salt=2))  # the proposer equivocates after our restart
    assert broadcasts(s.accept(b), Prepare) == []


def test_restart_after_prepare_repeats_the_same_vote_for_the_same_block():
    s = Solo(4)
    s.start()
    a = s.proposal(0, block=s.block(salt=1))
    record = _last_record(s.accept(a))
    _restarted(s, record)
    assert [p.block_hash for p in broadcasts(s.accept(a), Prepare)] == [a.block.hash]


def test_restart_after_commit_keeps_the_prepared_block_for_the_next_round_change():
    s = Solo(4)
    s.start()
    prop = s.proposal(0)
    out = s.accept(prop)
    for i in (1, 2):
        out += s.recv(s.prepare(i, 0, prop.block.hash))
    assert len(broadcasts(out, Commit)) == 1
    record = _last_record(out)
    assert record.commit_votes == ((0, prop.block.hash),)
    _restarted(s, record)
    assert s.r.prepared_round == 0 and s.r.prepared_block == prop.block
    other = s.proposal(0, block=s.block(salt=3))
    assert broadcasts(s.accept(other), Prepare) == []
    out = s.handle(TimerExpired(1, 0, TIMER_ROUND))
    rc = broadcasts(out, RoundChange)[0]
    assert rc.prepared_round == 0 and rc.prepared_block == prop.block and len(rc.prepares) == 3


def test_restart_never_returns_to_a_lower_round():
    s = Solo(4)
    s.start()
    s.handle(TimerExpired(1, 0, TIMER_PROPOSE))
    out = []
    for r in range(3):
        out += s.handle(TimerExpired(1, r, TIMER_ROUND))
    record = _last_record(out)
    assert record.round == 3
    out = _restarted(s, record)
    assert s.r.round == 3 and out == [StartTimer(1, 3, TIMER_ROUND, 8000)]
    assert s.accept(s.proposal(0)) == []  # round 0 is behind us
    assert s.handle(TimerExpired(1, 0, TIMER_ROUND)) == []


def test_restart_from_an_older_height_record_starts_fresh():
    s = Solo(4, height=3)
    old = Solo(4, height=2)
    old.start()
    record = _last_record(old.accept(old.proposal(0)))
    assert s.start(record) == [StartTimer(3, 0, TIMER_PROPOSE, 0)]


def test_record_ahead_of_the_chain_is_a_local_safety_error():
    s = Solo(4, height=1)
    ahead = Solo(4, height=2)
    ahead.start()
    record = _last_record(ahead.accept(ahead.proposal(0)))
    with pytest.raises(ConsensusSafetyError):
        s.start(record)


def test_signing_a_conflicting_prepare_raises_instead_of_signing():
    s = Solo(4)
    s.start()
    a = s.proposal(0)
    s.accept(a)
    with pytest.raises(ConsensusSafetyError, match="already prepared"):
        s.r.safety.sign_prepare(1, 0, b"\x77" * 32)


def test_second_restarted_event_is_refused():
    s = Solo(4)
    s.start()
    with pytest.raises(ReplicaMisuse):
        s.handle(Restarted(None))


def test_restart_after_commit_resends_the_identical_commit_and_still_counts_it():
    s = Solo(4)
    s.start()
    prop = s.proposal(0)
    out = s.accept(prop)
    for i in (1, 2):
        out += s.recv(s.prepare(i, 0, prop.block.hash))
    sent = broadcasts(out, Commit)[0]
    resent = _restarted(s, _last_record(out))
    assert broadcasts(resent, Commit) == [sent]
    out = s.recv(s.commit(1, 0, prop.block.hash)) + s.recv(s.commit(2, 0, prop.block.hash))
    decides = of(out, Decide)
    assert len(decides) == 1 and decides[0].block == prop.block


def test_proposer_restarted_after_broadcasting_never_proposes_a_different_block():
    """Simulator seed 2484: a proposal is persisted before it leaves, so a restart cannot equivocate."""
    from consensus.events import (TIMER_PROPOSE, BlockProposalReady, Broadcast, Persist, Restarted,
                                  RequestBlock, TimerExpired)
    from consensus.messages import Proposal
    from consensus.replica import Replica, ReplicaConfig
    from ledger.block import Block, Header
    from ledger.keys import KeyPair

    keys = [KeyPair.generate() for _ in range(4)]
    config = ReplicaConfig("c", tuple(k.public_key for k in keys))
    me = keys[1]  # proposer(h=1, r=0) = validators[1]
    prev = b"\x00" * 32

    def block(ts):
        return Block(Header("c", 1, prev, ts, me.public_key, 0, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32), ())

    r = Replica(config, me, 1, prev)
    r.handle(Restarted(None))
    assert any(isinstance(a, RequestBlock) for a in r.handle(TimerExpired(1, 0, TIMER_PROPOSE)))
    actions = r.handle(BlockProposalReady(1, 0, block(1000)))
    kinds = [type(a) for a in actions]
    first_proposal = next(i for i, a in enumerate(actions) if isinstance(a, Broadcast)
                          and isinstance(a.message, Proposal))
    assert Persist in kinds[:first_proposal], "the proposal must be persisted before it is broadcast"
    record = [a.record for a in actions[:first_proposal] if isinstance(a, Persist)][-1]

    again = Replica(config, me, 1, prev)
    again.handle(Restarted(record))
    later = again.handle(TimerExpired(1, 0, TIMER_PROPOSE))
    later += again.handle(BlockProposalReady(1, 0, block(2000)))
    assert not any(isinstance(a, RequestBlock) for a in later)
    assert not any(isinstance(a, Broadcast) and isinstance(a.message, Proposal) for a in later)
