"""What a governance decision does: one ``verify_<action>`` (rules, checked when proposed AND when decided) and
one ``apply_<action>`` (the writes and the effect's event) per action, plus the versioned policy record.

Actions (their typed payloads are the ``propose-<action>`` payloads of ``ledger.process.governance``):

    grant-role        [account, role, branch]     -> ["role_granted", account, role, branch]
    revoke-role       [account, role]             -> ["role_revoked", account, role]
    set-policy        [name, value]               -> ["policy_set", name, value, version]
    add-validator     [branch_name, node_public_key, peer_address]
    remove-validator  [node_public_key]           -> ["validator_set_scheduled", change, branch, key, at, hash]
    training-course   [course_id, reward]         -> ["training_course_set", course_id, reward]
    governance-quorum [quorum]                    -> ["governance_quorum_set", quorum, branches]
    campaign          [campaign_id, trigger, effect, amount, budget, per_customer, branch, currency, min_amount,
                       min_tier, starts_at_ms, ends_at_ms, coupon_currency, coupon_lifetime_ms]
                                                  -> ["campaign_created", id, trigger, effect, amount, budget,
                                                      starts_at_ms, ends_at_ms] (+ "campaign_ended" of dead ones)
    end-campaign      [campaign_id]               -> ["campaign_ended", campaign_id, "governance"]

Roles: ``branch-admin`` and ``staff`` are held inside one real branch (a validator's name); issuer,
compliance, auditor and treasury are company-wide and are granted with branch "" (an account keeps the branch
of its branch role, if it has one). An account belongs to one branch at a time.

Versioned policy: genesis writes every parameter of ``DEFAULT_POLICY`` explicitly (version 0). Each decided
``set-policy`` bumps the counter ``policy_version`` and stores the change under ``b"g" + version(8, BE)`` as
``[name, value, previous, height, sender]`` (sender = the admin whose approval decided it). Keeping the
previous value makes every past version reconstructible from state alone (``compute_policy_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import campaigns, reasons
from ledger.block import validator_set_hash
from ledger.customers import get_branch_of, set_branch_of
from ledger.errors import SchemaError
from ledger.events import (
    Event, GovernanceQuorumSet, PolicySet, RoleGranted, RoleRevoked, TrainingCourseSet, ValidatorSetScheduled,
)
from ledger.genesis import BRANCH_ROLES
from ledger.orders import verify_id
from ledger.process.common import DEFAULT_POLICY, TxContext, verify_name, verify_rule
from ledger.proposals import QUORUM_COUNTER, add_branch_admin_count, get_branch_admin_count, get_governance_quorum
from ledger.state import (
    PREFIX_COURSE, PREFIX_GOVERNANCE, ROLE_CODES, StateReader, add_counter, get_counter, get_policy, get_record,
    has_role, policy_key, set_record, set_role,
)
from ledger.validator_sets import (
    ValidatorInfo, get_branches, get_pending_change, get_validator_info, schedule_validator_change,
)

MAX_POLICY_INT = 2**64 - 1
MAX_POLICY_STR = 256
MAX_ADDRESS_CHARS = 256
# Parameters that must stay above zero: a zero lifetime would credit coins (or privileges) already dead.
# A proposal must live long enough for admins of other branches to approve it: below a minute, one policy
# change would leave every later proposal expiring before its approvals and governance stuck for good.
POLICY_MINIMUMS: dict[str, int] = {"coin_lifetime_ms": 1, "privilege_lifetime_ms": 1, "coin_value_minor": 1,
                                   "proposal_lifetime_ms": 60_000}
BRANCH_ADMIN = "branch-admin"


# --- versioned policy ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One applied set-policy: the version it created, the value before and after, where and by whom."""

    version: int
    name: str
    value: int | str
    previous: int | str | None  # None: the parameter had never been set on this chain
    height: int
    sender: bytes


def policy_version_key(version: int) -> bytes:
    """State key of the policy change that created ``version`` (1, 2, ...)."""
    if not 0 < version < 2**64:
        raise SchemaError(f"policy version {version} outside 1..2^64-1")
    return PREFIX_GOVERNANCE + version.to_bytes(8, "big")


def get_policy_version(state: StateReader) -> int:
    """Return the current policy version (0 = the genesis policy, unchanged)."""
    return get_counter(state, "policy_version")


def get_policy_change(state: StateReader, version: int) -> PolicyChange | None:
    """Return the change that created policy ``version`` (None for 0 or a version not reached yet)."""
    if version <= 0:
        return None
    value = get_record(state, policy_version_key(version))
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 5 and isinstance(value[0], str)
            and type(value[3]) is int and isinstance(value[4], bytes)):
        raise SchemaError(f"state policy change {version}: expected [name, value, previous, height, sender]")
    return PolicyChange(version, value[0], value[1], value[2], value[3], value[4])


