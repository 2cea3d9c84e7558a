"""The voting rules of round-based PBFT (QBFT.md R1–R7) as small, named, pure functions.

Theory of operation: ``consensus.replica`` keeps the state of one height (round, accepted proposal,
prepared round/block, the messages received) and, after every event, asks these functions whether a rule
fires. Nothing here has state or side effects; signature checks are passed in as ``verify_fn`` so the
replica can cache them. Every count is a count of DISTINCT SIGNERS THAT ARE MEMBERS of the validator set,
never of messages, and the quorum is ``ceil(2n/3)`` (``ledger.block.quorum``), not ``2f + 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

from consensus.messages import NO_ROUND, Commit, Message, Prepare, Proposal, RoundChange
from ledger.block import Block, CommitSeal, max_faulty, quorum

VerifyFn = Callable[[Message], bool]

# Exponent above which base * 2**round is certainly past any sane cap (avoids huge ints for round 1000).
_MAX_SHIFT = 40


def compute_quorum(n: int) -> int:
    """Q = ceil(2n/3) distinct validators."""
    return quorum(n)


def compute_max_faulty(n: int) -> int:
    """f = (n - 1) // 3."""
    return max_faulty(n)


def get_proposer(validators: tuple[bytes, ...], height: int, round_: int) -> bytes:
    """proposer(h, r) = V[(h + r) mod n]."""
    return validators[(height + round_) % len(validators)]


def compute_round_timeout(base_ms: int, max_ms: int, round_: int) -> int:
    """Round r lasts min(base * 2**r, max) milliseconds."""
    if round_ >= _MAX_SHIFT:
        return max_ms
    return min(base_ms * (1 << round_), max_ms)


def count_distinct_members(messages: Iterable[Message], members: Collection[bytes]) -> int:
    """Number of distinct signers among ``messages`` that are members of the set."""
    return len({m.signer for m in messages if m.signer in members})


def is_valid_prepared_certificate(prepares: Iterable[Prepare], members: Collection[bytes], q: int, height: int,
                                  prepared_round: int, block_hash: bytes, verify_fn: VerifyFn) -> bool:
    """A prepared certificate is valid iff:
    - every PREPARE is for (height, prepared_round, block_hash);
    - every signer is a member and appears once (a duplicated signer invalidates the certificate);
    - every signature verifies;
    - there are at least Q of them.
    """
    seen: set[bytes] = set()
    for p in prepares:
        if not isinstance(p, Prepare):
            return False
        if p.height != height or p.round != prepared_round or p.block_hash != block_hash:
            return False
        if p.signer not in members or p.signer in seen:
            return False
        if not verify_fn(p):
            return False
        seen.add(p.signer)
    return len(seen) >= q


def is_valid_round_change(rc: RoundChange, members: Collection[bytes], q: int, height: int, round_cap: int,
                          verify_fn: VerifyFn) -> bool:
    """R7. A ROUND-CHANGE is valid iff:
    - its signer is a member and its signature verifies;
    - it is for ``height`` and 0 < round <= round_cap;
    - prepared round and prepared block are both absent (NO_ROUND, None, no PREPAREs), or both present with
      0 <= prepared_round < round (strictly) and Q valid PREPAREs from distinct members for
      (height, prepared_round, hash(prepared_block)).
    """
    if rc.signer not in members or rc.height != height or not 0 < rc.round <= round_cap:
        return False
    if rc.prepared_block is None:
        if rc.prepared_round != NO_ROUND or rc.prepares:
            return False
    else:
        if not 0 <= rc.prepared_round < rc.round:
            return False
        if rc.prepared_block.height != height:
            return False
        if not is_valid_prepared_certificate(rc.prepares, members, q, height, rc.prepared_round,
                                             rc.prepared_block.hash, verify_fn):
            return False
    return verify_fn(rc)


def highest_prepared(round_changes: Iterable[RoundChange]) -> RoundChange | None:
    """R6. The ROUND-CHANGE carrying the highest prepared round (ties: the first given), or None if none
    carries a prepared value."""
    best: RoundChange | None = None
    for rc in round_changes:
        if rc.prepared_block is not None and (best is None or rc.prepared_round > best.prepared_round):
            best = rc
    return best


def is_justified_proposal(prop: Proposal, members: Collection[bytes], q: int, round_cap: int,
                          verify_fn: VerifyFn) -> bool:
    """R1 justification. A PROPOSAL for (h, r) is justified iff:
    - r == 0: it carries no ROUND-CHANGEs and no PREPAREs;
    - r > 0: it carries ROUND-CHANGEs for (h, r) from at least Q distinct members, no signer twice, each
      valid (R7); and
      - if none carries a prepared value: no PREPAREs are attached and any (valid) block is allowed;
      - otherwise, with pr* the highest prepared round among them: the block is exactly a value prepared at
        pr* by one of them, and the proposal carries Q valid PREPAREs for (h, pr*, hash(block)).
    """
    if prop.round == 0:
        return not prop.round_changes and not prop.prepares
    signers: set[bytes] = set()
    for rc in prop.round_changes:
        if not isinstance(rc, RoundChange) or rc.signer in signers:
            return False
        if rc.height != prop.height or rc.round != prop.round:
            return False
        if not is_valid_round_change(rc, members, q, prop.height, round_cap, verify_fn):
            return False
        signers.add(rc.signer)
    if len(signers) < q:
        return False
    best = highest_prepared(prop.round_changes)
    if best is None:
        return not prop.prepares
    candidates = {rc.prepared_block.hash for rc in prop.round_changes
                  if rc.prepared_block is not None and rc.prepared_round == best.prepared_round}
    if prop.block.hash not in candidates:
        return False
    return is_valid_prepared_certificate(prop.prepares, members, q, prop.height, best.prepared_round,
                                         prop.block.hash, verify_fn)


