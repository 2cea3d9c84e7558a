"""Governance kinds: ``propose-<action>`` and ``approve-proposal`` — no single key rules the network.

Theory of operation
-------------------
After genesis, roles, policy, the validator set (= the branches), the training catalogue and the governance
quorum change only by a decision of the admins of a quorum of DISTINCT branches (``ledger.proposals``):

1. A branch admin of an existing branch sends ``propose-<action> [proposal_id, ...action fields]``. The action
   is checked (``ledger.process.decisions.verify_<action>``), the proposal is stored with the proposer's own
   approval counted, and ``proposal_opened`` + ``proposal_approved`` are emitted.
2. Admins of other branches send ``approve-proposal [proposal_id]``. A branch counts once (a second admin of
   the same branch fails ``already_approved``); an approval after the proposal's ``expires_at_ms`` (block
   time, ``proposal_lifetime_ms`` after it was opened) fails ``proposal_expired``; a decided proposal fails
   ``proposal_decided``.
3. The approval that reaches the quorum decides, in its own transaction: the action is checked again (the
   branch may be gone, the role already held, another validator change pending), then applied —
   ``proposal_decided`` and the effect's event (``role_granted``, ``policy_set``,
   ``validator_set_scheduled``, ...). If the check fails the approval fails with that reason and the proposal
   stays open (it can be approved once the obstacle is gone, or it expires).

On a one-branch network (quorum 1) the proposal is decided by the transaction that opens it.

Campaigns (DESIGN: "create a campaign" is a governance action) are two more actions: ``propose-campaign``
(trigger, conditions, limits, effect; see ``ledger.campaigns``) and ``propose-end-campaign`` (end one early).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Callable

from ledger import reasons
from ledger.customers import get_branch_of
from ledger.events import Event, ProposalApproved, ProposalDecided, ProposalOpened
from ledger.orders import verify_id
from ledger.process import decisions
from ledger.process.common import TxContext, get_policy_value, verify_role, verify_rule
from ledger.process.decisions import (  # noqa: F401 - re-exported for readers (node.reads)
    PolicyChange, compute_policy_at, get_policy_change, get_policy_version, policy_version_key,
)
from ledger.process.payload import Account, Amount, Bytes32, Id, Int, PolicyValue, Text, arg, declare_kind
from ledger.reasons import TxFailure
from ledger.proposals import Proposal, count_approvals, get_governance_quorum, get_proposal, set_proposal
from ledger.validator_sets import get_branches

BRANCH_ADMIN = "branch-admin"
_ID = "A new proposal id (1-64 printable characters)."


@dataclass(frozen=True, slots=True)
class ProposeGrantRole:
    """A propose-grant-role payload."""

    proposal_id: Id = arg(_ID)
    account: Account = arg("The account (64 hex digits) receiving the role.")
    role: Text = arg("branch-admin, staff, issuer, compliance, auditor or treasury.")
    branch: Text = arg("The branch, for branch-admin and staff; empty for the company-wide roles.", "")


@dataclass(frozen=True, slots=True)
class ProposeRevokeRole:
    """A propose-revoke-role payload."""

    proposal_id: Id = arg(_ID)
    account: Account = arg("The account (64 hex digits) losing the role.")
    role: Text = arg("The role to take away.")


@dataclass(frozen=True, slots=True)
class ProposeSetPolicy:
    """A propose-set-policy payload."""

    proposal_id: Id = arg(_ID)
    name: Text = arg("The policy parameter.")
    value: PolicyValue = arg("Its new value (an integer for integer parameters).")


@dataclass(frozen=True, slots=True)
class ProposeAddValidator:
    """A propose-add-validator payload."""

    proposal_id: Id = arg(_ID)
    branch_name: Text = arg("The new branch's name (its validator's name).")
    node_public_key: Bytes32 = arg("The new validator's node key (64 hex digits).")
    peer_address: Text = arg("Where peers dial it, e.g. wss://10.0.0.5:27101/peer (ws:// when the network runs without TLS).")


@dataclass(frozen=True, slots=True)
class ProposeRemoveValidator:
    """A propose-remove-validator payload."""

    proposal_id: Id = arg(_ID)
    node_public_key: Bytes32 = arg("The node key (64 hex digits) of the validator to remove.")


@dataclass(frozen=True, slots=True)
class ProposeTrainingCourse:
    """A propose-training-course payload."""

    proposal_id: Id = arg(_ID)
    course_id: Id = arg("The course's id in the catalogue.")
    reward: Amount = arg("Coins a staff member earns for completing it (once).")


@dataclass(frozen=True, slots=True)
class ProposeGovernanceQuorum:
    """A propose-governance-quorum payload."""

    proposal_id: Id = arg(_ID)
    quorum: Int = arg("Distinct branches a decision needs: a strict majority of the branches, at most all.")


@dataclass(frozen=True, slots=True)
class ProposeCampaign:
    """A propose-campaign payload (issue 12, campaigns; the rules are ``ledger.campaigns.verify_new_campaign``)."""

    proposal_id: Id = arg(_ID)
    campaign_id: Id = arg("The new campaign's id (1-40 bytes, no '#').")
    trigger: Text = arg("order_confirmed, first_order, feedback or registration.")
    effect: Text = arg("bonus (coins), multiplier (percent of the coins the order earned, on top) or coupon.")
    amount: Amount = arg("Bonus coins, multiplier percent, or the coupon's value in minor units.")
    budget: Amount = arg("Total budget: coins for bonus and multiplier, coupon value for coupon.")
    per_customer: Int = arg("Times one customer benefits.", 1)
    branch: Text = arg("Only this branch's orders, feedback or registrations ('' = any).", "")
    currency: Text = arg("Only orders in this currency ('' = any).", "")
    min_amount: Amount = arg("Only orders of at least this many base-currency minor units.", 0)
    min_tier: Text = arg("Only customers of at least this tier: silver, gold, platinum ('' = any).", "")
    starts_at_ms: Int = arg("Block time (ms) it starts (0 = when decided).", 0)
    ends_at_ms: Int = arg("Block time (ms) it ends (0 = no end date).", 0)
    coupon_currency: Text = arg("The coupon's currency (coupon effect only).", "")
    coupon_lifetime_ms: Int = arg("How long a coupon it issues lives, in ms (coupon effect only).", 0)


@dataclass(frozen=True, slots=True)
class ProposeEndCampaign:
    """A propose-end-campaign payload."""

    proposal_id: Id = arg(_ID)
    campaign_id: Id = arg("The campaign to end now.")


@dataclass(frozen=True, slots=True)
class ApproveProposal:
    """An approve-proposal payload."""

    proposal_id: Id = arg("The proposal to approve.")


@dataclass(frozen=True, slots=True)
class Action:
    """A governance action: its name, the payload class of its proposal, its rules and its effect."""

    name: str
    payload: type
    verify: Callable[[TxContext, Any], None]
    apply: Callable[[TxContext, Any], list[Event]]


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("grant-role", ProposeGrantRole, decisions.verify_grant_role, decisions.apply_grant_role),
    Action("revoke-role", ProposeRevokeRole, decisions.verify_revoke_role, decisions.apply_revoke_role),
    Action("set-policy", ProposeSetPolicy, decisions.verify_set_policy, decisions.apply_set_policy),
    Action("add-validator", ProposeAddValidator, decisions.verify_add_validator, decisions.apply_add_validator),
    Action("remove-validator", ProposeRemoveValidator, decisions.verify_remove_validator,
           decisions.apply_remove_validator),
    Action("training-course", ProposeTrainingCourse, decisions.verify_training_course,
           decisions.apply_training_course),
    Action("governance-quorum", ProposeGovernanceQuorum, decisions.verify_governance_quorum,
           decisions.apply_governance_quorum),
    Action("campaign", ProposeCampaign, decisions.verify_campaign, decisions.apply_campaign),
    Action("end-campaign", ProposeEndCampaign, decisions.verify_end_campaign, decisions.apply_end_campaign),
)}
_ACTION_OF: dict[type, Action] = {a.payload: a for a in ACTIONS.values()}


# --- steps -------------------------------------------------------------------------------------------------


def verify_admin_branch(ctx: TxContext) -> str:
    """Raise unless the sender is a branch admin of an existing branch; return that branch."""
    # Only branch admins propose and approve
    verify_role(ctx, BRANCH_ADMIN)
    # ... of a branch that exists (a removed branch no longer governs)
    branch = get_branch_of(ctx.state, ctx.sender)
    verify_rule(branch in get_branches(ctx.state), reasons.UNKNOWN_BRANCH,
                f"the sender's branch {branch!r} is not one of the network's branches")
    return branch


def _approve(ctx: TxContext, proposal: Proposal, branch: str) -> list[Event]:
    """Record ``branch``'s approval; decide the proposal if it reaches the quorum of distinct branches."""
    proposal = replace(proposal, approvals=proposal.approvals + ((branch, ctx.sender),))
    count = count_approvals(ctx.state, proposal)
    quorum, _ = get_governance_quorum(ctx.state)
    events: list[Event] = [ProposalApproved(proposal.proposal_id, ctx.sender, branch, count, quorum)]
    if count >= quorum:
        action = ACTIONS[proposal.action]
        tx = action.payload(proposal.proposal_id, *proposal.args)
        # The action still holds now that it is decided (checked again: things changed since it was proposed)
        action.verify(ctx, tx)
        effects = action.apply(ctx, tx)
        proposal = replace(proposal, decided_height=ctx.height)
        events += [ProposalDecided(proposal.proposal_id, action.name, effects[0].KIND if effects else ""), *effects]
    set_proposal(ctx.state, proposal)
    return events