def compute_policy_at(state: StateReader, version: int) -> dict[str, int | str]:
    """Return every policy parameter as it was at ``version`` (0 = genesis); raise ``ValueError`` if unknown."""
    current = get_policy_version(state)
    if not 0 <= version <= current:
        raise ValueError(f"policy version {version} does not exist; expected 0..{current}")
    changes = [get_policy_change(state, v) for v in range(current, version, -1)]
    names = set(DEFAULT_POLICY) | {c.name for c in changes if c is not None}
    policy: dict[str, Any] = {n: get_policy(state, n, DEFAULT_POLICY.get(n, 0)) for n in names}
    for change in changes:  # newest first: undo each change above ``version``
        if change is not None:
            policy[change.name] = change.previous
    return {n: v for n, v in sorted(policy.items()) if v is not None}


# --- training catalogue ------------------------------------------------------------------------------------


def course_key(course_id: str) -> bytes:
    """State key of a catalogue course (its reward)."""
    return PREFIX_COURSE + course_id.encode()


def get_course_reward(state: StateReader, course_id: str) -> int | None:
    """The reward of catalogue course ``course_id`` (None: not in the catalogue)."""
    value = get_record(state, course_key(course_id))
    if value is not None and not (type(value) is int and value >= 0):
        raise SchemaError(f"state course {course_id!r}: expected a non-negative int")
    return value


# --- grant-role / revoke-role ------------------------------------------------------------------------------


def verify_known_role(role: str) -> None:
    """Raise ``unknown_role`` unless ``role`` exists."""
    verify_rule(role in ROLE_CODES, reasons.UNKNOWN_ROLE,
                f"role {role[:80]!r} does not exist; expected one of {', '.join(ROLE_CODES)}")


def verify_branch(state: StateReader, branch: str) -> None:
    """Raise ``unknown_branch`` unless ``branch`` is one of the network's branches (validators' names)."""
    branches = get_branches(state)
    verify_rule(branch in branches, reasons.UNKNOWN_BRANCH,
                lambda: f"branch {branch[:80]!r} does not exist; the branches are {', '.join(branches)}")


def verify_grant_role(ctx: TxContext, tx: Any) -> None:
    """Rules of granting ``tx.role`` in ``tx.branch`` to ``tx.account``."""
    # The role exists
    verify_known_role(tx.role)
    if tx.role in BRANCH_ROLES:
        # A branch role is held in a real branch (no made-up branches)
        verify_branch(ctx.state, tx.branch)
        # An account belongs to one branch at a time
        current = get_branch_of(ctx.state, tx.account)
        verify_rule(current in ("", tx.branch), reasons.WRONG_BRANCH,
                    f"account {tx.account.hex()[:16]}… belongs to branch {current!r}; it cannot also act in "
                    f"{tx.branch!r}")
    else:
        # A company-wide role carries no branch
        verify_rule(tx.branch == "", reasons.WRONG_BRANCH,
                    f"{tx.role} is company-wide; expected branch '' and got {tx.branch[:80]!r}")
    # The account does not hold the role already (a repeat would hide a mistake)
    verify_rule(not has_role(ctx.state, tx.role, tx.account), reasons.ROLE_ALREADY_HELD,
                f"account {tx.account.hex()[:16]}… already holds {tx.role!r}")


def apply_grant_role(ctx: TxContext, tx: Any) -> list[Event]:
    set_role(ctx.state, tx.role, tx.account, True)
    if tx.role in BRANCH_ROLES:
        set_branch_of(ctx.state, tx.account, tx.branch)
        if tx.role == BRANCH_ADMIN:
            add_branch_admin_count(ctx.state, tx.branch, 1)
    return [RoleGranted(tx.account, tx.role, tx.branch)]


def verify_revoke_role(ctx: TxContext, tx: Any) -> None:
    """Rules of revoking ``tx.role`` from ``tx.account``."""
    # The role exists
    verify_known_role(tx.role)
    # The account holds it
    verify_rule(has_role(ctx.state, tx.role, tx.account), reasons.ROLE_NOT_HELD,
                f"account {tx.account.hex()[:16]}… does not hold {tx.role!r}")
    # The last admin of an existing branch stays: without one, that branch could never approve anything again
    if tx.role == BRANCH_ADMIN:
        branch = get_branch_of(ctx.state, tx.account)
        admins = get_branch_admin_count(ctx.state, branch)
        verify_rule(admins > 1 or branch not in get_branches(ctx.state), reasons.LAST_BRANCH_ADMIN,
                    f"branch {branch!r} has {admins} admin(s); expected at least 2 before revoking one")


