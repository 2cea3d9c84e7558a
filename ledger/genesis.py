"""The genesis file: chain id, validator set, initial roles and policy.

genesis.json = {"chain_id", "genesis_time_ms", "validators": [{"name", "public_key", ...}],
                "roles": {"branch-admin": [{"public_key": hex, "branch": name}, ...], "staff": [...],
                          "issuer": [{"public_key": hex}, ...], "compliance": [...], "auditor": [...],
                          "treasury": [...]},
                "policy": {name: int | str, ...}}
A customer's verifier reads only chain_id and validators; nodes read everything.

Branches are the validators' names. ``branch-admin`` and ``staff`` are held inside one branch (each entry
names it); issuer, compliance, auditor and treasury are company-wide and carry no branch (an entry naming
one is refused, so the file means what it says). The older form — a role's list of plain hex keys, with an
optional top-level ``"branches": {hex: name}`` — is still read; a branch role without a placement there is
placed in the first validator's branch. Validator entries may carry a ``"peer_address"`` (kept in state for
the nodes; genesis validators' addresses otherwise come from each node's config).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.block import quorum, validator_set_hash
from ledger.errors import GenesisError

ROLES = ("branch-admin", "staff", "issuer", "compliance", "auditor", "treasury")
# Roles held inside one branch (the holder acts only there); the others are company-wide and carry no branch.
BRANCH_ROLES = ("branch-admin", "staff")


@dataclass(frozen=True, slots=True)
class Validator:
    name: str  # the branch this validator is
    public_key: bytes
    peer_address: str = ""  # optional: nodes take genesis validators' addresses from their config


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    validators: tuple[Validator, ...]
    roles: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    branches: dict[bytes, str] = field(default_factory=dict)  # account -> branch of its branch-admin/staff role

    def get_branch_of(self, account: bytes) -> str:
        """The branch of a branch-role holder: its placement, else the first validator's branch."""
        return self.branches.get(account) or self.validators[0].name

    @property
    def validator_keys(self) -> tuple[bytes, ...]:
        return tuple(v.public_key for v in self.validators)

    @property
    def validator_set_hash(self) -> bytes:
        return validator_set_hash(self.validator_keys)

    @property
    def quorum(self) -> int:
        return quorum(len(self.validators))

    def to_json(self) -> dict[str, Any]:
        doc = dict(self.extra)
        doc.update({
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "validators": [{"name": v.name, "public_key": v.public_key.hex(),
                            **({"peer_address": v.peer_address} if v.peer_address else {})}
                           for v in self.validators],
            "roles": {r: [{"public_key": k.hex(), "branch": self.get_branch_of(k)} if r in BRANCH_ROLES
                          else {"public_key": k.hex()} for k in ks] for r, ks in self.roles.items()},
            "policy": dict(self.policy),
        })
        return doc


