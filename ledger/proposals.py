"""Governance proposals in state, the quorum of distinct branches, and per-branch admin counts.

Theory of operation
-------------------
After genesis only governance changes roles, policy, the validator set (the branches), the training
catalogue and the quorum itself. A branch admin opens a proposal (``propose-<action>``): it is stored under
``b"q" + proposal_id`` with the proposer's approval already counted. Admins of other branches approve it
(``approve-proposal``); the approvals are kept per branch, so two admins of one branch count once. The block
carrying the approval that reaches the quorum of DISTINCT branches executes the action, in that transaction
(the action is re-validated then: what was true when it was proposed may no longer be). A proposal is
decided once; after ``proposal_lifetime_ms`` of block time it can no longer be approved.

Record: ``[action, args, proposer, created_at_ms, expires_at_ms, [[branch, approver], ...], decided_height]``
(``decided_height`` 0 = open); ``args`` are the action's payload fields after the proposal id.

Quorum: of b branches (the names of the latest decided validator set), the counter ``governance_quorum``
holds the number of branches a decision needs; 0 (never set) means the default ceil(2b/3). A stored value
is kept inside b//2+1..b as b changes (a strict majority, never more than there are branches), so adding or
removing a branch can neither let a minority rule nor deadlock governance. Approvals of a branch that has
since been removed do not count.

Admins per branch: ``b"w\\x03" + branch`` holds how many accounts are branch admins of that branch, so "the
last admin of a branch cannot be revoked" is one read.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import codec
from ledger.errors import SchemaError
from ledger.state import PREFIX_PROPOSAL, PREFIX_VALIDATORS, Overlay, StateReader, get_counter, get_record, set_record
from ledger.validator_sets import get_branches

QUORUM_COUNTER = "governance_quorum"
_ADMIN_COUNT = PREFIX_VALIDATORS + b"\x03"


@dataclass(frozen=True, slots=True)
class Proposal:
    """A governance proposal: the action and its arguments, who opened it, when it expires, who approved."""

    proposal_id: str
    action: str
    args: tuple
    proposer: bytes
    created_at_ms: int
    expires_at_ms: int
    approvals: tuple[tuple[str, bytes], ...]  # (branch, approving admin), one per branch, in order
    decided_height: int = 0  # 0 = not decided

    @property
    def branches(self) -> tuple[str, ...]:
        return tuple(branch for branch, _ in self.approvals)

    def to_list(self) -> list:
        return [self.action, list(self.args), self.proposer, self.created_at_ms, self.expires_at_ms,
                [[b, a] for b, a in self.approvals], self.decided_height]


def proposal_key(proposal_id: str) -> bytes:
    """State key of a proposal."""
    return PREFIX_PROPOSAL + proposal_id.encode()


def get_proposal(state: StateReader, proposal_id: str) -> Proposal | None:
    """Return the proposal ``proposal_id`` (None if there is none)."""
    value = get_record(state, proposal_key(proposal_id))
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 7 and isinstance(value[0], str) and isinstance(value[1], list)
            and isinstance(value[2], bytes) and type(value[3]) is int and type(value[4]) is int
            and isinstance(value[5], list) and type(value[6]) is int
            and all(isinstance(a, list) and len(a) == 2 and isinstance(a[0], str) and isinstance(a[1], bytes)
                    for a in value[5])):
        raise SchemaError(f"state proposal {proposal_id!r}: expected [action, args, proposer, created, expires, "
                          "approvals, decided_height]")
    return Proposal(proposal_id, value[0], tuple(value[1]), value[2], value[3], value[4],
                    tuple((a[0], a[1]) for a in value[5]), value[6])


def set_proposal(state: Overlay, proposal: Proposal) -> None:
    """Store the proposal."""
    set_record(state, proposal_key(proposal.proposal_id), proposal.to_list())


def compute_default_quorum(branches: int) -> int:
    """ceil(2b/3) of b branches (1 for a single branch)."""
    return (2 * branches + 2) // 3


def get_governance_quorum(state: StateReader) -> tuple[int, int]:
    """``(quorum, branches)``: how many distinct branches a decision needs now, of how many govern.

    Only branches with at least one admin govern (only they can approve): a branch added by governance counts
    once its first admin is granted. Counting admin-less branches let a quorum become unreachable for good
    (add a branch nobody administers, remove one that has admins: no decision could ever be taken again)."""
    b = max(count_governing_branches(state, get_branches(state)), 1)
    stored = get_counter(state, QUORUM_COUNTER)
    quorum = stored if stored else compute_default_quorum(b)
    return min(max(quorum, b // 2 + 1), b), b


def count_governing_branches(state: StateReader, branches) -> int:
    """How many of ``branches`` have at least one branch admin (only those can approve anything)."""
    return sum(1 for branch in branches if get_branch_admin_count(state, branch) > 0)


def count_approvals(state: StateReader, proposal: Proposal) -> int:
    """Distinct branches, still existing, that approved ``proposal``."""
    branches = set(get_branches(state))
    return sum(1 for branch in set(proposal.branches) if branch in branches)


# --- admins per branch -------------------------------------------------------------------------------------


def admin_count_key(branch: str) -> bytes:
    """State key of the number of branch admins of ``branch``."""
    return _ADMIN_COUNT + branch.encode()


def get_branch_admin_count(state: StateReader, branch: str) -> int:
    """How many accounts are branch admins of ``branch``."""
    value = get_record(state, admin_count_key(branch))
    if value is not None and not (type(value) is int and value >= 0):
        raise SchemaError(f"state admin count of branch {branch!r}: expected a non-negative int")
    return value or 0


def add_branch_admin_count(state: Overlay, branch: str, delta: int) -> int:
    """Add ``delta`` to the admin count of ``branch``; return the new count."""
    count = get_branch_admin_count(state, branch) + delta
    if count < 0:
        raise SchemaError(f"admin count of branch {branch!r} would become {count}")
    set_record(state, admin_count_key(branch), count or None)
    return count


def compute_genesis_admin_counts(admins_by_branch: dict[str, int]) -> dict[bytes, bytes]:
    """The admin-count records of genesis."""
    return {admin_count_key(b): codec.encode(n) for b, n in admins_by_branch.items() if n}