def apply_revoke_role(ctx: TxContext, tx: Any) -> list[Event]:
    branch = get_branch_of(ctx.state, tx.account)
    set_role(ctx.state, tx.role, tx.account, False)
    if tx.role == BRANCH_ADMIN and branch:
        add_branch_admin_count(ctx.state, branch, -1)
    if not any(has_role(ctx.state, role, tx.account) for role in BRANCH_ROLES):
        set_branch_of(ctx.state, tx.account, "")  # no branch role left: the account no longer belongs to one
    return [RoleRevoked(tx.account, tx.role)]


# --- set-policy --------------------------------------------------------------------------------------------


def verify_set_policy(ctx: TxContext, tx: Any) -> None:
    """Rules of setting policy parameter ``tx.name`` to ``tx.value``."""
    # The parameter is one the ledger knows (a typo must not create a parameter nobody reads)
    default = DEFAULT_POLICY.get(tx.name)
    verify_rule(default is not None, reasons.UNKNOWN_POLICY,
                f"policy parameter {tx.name[:80]!r} does not exist; expected one of {', '.join(DEFAULT_POLICY)}")
    # The value has the parameter's type
    verify_rule(type(tx.value) is type(default), reasons.POLICY_VALUE_INVALID,
                f"{tx.name} takes a {type(default).__name__}; got {type(tx.value).__name__} {tx.value!r:.40}")
    # An int is within its minimum (0 or POLICY_MINIMUMS)..2^64-1, a str at most MAX_POLICY_STR chars
    if isinstance(tx.value, int):
        low = POLICY_MINIMUMS.get(tx.name, 0)
        verify_rule(low <= tx.value <= MAX_POLICY_INT, reasons.POLICY_VALUE_INVALID,
                    f"{tx.name} = {tx.value}; expected {low}..{MAX_POLICY_INT}")
    else:
        verify_rule(len(tx.value) <= MAX_POLICY_STR, reasons.POLICY_VALUE_INVALID,
                    f"{tx.name} has {len(tx.value)} characters; at most {MAX_POLICY_STR} are allowed")


def apply_set_policy(ctx: TxContext, tx: Any) -> list[Event]:
    default = DEFAULT_POLICY[tx.name]
    raw_previous = ctx.state.get_state(policy_key(tx.name))
    previous = None if raw_previous is None else get_policy(ctx.state, tx.name, default)
    set_record(ctx.state, policy_key(tx.name), tx.value)
    version = add_counter(ctx.state, "policy_version", 1)
    set_record(ctx.state, policy_version_key(version), [tx.name, tx.value, previous, ctx.height, ctx.sender])
    return [PolicySet(tx.name, tx.value, version)]


# --- add-validator / remove-validator ----------------------------------------------------------------------


def verify_add_validator(ctx: TxContext, tx: Any) -> None:
    """Rules of adding branch ``tx.branch_name`` with node key ``tx.node_public_key``."""
    # The branch name is a usable name
    verify_name("branch", tx.branch_name)
    # Neither the name nor the key is a validator already
    infos = get_validator_info(ctx.state)
    verify_rule(all(tx.branch_name != name and tx.node_public_key != key for name, key, _ in infos),
                reasons.VALIDATOR_EXISTS,
                f"branch {tx.branch_name!r} or node key {tx.node_public_key.hex()[:16]}… is already a validator")
    # A retired branch name never comes back (its admins and staff would regain their powers with it)
    verify_rule(get_branch_admin_count(ctx.state, tx.branch_name) == 0, reasons.BRANCH_NAME_RETIRED,
                f"branch {tx.branch_name!r} had admins before; expected a new branch name")
    # The node key can sign: a valid Ed25519 point (a bogus key would be a validator that never seals)
    verify_rule(is_valid_node_key(tx.node_public_key), reasons.INVALID_NODE_KEY,
                f"node key {tx.node_public_key.hex()[:16]}… is not a valid Ed25519 public key")
    # Its peers can dial it: a ws:// or wss:// URL with a host and a port 1..65535
    verify_rule(is_valid_peer_address(tx.peer_address), reasons.INVALID_ADDRESS,
                f"peer address {tx.peer_address[:80]!r}; expected ws://host:port/path or wss://… (at most "
                f"{MAX_ADDRESS_CHARS} printable characters, port 1..65535)")


def verify_remove_validator(ctx: TxContext, tx: Any) -> None:
    """Rules of removing the validator with node key ``tx.node_public_key``."""
    infos = get_validator_info(ctx.state)
    # It is a validator
    verify_rule(any(key == tx.node_public_key for _, key, _ in infos), reasons.UNKNOWN_VALIDATOR,
                f"node key {tx.node_public_key.hex()[:16]}… is not a validator")
    # A set never goes below one member
    verify_rule(len(infos) > 1, reasons.LAST_VALIDATOR, f"the set has {len(infos)} validator; expected at least 2")