def _hex32(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise GenesisError(f"{where}: expected 64 hex digits, got {type(value).__name__}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise GenesisError(f"{where}: {value[:20]!r} is not hex") from None
    if len(raw) != 32:
        raise GenesisError(f"{where}: {len(raw)} bytes; expected 32")
    return raw


def genesis_from_json(doc: Any) -> Genesis:
    """Validate a parsed genesis document and build a ``Genesis``."""
    if not isinstance(doc, dict):
        raise GenesisError("genesis: expected a JSON object")
    chain_id = doc.get("chain_id")
    if not isinstance(chain_id, str) or not chain_id or len(chain_id) > 64:
        raise GenesisError(f"genesis: chain_id must be a non-empty string of at most 64 chars, got {chain_id!r}")
    t = doc.get("genesis_time_ms")
    if not isinstance(t, int) or isinstance(t, bool) or t < 0:
        raise GenesisError(f"genesis: genesis_time_ms must be a non-negative integer, got {t!r}")
    vals = doc.get("validators")
    if not isinstance(vals, list) or not vals:
        raise GenesisError("genesis: validators must be a non-empty list")
    validators = []
    seen: set[bytes] = set()
    for i, v in enumerate(vals):
        if not isinstance(v, dict):
            raise GenesisError(f"genesis: validators[{i}] must be an object")
        name = v.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= 64 or not name.isprintable():
            raise GenesisError(f"genesis: validators[{i}].name must be 1..64 printable characters (a branch name)")
        if any(name == other.name for other in validators):
            raise GenesisError(f"genesis: validator name {name!r} appears twice; each validator is one branch")
        pk = _hex32(v.get("public_key"), f"genesis: validators[{i}].public_key")
        if pk in seen:
            raise GenesisError(f"genesis: validator key of {name!r} appears twice")
        seen.add(pk)
        address = v.get("peer_address", "")
        if not isinstance(address, str) or len(address) > 256:
            raise GenesisError(f"genesis: validators[{i}].peer_address must be a string of at most 256 chars")
        validators.append(Validator(name, pk, address))
    branches = _parse_legacy_branches(doc.get("branches", {}))
    roles_doc = doc.get("roles", {})
    if not isinstance(roles_doc, dict):
        raise GenesisError("genesis: roles must be an object of role -> [{public_key, branch}]")
    roles: dict[str, tuple[bytes, ...]] = {}
    for role, entries in roles_doc.items():
        if role not in ROLES:
            raise GenesisError(f"genesis: unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(entries, list):
            raise GenesisError(f"genesis: roles.{role} must be a list")
        keys = []
        for j, entry in enumerate(entries):
            where = f"genesis: roles.{role}[{j}]"
            if isinstance(entry, str):  # the older form: a plain key
                keys.append(_hex32(entry, where))
                continue
            if not isinstance(entry, dict) or not set(entry) <= {"public_key", "branch"}:
                raise GenesisError(f"{where}: expected {{\"public_key\": hex, \"branch\": name}} or a hex key")
            key = _hex32(entry.get("public_key"), f"{where}.public_key")
            branch = entry.get("branch")
            if branch is not None:
                if role not in BRANCH_ROLES:
                    raise GenesisError(f"{where}: {role} is company-wide and carries no branch; got {branch!r}")
                if branches.get(key, branch) != branch:
                    raise GenesisError(f"{where}: account {key.hex()[:16]}… is placed in both "
                                       f"{branches[key]!r} and {branch!r}; an account belongs to one branch")
                branches[key] = branch
            keys.append(key)
        roles[role] = tuple(keys)
    names = {v.name for v in validators}
    for key, branch in branches.items():
        if branch not in names:
            raise GenesisError(f"genesis: account {key.hex()[:16]}… is placed in branch {branch!r}, which is not "
                               f"a validator's name; expected one of {', '.join(sorted(names))}")
    policy = doc.get("policy", {})
    if not isinstance(policy, dict):
        raise GenesisError("genesis: policy must be an object")
    for k, v in policy.items():
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise GenesisError(f"genesis: policy.{k} must be an integer or string, got {v!r}")
    known = {"chain_id", "genesis_time_ms", "validators", "roles", "policy", "branches"}
    extra = {k: v for k, v in doc.items() if k not in known}
    return Genesis(chain_id, t, tuple(validators), roles, dict(policy), extra, branches)


def _parse_legacy_branches(doc: Any) -> dict[bytes, str]:
    """The older top-level ``"branches": {account hex: branch}``."""
    if not isinstance(doc, dict):
        raise GenesisError("genesis: branches must be an object of account hex -> branch name")
    out = {}
    for hex_id, branch in doc.items():
        key = _hex32(hex_id, "genesis: branches key")
        if not isinstance(branch, str) or not 0 < len(branch) <= 64:
            raise GenesisError(f"genesis: branches.{hex_id[:16]}… is {branch!r}; expected a name of 1..64 chars")
        out[key] = branch
    return out


def load_genesis(path: str | Path) -> Genesis:
    """Read and validate a genesis.json file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise GenesisError(f"genesis file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GenesisError(f"cannot read genesis file {path}: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenesisError(f"genesis file {path} is not JSON: {exc}") from None
    return genesis_from_json(doc)


def save_genesis(path: str | Path, genesis: Genesis) -> None:
    Path(path).write_text(json.dumps(genesis.to_json(), indent=2) + "\n")
