"""The voting rules as pure functions (consensus.rules), one behaviour per test."""

import pytest

from consensus import rules
from consensus.messages import NO_ROUND, verify_message
from tests.consensus.fakenet import CHAIN, Solo


def _verify(msg):
    return verify_message(CHAIN, msg)


@pytest.fixture()
def s():
    return Solo(4)


@pytest.mark.parametrize("n, q, f", [(1, 1, 0), (3, 2, 0), (4, 3, 1), (5, 4, 1), (6, 4, 1), (7, 5, 2),
                                     (8, 6, 2), (10, 7, 3), (16, 11, 5)])
def test_quorum_is_ceil_two_thirds_and_f_is_a_third(n, q, f):
    assert rules.compute_quorum(n) == q and rules.compute_max_faulty(n) == f


def test_proposer_rotates_with_height_plus_round():
    v = (b"a", b"b", b"c", b"d")
    assert [rules.get_proposer(v, 1, r) for r in range(5)] == [b"b", b"c", b"d", b"a", b"b"]
    assert rules.get_proposer(v, 2, 0) == rules.get_proposer(v, 1, 1)


def test_round_timeout_doubles_and_caps_even_for_huge_rounds():
    assert [rules.compute_round_timeout(100, 1000, r) for r in range(5)] == [100, 200, 400, 800, 1000]
    assert rules.compute_round_timeout(100, 1000, 1000) == 1000


def test_prepare_quorum_counts_distinct_member_signers_only(s):
    h = b"\x01" * 32
    members = frozenset(s.validators)
    votes = [s.prepare(0, 0, h), s.prepare(1, 0, h), s.prepare(1, 0, h)]
    assert not rules.has_prepare_quorum(votes, members, 3, 1, 0, h)
    outsider = Solo(5).prepare(4, 0, h)
    assert not rules.has_prepare_quorum(votes + [outsider], members, 3, 1, 0, h)
    assert rules.has_prepare_quorum(votes + [s.prepare(2, 0, h)], members, 3, 1, 0, h)
    assert not rules.has_prepare_quorum(votes + [s.prepare(2, 1, h)], members, 3, 1, 0, h)  # other round


def test_commit_quorum_ignores_votes_for_other_blocks(s):
    h, other = b"\x01" * 32, b"\x02" * 32
    votes = [s.commit(0, 0, h), s.commit(1, 0, h), s.commit(2, 0, other)]
    assert not rules.has_commit_quorum(votes, frozenset(s.validators), 3, 1, 0, h)


def test_commit_seals_are_exactly_quorum_in_validator_order(s):
    h = b"\x01" * 32
    votes = [s.commit(i, 0, h) for i in (3, 1, 0, 2)]
    seals = rules.select_commit_seals(votes, s.validators, h, 3)
    assert [x.validator for x in seals] == list(s.validators[:3])


def test_f_plus_one_jump_picks_the_smallest_higher_round():
    latest = {b"a": 4, b"b": 9, b"c": 1}
    members = {b"a", b"b", b"c", b"d"}
    assert rules.f_plus_one_jump_round(latest, members, 1, 1) == 4
    assert rules.f_plus_one_jump_round(latest, members, 4, 1) is None
    assert rules.f_plus_one_jump_round({b"x": 5, b"y": 6}, members, 0, 1) is None  # non-members


def test_highest_prepared_takes_the_highest_round(s):
    a, b = s.block(salt=1), s.block(salt=2)
    rcs = [s.rc(0, 3), s.prepared_rc(1, 3, a, 0, [0, 1, 2]), s.prepared_rc(2, 3, b, 2, [0, 1, 2])]
    assert rules.highest_prepared(rcs).prepared_block == b
    assert rules.highest_prepared([s.rc(0, 3)]) is None


def test_valid_round_change_rules(s):
    members, blk = frozenset(s.validators), s.block(salt=1)
    ok = s.prepared_rc(1, 2, blk, 1, [0, 1, 2])
    assert rules.is_valid_round_change(ok, members, 3, 1, 100, _verify)
    assert rules.is_valid_round_change(s.rc(1, 2), members, 3, 1, 100, _verify)
    assert not rules.is_valid_round_change(s.rc(1, 0), members, 3, 1, 100, _verify)  # round 0
    assert not rules.is_valid_round_change(s.rc(1, 101), members, 3, 1, 100, _verify)  # above the cap
    assert not rules.is_valid_round_change(ok, members, 3, 2, 100, _verify)  # other height
    assert not rules.is_valid_round_change(s.prepared_rc(1, 2, blk, 2, [0, 1, 2]), members, 3, 1, 100, _verify)
    dup = s.rc(1, 2, blk, 1, tuple(s.prepare(j, 1, blk.hash) for j in (0, 1, 1)))
    assert not rules.is_valid_round_change(dup, members, 3, 1, 100, _verify)
    half = s.rc(1, 2, None, 1, ())
    assert not rules.is_valid_round_change(half, members, 3, 1, 100, _verify)
    assert s.rc(1, 2).prepared_round == NO_ROUND


def test_prepared_certificate_needs_the_right_round_and_hash(s):
    members, blk = frozenset(s.validators), s.block(salt=1)
    proof = [s.prepare(j, 1, blk.hash) for j in (0, 1, 2)]
    assert rules.is_valid_prepared_certificate(proof, members, 3, 1, 1, blk.hash, _verify)
    assert not rules.is_valid_prepared_certificate(proof, members, 3, 1, 0, blk.hash, _verify)
    assert not rules.is_valid_prepared_certificate(proof, members, 3, 1, 1, b"\x00" * 32, _verify)
    assert not rules.is_valid_prepared_certificate(proof[:2], members, 3, 1, 1, blk.hash, _verify)


def test_justified_proposal_without_prepared_values_allows_any_block(s):
    members = frozenset(s.validators)
    prop = s.proposal(1, block=s.block(salt=8), rcs=[s.rc(i, 1) for i in (0, 1, 2)])
    assert rules.is_justified_proposal(prop, members, 3, 100, _verify)
    stray = s.proposal(1, block=s.block(salt=8), rcs=[s.rc(i, 1) for i in (0, 1, 2)],
                       prepares=[s.prepare(0, 0, b"\x01" * 32)])
    assert not rules.is_justified_proposal(stray, members, 3, 100, _verify)


def test_justification_for_another_round_is_refused(s):
    prop = s.proposal(2, rcs=[s.rc(i, 1) for i in (0, 1, 2)])
    assert not rules.is_justified_proposal(prop, frozenset(s.validators), 3, 100, _verify)


def test_valid_proposal_checks_height_proposer_parent_and_signature(s):
    v = s.validators
    assert rules.is_valid_proposal(s.proposal(0), v, 1, s.prev_hash, 100, _verify)
    assert not rules.is_valid_proposal(s.proposal(0, signer=0), v, 1, s.prev_hash, 100, _verify)
    assert not rules.is_valid_proposal(s.proposal(0), v, 2, s.prev_hash, 100, _verify)
    assert not rules.is_valid_proposal(s.proposal(0), v, 1, b"\x01" * 32, 100, _verify)


def test_choose_justification_always_includes_the_highest_prepared(s):
    blk = s.block(salt=1)
    rcs = {s.validators[i]: s.rc(i, 2) for i in (0, 1, 2)}
    rcs[s.validators[3]] = s.prepared_rc(3, 2, blk, 0, [0, 1, 2])
    chosen, best = rules.choose_justification(rcs, s.validators, 3)
    assert len(chosen) == 3 and best.signer == s.validators[3] and best in chosen