def is_valid_node_key(key: bytes) -> bool:
    """True iff ``key`` is a valid Ed25519 point that is not of small order (it can verify signatures)."""
    from nacl.bindings import crypto_core_ed25519_is_valid_point
    return len(key) == 32 and bool(crypto_core_ed25519_is_valid_point(key))


def is_valid_peer_address(address: str) -> bool:
    """True iff ``address`` is a peer websocket URL ``ws[s]://host:port[/path]`` (printable, no spaces, at most
    MAX_ADDRESS_CHARS, port 1..65535)."""
    from urllib.parse import urlsplit
    if not (0 < len(address) <= MAX_ADDRESS_CHARS and address.isprintable()) or any(c.isspace() for c in address):
        return False
    try:
        url = urlsplit(address)
        port = url.port
    except ValueError:
        return False
    return url.scheme in ("ws", "wss") and bool(url.hostname) and port is not None and 0 < port < 65536


def _verify_no_pending_change(ctx: TxContext) -> None:
    # One change at a time: the next one is decided after the pending one is in force
    pending = get_pending_change(ctx.state)
    verify_rule(pending is None, reasons.VALIDATOR_CHANGE_PENDING,
                lambda: f"a change in force from height {pending.effective_height} is pending; decide the next "
                        "one from that height on")


def _schedule(ctx: TxContext, change: str, target: tuple[str, bytes, str],
              infos: list[ValidatorInfo]) -> list[Event]:
    effective = schedule_validator_change(ctx.state, ctx.height, infos)
    keys = [i.node_public_key for i in infos]
    return [ValidatorSetScheduled(change, target[0], target[1], effective, validator_set_hash(keys))]


def apply_add_validator(ctx: TxContext, tx: Any) -> list[Event]:
    _verify_no_pending_change(ctx)
    infos = [ValidatorInfo(*i) for i in get_validator_info(ctx.state)]
    added = ValidatorInfo(tx.branch_name, tx.node_public_key, tx.peer_address)
    return _schedule(ctx, "add", (tx.branch_name, tx.node_public_key, tx.peer_address), infos + [added])


def apply_remove_validator(ctx: TxContext, tx: Any) -> list[Event]:
    _verify_no_pending_change(ctx)
    infos = [ValidatorInfo(*i) for i in get_validator_info(ctx.state)]
    removed = next(i for i in infos if i.node_public_key == tx.node_public_key)
    rest = [i for i in infos if i.node_public_key != tx.node_public_key]
    return _schedule(ctx, "remove", (removed.branch_name, removed.node_public_key, removed.peer_address), rest)


# --- training-course / governance-quorum -------------------------------------------------------------------


def verify_training_course(ctx: TxContext, tx: Any) -> None:
    """Rules of putting course ``tx.course_id`` in the catalogue with reward ``tx.reward``."""
    # The course id is usable as a key
    verify_id("course id", tx.course_id)
    # The reward is not negative
    verify_rule(tx.reward >= 0, reasons.INVALID_AMOUNT, f"reward is {tx.reward}; expected 0 or more")


def apply_training_course(ctx: TxContext, tx: Any) -> list[Event]:
    set_record(ctx.state, course_key(tx.course_id), tx.reward)
    return [TrainingCourseSet(tx.course_id, tx.reward)]


def verify_governance_quorum(ctx: TxContext, tx: Any) -> None:
    """Rules of a new quorum: a strict majority of the governing branches, and no more than there are."""
    _, b = get_governance_quorum(ctx.state)
    verify_rule(b // 2 < tx.quorum <= b, reasons.INVALID_QUORUM,
                f"quorum {tx.quorum} of {b} branches with an admin; expected {b // 2 + 1}..{b}")


def apply_governance_quorum(ctx: TxContext, tx: Any) -> list[Event]:
    add_counter(ctx.state, QUORUM_COUNTER, tx.quorum - get_counter(ctx.state, QUORUM_COUNTER))
    return [GovernanceQuorumSet(tx.quorum, get_governance_quorum(ctx.state)[1])]


# --- campaign / end-campaign (issue 12, campaigns: the rules and records are ``ledger.campaigns``) ------------


def verify_campaign(ctx: TxContext, tx: Any) -> None:
    """Rules of a new campaign: every field valid, the id new, room among the active campaigns."""
    campaigns.verify_new_campaign(ctx, tx)


def apply_campaign(ctx: TxContext, tx: Any) -> list[Event]:
    return campaigns.apply_new_campaign(ctx, tx)


def verify_end_campaign(ctx: TxContext, tx: Any) -> None:
    """Rules of ending a campaign early: it exists and has not ended."""
    campaigns.verify_end_campaign(ctx, tx)


def apply_end_campaign(ctx: TxContext, tx: Any) -> list[Event]:
    return campaigns.apply_end_campaign(ctx, tx)
