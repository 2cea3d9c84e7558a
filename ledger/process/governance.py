"""Governance kinds: ``set-policy`` (versioned), ``grant-role`` and ``revoke-role`` — all by a branch admin.

Theory of operation
-------------------
Policy parameters live in state under ``b"p" + name``; genesis writes every parameter of ``DEFAULT_POLICY``
explicitly (version 0). Each applied ``set-policy`` bumps the counter ``policy_version`` and stores the
change under ``b"g" + version(8, big-endian)`` as ``[name, value, previous, height, sender]``. Keeping the
previous value makes every past version reconstructible from state alone (``compute_policy_at``): start
from the values in force and undo the changes above the wanted version, newest first. So any node, and
any SMT proof against a quorum-signed header, can show policy version N without replaying blocks.

Roles are presence keys (``b"r"``) with a holder count per role, so "the last branch admin cannot be
revoked" is one read. ``grant-role`` also records the account's branch (``b"b"``); an account belongs to
one branch at a time (the latest grant names it). Validator-set changes ("signed by a quorum of branch
admins" in DESIGN) are not part of these kinds.

set-policy  payload [name: str, value: int | str]       event ["policy_set", name, value, version]
grant-role  payload [account: bin32, role: str, branch: str]  event ["role_granted", account, role, branch]
revoke-role payload [account: bin32, role: str]         event ["role_revoked", account, role]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import reasons
from ledger.customers import set_branch_of
from ledger.errors import SchemaError
from ledger.events import Event, PolicySet, RoleGranted, RoleRevoked
from ledger.process.common import DEFAULT_POLICY, TxContext, verify_name, verify_role, verify_rule
from ledger.process.payload import Account, PolicyValue, Text, arg, declare_kind
from ledger.state import (
    PREFIX_GOVERNANCE, ROLE_CODES, StateReader, add_counter, get_counter, get_policy, get_record, get_role_count,
    has_role, policy_key, set_record, set_role,
)

MAX_POLICY_INT = 2**64 - 1
MAX_POLICY_STR = 256
# Parameters that must stay above zero: a zero lifetime would credit coins (or privileges) already dead.
POLICY_MINIMUMS: dict[str, int] = {"coin_lifetime_ms": 1, "privilege_lifetime_ms": 1, "coin_value_minor": 1}
BRANCH_ADMIN = "branch-admin"


@dataclass(frozen=True, slots=True)
class SetPolicy:
    """A set-policy payload."""

    name: Text = arg("The policy parameter.")
    value: PolicyValue = arg("Its new value (an integer for integer parameters).")


@dataclass(frozen=True, slots=True)
class GrantRole:
    """A grant-role payload."""

    account: Account = arg("The account (64 hex digits) receiving the role.")
    role: Text = arg("branch-admin, staff, issuer or compliance.")
    branch: Text = arg("The branch the account belongs to.")


@dataclass(frozen=True, slots=True)
class RevokeRole:
    """A revoke-role payload."""

    account: Account = arg("The account (64 hex digits) losing the role.")
    role: Text = arg("branch-admin, staff, issuer or compliance.")


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One applied set-policy: the version it created, the value before and after, where and by whom."""

    version: int
    name: str
    value: int | str
    previous: int | str | None  # None: the parameter had never been set on this chain
    height: int
    sender: bytes


# --- versioned policy ------------------------------------------------------------------------------------


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


# --- set-policy ------------------------------------------------------------------------------------------


def process_set_policy(ctx: TxContext, tx: SetPolicy) -> list[Event]:
    """Change one policy parameter and record the change as a new policy version."""
    # Only a branch admin changes policy
    verify_role(ctx, BRANCH_ADMIN)
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

    raw_previous = ctx.state.get_state(policy_key(tx.name))
    previous = None if raw_previous is None else get_policy(ctx.state, tx.name, default)
    set_record(ctx.state, policy_key(tx.name), tx.value)
    version = add_counter(ctx.state, "policy_version", 1)
    set_record(ctx.state, policy_version_key(version), [tx.name, tx.value, previous, ctx.height, ctx.sender])
    return [PolicySet(tx.name, tx.value, version)]


# --- grant-role / revoke-role ----------------------------------------------------------------------------


def _verify_known_role(role: str) -> None:
    verify_rule(role in ROLE_CODES, reasons.UNKNOWN_ROLE,
                f"role {role[:80]!r} does not exist; expected one of {', '.join(ROLE_CODES)}")


def process_grant_role(ctx: TxContext, tx: GrantRole) -> list[Event]:
    """Give ``tx.account`` the role ``tx.role`` in branch ``tx.branch``."""
    # Only a branch admin grants roles
    verify_role(ctx, BRANCH_ADMIN)
    # The role exists
    _verify_known_role(tx.role)
    # The branch is named
    verify_name("branch", tx.branch)
    # The account does not hold the role already (a repeat would hide a mistake)
    verify_rule(not has_role(ctx.state, tx.role, tx.account), reasons.ROLE_ALREADY_HELD,
                f"account {tx.account.hex()[:16]}… already holds {tx.role!r}")

    set_role(ctx.state, tx.role, tx.account, True)
    set_branch_of(ctx.state, tx.account, tx.branch)
    return [RoleGranted(tx.account, tx.role, tx.branch)]


def process_revoke_role(ctx: TxContext, tx: RevokeRole) -> list[Event]:
    """Take the role ``tx.role`` away from ``tx.account``."""
    # Only a branch admin revokes roles
    verify_role(ctx, BRANCH_ADMIN)
    # The role exists
    _verify_known_role(tx.role)
    # The account holds it
    verify_rule(has_role(ctx.state, tx.role, tx.account), reasons.ROLE_NOT_HELD,
                f"account {tx.account.hex()[:16]}… does not hold {tx.role!r}")
    # The last branch admin stays: without one, nobody could ever grant a role or change policy again
    if tx.role == BRANCH_ADMIN:
        admins = get_role_count(ctx.state, BRANCH_ADMIN)
        verify_rule(admins > 1, reasons.LAST_BRANCH_ADMIN,
                    f"{admins} branch admin(s) left; expected at least 2 before revoking one")

    set_role(ctx.state, tx.role, tx.account, False)
    if not any(has_role(ctx.state, role, tx.account) for role in ROLE_CODES):
        set_branch_of(ctx.state, tx.account, "")  # no role left: the account no longer belongs to a branch
    return [RoleRevoked(tx.account, tx.role)]


SPECS = (
    declare_kind("set-policy", SetPolicy, process_set_policy, senders="branch admin",
                 help="Change one policy parameter (branch admin); every version stays visible."),
    declare_kind("grant-role", GrantRole, process_grant_role, senders="branch admin",
                 help="Give an account a role (branch-admin, staff, issuer, compliance) in a branch (branch admin)."),
    declare_kind("revoke-role", RevokeRole, process_revoke_role, senders="branch admin",
                 help="Take a role away from an account (branch admin)."),
)
