"""Governance reads: a proposal document and the bounded, paged list of proposals (open first).

Theory of operation. A proposal lives in state under ``b"q" + id`` (``ledger.proposals``). Its document says
what it would do (the action and its named arguments, a one-line summary), who proposed it, which branches
approved (an approval of a branch removed since no longer counts), the quorum, and its status at the head:
``open`` (still approvable), ``expired`` (open but past ``expires_at_ms`` at the head block's time) or
``decided``. For a decided proposal the decision is read back from the one block that decided it (the
``proposal_decided`` event and the effect event after it), so the document says what the decision DID
("staff role granted to ab12… in branch-2"), not only what was asked.

The list scans at most ``MAX_PROPOSAL_SCAN`` proposals (in key order), sorts them open first, then expired,
then decided (newest first inside each), and answers one page (``offset``/``limit``) with ``total`` and
``next_offset``; ``truncated`` says the scan bound was hit.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ledger import campaigns
from ledger.errors import NotFound
from ledger.events import ProposalApproved, ProposalDecided, decode_event
from ledger.process.governance import ACTIONS
from ledger.proposals import Proposal, get_governance_quorum, get_proposal
from ledger.state import PREFIX_PROPOSAL
from ledger.validator_sets import get_branches

MAX_PROPOSAL_SCAN = 10_000
MAX_PROPOSAL_PAGE = 100
STATUSES = ("open", "expired", "decided")


def short(key: bytes) -> str:
    """An account or node key as people quote it: the first 8 hex digits and an ellipsis."""
    return key.hex()[:8] + "…"


def _where(branch: str) -> str:
    return f"in {branch}" if branch else "company-wide"


def describe_action(action: str, args: dict[str, Any]) -> str:
    """What a proposal asks, in one line ("grant staff role to ab12cd34… in branch-2")."""
    a = args
    texts = {
        "grant-role": lambda: f"grant {a['role']} role to {short(a['account'])} {_where(a['branch'])}",
        "revoke-role": lambda: f"revoke {a['role']} role from {short(a['account'])}",
        "set-policy": lambda: f"set policy {a['name']} to {a['value']}",
        "add-validator": lambda: f"add branch {a['branch_name']} with validator {short(a['node_public_key'])} "
                                 f"at {a['peer_address']}",
        "remove-validator": lambda: f"remove validator {short(a['node_public_key'])}",
        "training-course": lambda: f"put training course {a['course_id']} in the catalogue with reward {a['reward']}",
        "governance-quorum": lambda: f"set the governance quorum to {a['quorum']} branches",
        "campaign": lambda: describe_campaign(a),
        "end-campaign": lambda: f"end campaign {a['campaign_id']} now",
    }
    text = texts.get(action)
    return text() if text else action


def describe_campaign(a: dict[str, Any]) -> str:
    """A campaign proposal in one line: trigger, effect, limits, then its conditions."""
    effect = {"bonus": f"a bonus of {a['amount']} coins",
              "multiplier": f"{a['amount']} % of the coins earned on top",
              "coupon": f"a coupon of {a['amount']} {a['coupon_currency']} minor units living "
                        f"{a['coupon_lifetime_ms']} ms"}.get(a["effect"], f"{a['effect']} {a['amount']}")
    conditions = [f"in {a['branch']}" if a["branch"] else "", f"in {a['currency']}" if a["currency"] else "",
                  f"from {a['min_amount']} base minor units" if a["min_amount"] else "",
                  f"tier {a['min_tier']} or above" if a["min_tier"] else "",
                  f"from {a['starts_at_ms']}" if a["starts_at_ms"] else "",
                  f"until {a['ends_at_ms']}" if a["ends_at_ms"] else ""]
    only = "; only " + ", ".join(c for c in conditions if c) if any(conditions) else ""
    return (f"campaign {a['campaign_id']}: on {a['trigger']}, {effect}; {a['per_customer']} per customer, "
            f"budget {a['budget']}{only}")


def list_campaigns(store: Any) -> dict[str, Any]:
    """The active campaigns (at most ``ledger.campaigns.MAX_ACTIVE``), by trigger then id, with what is left."""
    items = []
    for campaign_id in campaigns.get_active_ids(store):
        c = campaigns.get_campaign(store, campaign_id)
        if c is not None:
            items.append({"campaign_id": campaign_id, **{f.name: _hex(getattr(c, f.name)) for f in fields(c)},
                          "remaining": c.remaining})
    return {"items": items, "max_active": campaigns.MAX_ACTIVE}


def describe_effect(event: Any) -> str:
    """What a decision did, in one line, from its effect event ("staff role granted to ab12… in branch-2")."""
    e = event
    texts = {
        "role_granted": lambda: f"{e.role} role granted to {short(e.account)} {_where(e.branch)}",
        "role_revoked": lambda: f"{e.role} role revoked from {short(e.account)}",
        "policy_set": lambda: f"policy {e.name} set to {e.value} (policy version {e.version})",
        "validator_set_scheduled": lambda: f"validator {short(e.node_public_key)} of {e.branch_name} "
                                           f"{'added' if e.change == 'add' else 'removed'}; the new set seals from "
                                           f"height {e.effective_height}",
        "training_course_set": lambda: f"training course {e.course_id} in the catalogue with reward {e.reward}",
        "governance_quorum_set": lambda: f"governance quorum set to {e.quorum} of {e.branches} branches",
        "campaign_created": lambda: f"campaign {e.campaign_id} runs from {e.starts_at_ms}"
                                    f"{f' until {e.ends_at_ms}' if e.ends_at_ms else ''} with a budget of {e.budget}",
        "campaign_ended": lambda: f"campaign {e.campaign_id} ended ({e.why})",
    }
    text = texts.get(e.KIND)
    return text() if text else e.KIND


def _named_args(proposal: Proposal) -> dict[str, Any]:
    action = ACTIONS.get(proposal.action)
    if action is None or len(fields(action.payload)) - 1 != len(proposal.args):
        return {str(i): v for i, v in enumerate(proposal.args)}
    return {f.name: v for f, v in zip(fields(action.payload)[1:], proposal.args)}


def _hex(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes) else value


def _read_decision(store: Any, proposal: Proposal) -> dict[str, Any]:
    """The decision of a decided proposal, from its block: the effect event, its summary, the quorum then."""
    height, quorum, effect = proposal.decided_height, None, None
    for result in store.get_results(height):
        events = [decode_event(e) for e in result.events]
        for i, event in enumerate(events):
            if isinstance(event, ProposalApproved) and event.proposal_id == proposal.proposal_id:
                quorum = event.quorum
            if isinstance(event, ProposalDecided) and event.proposal_id == proposal.proposal_id:
                effect = events[i + 1] if i + 1 < len(events) else None
        if effect is not None:
            break
    doc: dict[str, Any] = {"height": height, "quorum": quorum}
    if effect is None:
        doc.update({"effect": None, "summary": f"decided at height {height}"})
    else:
        doc.update({"effect": {"kind": effect.KIND, **{f.name: _hex(getattr(effect, f.name))
                                                        for f in fields(effect)}},
                    "summary": describe_effect(effect)})
    return doc


def compute_status(proposal: Proposal, now_ms: int) -> str:
    """``decided``, ``expired`` (open but past its expiry at ``now_ms``) or ``open``."""
    if proposal.decided_height:
        return "decided"
    return "expired" if now_ms > proposal.expires_at_ms else "open"


def build_proposal_document(store: Any, proposal: Proposal, now_ms: int) -> dict[str, Any]:
    """The document of one proposal at the head (see the module docstring)."""
    quorum, branch_count = get_governance_quorum(store)
    branches = set(get_branches(store))
    status = compute_status(proposal, now_ms)
    args = _named_args(proposal)
    approvals = [{"branch": b, "approver": a.hex(), "counts": b in branches} for b, a in proposal.approvals]
    decision = _read_decision(store, proposal) if status == "decided" else None
    return {
        "proposal_id": proposal.proposal_id, "action": proposal.action,
        "args": {k: _hex(v) for k, v in args.items()}, "summary": describe_action(proposal.action, args),
        "proposer": proposal.proposer.hex(),
        "proposer_branch": proposal.approvals[0][0] if proposal.approvals else None,
        "created_at_ms": proposal.created_at_ms, "expires_at_ms": proposal.expires_at_ms,
        "approvals": approvals, "approval_count": len({x["branch"] for x in approvals if x["counts"]}),
        "quorum": decision["quorum"] if decision and decision["quorum"] else quorum, "branches": branch_count,
        "status": status, "decided_height": proposal.decided_height or None, "decision": decision,
    }


def _head_time(store: Any) -> int:
    return store.get_header(store.head().height).timestamp_ms


def get_proposal_view(store: Any, proposal_id: str) -> dict[str, Any]:
    """The document of proposal ``proposal_id``; ``NotFound`` when there is none."""
    proposal = get_proposal(store, proposal_id)
    if proposal is None:
        raise NotFound(f"proposal {proposal_id[:80]!r} does not exist")
    return build_proposal_document(store, proposal, _head_time(store))


def list_proposals(store: Any, status: str | None, offset: int, limit: int) -> dict[str, Any]:
    """One page of proposals, open first, then expired, then decided (newest first in each)."""
    now = _head_time(store)
    found: list[Proposal] = []
    truncated = False
    for key, _ in store.iter_state(PREFIX_PROPOSAL):
        if len(found) >= MAX_PROPOSAL_SCAN:
            truncated = True
            break
        proposal = get_proposal(store, key[len(PREFIX_PROPOSAL):].decode("utf-8", "replace"))
        if proposal is not None and (status is None or compute_status(proposal, now) == status):
            found.append(proposal)
    found.sort(key=lambda p: (STATUSES.index(compute_status(p, now)), -p.created_at_ms, p.proposal_id))
    page = found[offset:offset + limit]
    return {"items": [build_proposal_document(store, p, now) for p in page], "total": len(found),
            "offset": offset, "next_offset": offset + len(page) if offset + len(page) < len(found) else None,
            "truncated": truncated}
