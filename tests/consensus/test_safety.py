"""SafetyRules: the one signer of votes; persist comes with every vote; rounds never go down; repeats are free."""

import pytest

from consensus.errors import ConsensusSafetyError
from consensus.events import Broadcast, Persist
from consensus.messages import NO_ROUND, RoundChange
from consensus.safety import SafetyRules, record_covers
from tests.consensus.fakenet import CHAIN, make_block, make_keys

KEYS = make_keys(4)
VALIDATORS = tuple(k.public_key for k in KEYS)
A = make_block(1, b"\x00" * 32, VALIDATORS[1], VALIDATORS, salt=1)
B = make_block(1, b"\x00" * 32, VALIDATORS[1], VALIDATORS, salt=2)


def _rules(height: int = 1) -> SafetyRules:
    return SafetyRules(KEYS[0], CHAIN, height)


def _persist_then_send(vote) -> tuple:
    """(record, message) of a vote's actions, asserting the Persist comes first and covers the message."""
    persist, send = vote.actions
    assert isinstance(persist, Persist) and isinstance(send, Broadcast) and send.message == vote.message
    assert record_covers(persist.record, vote.message)
    return persist.record, send.message


def test_every_kind_of_vote_leaves_with_the_persist_of_a_record_that_covers_it():
    s = _rules()
    _persist_then_send(s.sign_proposal(1, 0, A))
    _persist_then_send(s.sign_prepare(1, 0, A.hash))
    record, _ = _persist_then_send(s.sign_commit(1, 0, A, ()))
    assert record.prepared_round == 0 and record.prepared_block == A
    record, rc = _persist_then_send(s.sign_round_change(1, 1))
    assert isinstance(rc, RoundChange) and rc.prepared_block == A and record.round == 1


def test_round_change_carrying_a_prepared_value_is_persisted_with_that_value_before_it_leaves():
    """Celo #396: the ROUND-CHANGE's prepared value is in the record written before it is sent."""
    s = _rules()
    s.sign_prepare(1, 0, A.hash)
    s.sign_commit(1, 0, A, ())
    record, rc = _persist_then_send(s.sign_round_change(1, 3))
    assert (record.prepared_round, record.prepared_block) == (rc.prepared_round, rc.prepared_block) == (0, A)


def test_second_prepare_for_another_block_in_the_same_round_is_refused():
    s = _rules()
    s.sign_prepare(1, 0, A.hash)
    with pytest.raises(ConsensusSafetyError, match="already prepared"):
        s.sign_prepare(1, 0, B.hash)


def test_second_proposal_for_another_block_in_the_same_round_is_refused():
    s = _rules()
    s.sign_proposal(1, 2, A)
    with pytest.raises(ConsensusSafetyError, match="already proposed"):
        s.sign_proposal(1, 2, B)


def test_vote_for_a_round_below_the_last_voted_round_names_both_rounds():
    s = _rules()
    s.sign_round_change(1, 7)
    with pytest.raises(ConsensusSafetyError, match="round 5 is below last voted round 7"):
        s.sign_prepare(1, 5, A.hash)
    with pytest.raises(ConsensusSafetyError, match="round 5 is below last voted round 7"):
        s.sign_round_change(1, 5)


def test_commit_without_a_prepare_for_that_block_in_that_round_is_refused():
    s = _rules()
    s.sign_prepare(1, 0, A.hash)
    with pytest.raises(ConsensusSafetyError, match="expected a PREPARE for it"):
        s.sign_commit(1, 0, B, ())


def test_round_change_for_the_round_a_value_was_prepared_in_is_refused():
    s = _rules()
    s.sign_round_change(1, 2)
    s.sign_prepare(1, 2, A.hash)
    s.sign_commit(1, 2, A, ())
    with pytest.raises(ConsensusSafetyError, match="expected a prepared round below it"):
        s.sign_round_change(1, 2)


def test_vote_for_another_height_is_refused():
    with pytest.raises(ConsensusSafetyError, match="height 2; the record is at height 1"):
        _rules().sign_prepare(2, 0, A.hash)


def test_repeated_request_is_answered_from_the_record_with_the_same_message_and_no_new_persist():
    s = _rules()
    first = s.sign_prepare(1, 0, A.hash)
    again = s.sign_prepare(1, 0, A.hash)
    assert again.message == first.message and again.actions == (Broadcast(first.message),)


def test_restored_record_is_durable_and_its_votes_are_resent_unchanged():
    s = _rules()
    s.sign_prepare(1, 0, A.hash)
    sent = s.sign_commit(1, 0, A, ()).message
    back = _rules()
    back.restore(s.record)
    resent = back.resend_current_round()
    assert [v.message for v in resent][-1] == sent
    assert all(v.actions == (Broadcast(v.message),) for v in resent)  # the restored record is on disk already
    with pytest.raises(ConsensusSafetyError):
        back.sign_prepare(1, 0, B.hash)


def test_restored_replica_never_returns_to_a_lower_round():
    s = _rules()
    s.sign_round_change(1, 4)
    back = _rules()
    back.restore(s.record)
    with pytest.raises(ConsensusSafetyError, match="round 2 is below last voted round 4"):
        back.sign_prepare(1, 2, A.hash)
    with pytest.raises(ConsensusSafetyError, match="expected a round above the current round 4"):
        back.enter_round(3)


def test_new_height_starts_with_an_empty_record_and_a_fresh_persist():
    s = _rules()
    s.sign_prepare(1, 0, A.hash)
    s.start_height(2)
    assert (s.record.height, s.record.round, s.record.prepared_round, s.record.prepare_votes) == (2, 0, NO_ROUND, ())
    nxt = make_block(2, A.hash, VALIDATORS[2], VALIDATORS)
    record, _ = _persist_then_send(s.sign_prepare(2, 0, nxt.hash))
    assert record.height == 2


def test_record_covers_refuses_a_vote_it_does_not_hold():
    s = _rules()
    record, _ = _persist_then_send(s.sign_prepare(1, 0, A.hash))
    other = _rules()
    foreign = other.sign_prepare(1, 0, B.hash).message
    assert not record_covers(record, foreign) and not record_covers(None, foreign)


def test_reproposal_whose_prepares_name_another_block_is_refused():
    s = _rules()
    prep = SafetyRules(KEYS[1], CHAIN, 1).sign_prepare(1, 0, B.hash).message
    with pytest.raises(ConsensusSafetyError, match="expected PREPAREs for the proposed block"):
        s.sign_proposal(1, 1, A, (), (prep,))