def is_valid_proposal(prop: Proposal, validators: tuple[bytes, ...], height: int, prev_hash: bytes,
                      round_cap: int, verify_fn: VerifyFn) -> bool:
    """R1 (everything except executing the block, which the node does on ``ValidateBlock``). Valid iff:
    - it is for ``height`` and 0 <= round <= round_cap;
    - its signer is proposer(height, round) and its signature verifies;
    - the block is for ``height`` and its parent is ``prev_hash``;
    - the header's proposer is right (``is_valid_header_proposer``);
    - it is justified (``is_justified_proposal``).
    """
    if prop.height != height or not 0 <= prop.round <= round_cap:
        return False
    if prop.signer != get_proposer(validators, height, prop.round):
        return False
    if prop.block.height != height or prop.block.header.prev_hash != prev_hash:
        return False
    members = frozenset(validators)
    if not is_valid_header_proposer(prop, members):
        return False
    if not verify_fn(prop):
        return False
    return is_justified_proposal(prop, members, compute_quorum(len(validators)), round_cap, verify_fn)


def is_reproposal(prop: Proposal) -> bool:
    """True iff ``prop`` re-proposes a prepared value: it carries the PREPARE certificate of one (R6)."""
    return bool(prop.prepares)


def is_valid_header_proposer(prop: Proposal, members: Collection[bytes]) -> bool:
    """R1, the header's ``proposer`` field. Valid iff:
    - a fresh block (round 0, or a round whose justification carries no prepared value, so no PREPAREs are
      attached): ``header.proposer`` is the signer of the PROPOSAL, i.e. proposer(h, r);
    - a re-proposed prepared block (PREPAREs attached; ``is_justified_proposal`` checks they certify it):
      ``header.proposer`` is a member of V. The block keeps the header it was first proposed with, so its
      proposer is the validator of the round it was first proposed in, not this round's; the Q PREPAREs
      show that honest validators checked the fresh-block rule when it was first proposed.
    """
    if is_reproposal(prop):
        return prop.block.header.proposer in members
    return prop.block.header.proposer == prop.signer


def has_prepare_quorum(prepares: Iterable[Prepare], members: Collection[bytes], q: int, height: int,
                       round_: int, block_hash: bytes) -> bool:
    """R2. True iff PREPAREs for (height, round, block_hash) from at least Q distinct members are given
    (signatures are checked on receipt)."""
    return count_distinct_members(
        (p for p in prepares if p.height == height and p.round == round_ and p.block_hash == block_hash),
        members) >= q


def has_commit_quorum(commits: Iterable[Commit], members: Collection[bytes], q: int, height: int, round_: int,
                      block_hash: bytes) -> bool:
    """R3. True iff COMMITs for (height, round, block_hash) from at least Q distinct members are given
    (signatures and seals are checked on receipt)."""
    return count_distinct_members(
        (c for c in commits if c.height == height and c.round == round_ and c.block_hash == block_hash),
        members) >= q


def select_commit_seals(commits: Iterable[Commit], validators: tuple[bytes, ...], block_hash: bytes,
                        q: int) -> tuple[CommitSeal, ...]:
    """The certificate of a decision: exactly Q seals of distinct members for ``block_hash``, in validator
    order (deterministic, so every replica builds the same certificate from the same votes)."""
    by_signer = {c.signer: c for c in commits if c.block_hash == block_hash}
    seals = [CommitSeal(v, by_signer[v].seal) for v in validators if v in by_signer]
    return tuple(seals[:q])


def f_plus_one_jump_round(latest_rounds: Mapping[bytes, int], members: Collection[bytes], current_round: int,
                          f: int) -> int | None:
    """R5. Given each member's latest ROUND-CHANGE round, return the smallest round above ``current_round``
    if at least f + 1 distinct members are above it, else None."""
    above = [r for s, r in latest_rounds.items() if s in members and r > current_round]
    if len(above) >= f + 1:
        return min(above)
    return None


def choose_justification(round_changes: Mapping[bytes, RoundChange], validators: tuple[bytes, ...],
                         q: int) -> tuple[tuple[RoundChange, ...], RoundChange | None]:
    """R6. From the valid ROUND-CHANGEs for one round (keyed by signer), pick the Q to attach to a new
    proposal and the one whose prepared value must be re-proposed (None: a fresh block is allowed).
    The highest-prepared one is always attached, so receivers find the same pr*."""
    ordered = [round_changes[v] for v in validators if v in round_changes]
    best = highest_prepared(ordered)
    if best is None:
        return tuple(ordered[:q]), None
    rest = [rc for rc in ordered if rc.signer != best.signer]
    return (best, *rest[:q - 1]), best


def is_block_for(block: Block, height: int, prev_hash: bytes) -> bool:
    """True iff the block claims ``height`` and has ``prev_hash`` as its parent."""
    return block.height == height and block.header.prev_hash == prev_hash