def process_propose(ctx: TxContext, tx: Any) -> list[Event]:
    """Open a proposal of the action ``tx`` describes, with the proposer's branch approving it."""
    action = _ACTION_OF[type(tx)]
    # The sender is a branch admin of an existing branch
    branch = verify_admin_branch(ctx)
    # The proposal id is usable as a key
    verify_id("proposal id", tx.proposal_id)
    # It was never used before
    verify_rule(get_proposal(ctx.state, tx.proposal_id) is None, reasons.PROPOSAL_EXISTS,
                f"proposal {tx.proposal_id!r} already exists; expected a new proposal id")
    # The action is valid now (and is checked again when decided)
    action.verify(ctx, tx)

    expires = ctx.timestamp_ms + get_policy_value(ctx, "proposal_lifetime_ms")
    args = tuple(getattr(tx, f.name) for f in fields(tx)[1:])
    # Nobody proposes a decision that benefits their own account
    verify_not_beneficiary(ctx, action.name, args)
    proposal = Proposal(tx.proposal_id, action.name, args, ctx.sender, ctx.timestamp_ms, expires, ())
    return [ProposalOpened(tx.proposal_id, action.name, ctx.sender, branch, expires), *_approve(ctx, proposal, branch)]


def process_approve_proposal(ctx: TxContext, tx: ApproveProposal) -> list[Event]:
    """Approve a proposal for the sender's branch; the approval reaching the quorum decides it."""
    # The sender is a branch admin of an existing branch
    branch = verify_admin_branch(ctx)
    # The proposal exists
    proposal = get_proposal(ctx.state, tx.proposal_id)
    if proposal is None:
        raise TxFailure(reasons.PROPOSAL_NOT_FOUND, f"proposal {tx.proposal_id[:80]!r} does not exist")
    # It is not decided yet (a proposal is decided once)
    verify_rule(not proposal.decided_height, reasons.PROPOSAL_DECIDED,
                f"proposal {tx.proposal_id!r} was decided at height {proposal.decided_height}")
    # It has not expired (block time)
    verify_rule(ctx.timestamp_ms <= proposal.expires_at_ms, reasons.PROPOSAL_EXPIRED,
                f"proposal {tx.proposal_id!r} expired at {proposal.expires_at_ms}; the block time is "
                f"{ctx.timestamp_ms}")
    # The sender's branch has not approved it yet (one branch counts once)
    verify_rule(branch not in proposal.branches, reasons.ALREADY_APPROVED,
                f"branch {branch!r} already approved proposal {tx.proposal_id!r}")
    # Nobody approves a decision that benefits their own account
    verify_not_beneficiary(ctx, proposal.action, proposal.args)
    return _approve(ctx, proposal, branch)


