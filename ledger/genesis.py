"""The genesis file: chain id, validator set, initial roles and policy.

genesis.json = {"chain_id", "genesis_time_ms", "validators": [{"name", "public_key", ...}],
                "roles": {"issuer": [hex, ...], "branch-admin": [...], "staff": [...], "compliance": [...]},
                "policy": {name: int | str, ...}}
A customer's verifier reads only chain_id and validators; nodes read everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.block import quorum, validator_set_hash
from ledger.errors import GenesisError

ROLES = ("branch-admin", "staff", "issuer", "compliance")


@dataclass(frozen=True, slots=True)
class Validator:
    name: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    validators: tuple[Validator, ...]
    roles: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

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
            "validators": [{"name": v.name, "public_key": v.public_key.hex()} for v in self.validators],
            "roles": {r: [k.hex() for k in ks] for r, ks in self.roles.items()},
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
        if not isinstance(name, str) or not name:
            raise GenesisError(f"genesis: validators[{i}].name must be a non-empty string")
        pk = _hex32(v.get("public_key"), f"genesis: validators[{i}].public_key")
        if pk in seen:
            raise GenesisError(f"genesis: validator key of {name!r} appears twice")
        seen.add(pk)
        validators.append(Validator(name, pk))
    roles_doc = doc.get("roles", {})
    if not isinstance(roles_doc, dict):
        raise GenesisError("genesis: roles must be an object of role -> [public keys]")
    roles: dict[str, tuple[bytes, ...]] = {}
    for role, keys in roles_doc.items():
        if role not in ROLES:
            raise GenesisError(f"genesis: unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(keys, list):
            raise GenesisError(f"genesis: roles.{role} must be a list")
        roles[role] = tuple(_hex32(k, f"genesis: roles.{role}[{j}]") for j, k in enumerate(keys))
    policy = doc.get("policy", {})
    if not isinstance(policy, dict):
        raise GenesisError("genesis: policy must be an object")
    for k, v in policy.items():
        if isinstance(v, bool) or not isinstance(v, (int, str)):
            raise GenesisError(f"genesis: policy.{k} must be an integer or string, got {v!r}")
    known = {"chain_id", "genesis_time_ms", "validators", "roles", "policy"}
    extra = {k: v for k, v in doc.items() if k not in known}
    return Genesis(chain_id, t, tuple(validators), roles, dict(policy), extra)


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