def verify_not_beneficiary(ctx: TxContext, action: str, args: tuple) -> None:
    """Raise ``self_dealing`` when the sender is the account a ``grant-role`` decision would empower."""
    verify_rule(not (action == "grant-role" and args and args[0] == ctx.sender), reasons.SELF_DEALING,
                f"the {action} proposal would give the sender {ctx.sender.hex()[:16]}… a role; another "
                f"branch's admins decide that")


def _propose_spec(action: str, payload: type, help: str):
    return declare_kind(f"propose-{action}", payload, process_propose, senders="branch admin",
                        help=help + " Takes effect once admins of a quorum of distinct branches approve.")


SPECS = (
    _propose_spec("grant-role", ProposeGrantRole, "Propose giving an account a role (in a branch, for branch roles)."),
    _propose_spec("revoke-role", ProposeRevokeRole, "Propose taking a role away from an account."),
    _propose_spec("set-policy", ProposeSetPolicy, "Propose a new value of one policy parameter."),
    _propose_spec("add-validator", ProposeAddValidator, "Propose a new branch and its validator node."),
    _propose_spec("remove-validator", ProposeRemoveValidator, "Propose removing a validator (its branch)."),
    _propose_spec("training-course", ProposeTrainingCourse, "Propose a training course (or a new reward) for "
                                                            "the catalogue."),
    _propose_spec("governance-quorum", ProposeGovernanceQuorum, "Propose a new governance quorum."),
    _propose_spec("campaign", ProposeCampaign, "Propose a campaign: a trigger, conditions, limits and a budget, "
                                               "and its effect (bonus coins, a multiplier, or a coupon)."),
    _propose_spec("end-campaign", ProposeEndCampaign, "Propose ending a campaign now."),
    declare_kind("approve-proposal", ApproveProposal, process_approve_proposal, senders="branch admin",
                 help="Approve a proposal for your branch; the approval reaching the quorum decides it."),
)
