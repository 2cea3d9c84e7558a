"""Validator-set changes in proofs: from the genesis set to the set that seals a given height.

Theory of operation
-------------------
A receipt or a state proof ends in a header sealed by "the set in force at its height". An offline verifier
knows only the genesis set, so a proof carries every validator-set change below its height (DESIGN "Wire
formats", ``validator_set_changes``), each entry ``{"header", "commit", "validators"}``:

    S := genesis set
    for each entry, in height order:
        entry.header is for the genesis chain, at a height below the proof's,
        entry.header.validator_set_hash == H(S)                       (S sealed it)
        entry.header.next_validator_set_hash == H(entry.validators)   (it names the new set ...)
                                             != entry.header.validator_set_hash   (... which is a change)
        >= ceil(2|S|/3) distinct members of S sealed H(entry.header)
        S := entry.validators
    the proof's header has validator_set_hash == H(S) and >= ceil(2|S|/3) distinct members of S sealed it

The entry's header is the one announcing the change (decided in block H, header H+1 names the new set and is
the last the old set seals; the new set seals from H+2). ``verify_validator_set_changes`` is that walk, shared
by ``ledger.receipt`` and ``ledger.state_proof``; every failure is a ``ValidatorSetError`` whose ``check``
names it (``validator_set_change_*``, then ``validator_set_hash`` / ``commit_*`` for the proof's own header),
and the callers re-raise it under their own error class with the same check name.

Validator sets in state (the contract the node and consensus build on)
----------------------------------------------------------------------
A governance decision (``add-validator`` / ``remove-validator``) in block H schedules the new set effective
at H+2: header H+1 names it in ``next_validator_set_hash`` (and is the last one the old set seals), and
executing block H+2 promotes it to current. At most one change is pending at a time and a set never drops
below one member. Three state records under ``b"w"``:

    b"w\x00" current  -> P([[branch_name, node_public_key, peer_address], ...])   the set in force, in order
    b"w\x01" pending  -> P([effective_height, [[branch_name, node_public_key, peer_address], ...]])
    b"w\x02" history  -> P([[effective_height, [node_public_key, ...]], ...])   from [0, genesis keys]

``get_validators_at(state, height)`` reads the history, so the committed state at head answers for every
height up to head + 2 (a decision at head is effective at head + 2). The branches of the network are the
names of the latest decided set (the pending one if any, else the current one): an added branch exists from
its decision on, so its first admins can be granted at once; a removed one stops existing at its decision.
``get_validator_set_changes(store, height)`` reads the announcing headers (effective height - 1) of the
history's changes, with their certificates, from the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from ledger import codec
from ledger.block import CommitSeal, Header, quorum, seal_message, validator_set_hash
from ledger.errors import LedgerError, ProofError, SchemaError
from ledger.keys import verify as verify_signature

MAX_SET_CHANGES = 256  # a proof walking more changes than this is refused (the file limit bounds it too)
MAX_VALIDATORS = 1024
MAX_SEALS = 1024
MAX_HEADER_BYTES = 4096
ENTRY_KEYS = ("header", "commit", "validators")

_HEX = re.compile(r"(?:[0-9a-f]{2})*")


class ValidatorSetError(ProofError):
    """A validator-set walk or a commit certificate that fails; ``check`` names the failing check."""

    code = "bad_validator_set"

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check
        self.detail = message


@dataclass(frozen=True, slots=True)
class ValidatorSetChange:
    """One entry of ``validator_set_changes``: the header announcing a change, its seals, the new set."""

    header: Header
    header_raw: bytes  # the canonical header bytes as carried (hashed as-is)
    commit: tuple[CommitSeal, ...]
    validators: tuple[bytes, ...]

    @classmethod
    def of(cls, header: Header, commit: Sequence[CommitSeal], validators: Sequence[bytes]) -> "ValidatorSetChange":
        return cls(header, header.encode(), tuple(commit), tuple(validators))

    def to_json(self) -> dict[str, Any]:
        """``{"header", "commit": [{"validator", "signature"}], "validators": [hex, ...]}``, bytes as hex."""
        return {"header": self.header_raw.hex(),
                "commit": [{"validator": s.validator.hex(), "signature": s.signature.hex()} for s in self.commit],
                "validators": [v.hex() for v in self.validators]}

    def to_compact(self) -> list:
        """``[header, [[validator, signature], ...], [public_key, ...]]``, bytes as ``bin``."""
        return [self.header_raw, [[s.validator, s.signature] for s in self.commit], list(self.validators)]


# ----------------------------------------------------------------------------------------------- parsing


def _format(message: str) -> ValidatorSetError:
    return ValidatorSetError("format", message)


def _hex(value: Any, name: str, size: int | None = None, limit: int = MAX_HEADER_BYTES) -> bytes:
    if not isinstance(value, str):
        raise _format(f"{name} must be a lowercase hex string, got {type(value).__name__}")
    if len(value) > 2 * limit or not _HEX.fullmatch(value):
        raise _format(f"{name} is not lowercase hex of at most {limit} bytes: {value[:24]!r}")
    raw = bytes.fromhex(value)
    if size is not None and len(raw) != size:
        raise _format(f"{name} is {len(raw)} bytes; expected {size}")
    return raw


def parse_seals(value: Any, name: str = "commit") -> tuple[CommitSeal, ...]:
    """JSON seals ``[{"validator", "signature"}, ...]`` -> ``CommitSeal``s (shape only; a "format" error)."""
    if not isinstance(value, list) or len(value) > MAX_SEALS:
        raise _format(f"{name} must be a list of at most {MAX_SEALS} seals")
    seals = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"validator", "signature"}:
            raise _format(f"{name}[{i}] must be an object with exactly validator and signature")
        seals.append(CommitSeal(_hex(item["validator"], f"{name}[{i}].validator", 32),
                                _hex(item["signature"], f"{name}[{i}].signature", 64)))
    return tuple(seals)


def parse_validator_set_changes(value: Any) -> tuple[ValidatorSetChange, ...]:
    """JSON ``validator_set_changes`` -> entries (shape only: nothing is verified; a "format" error)."""
    if not isinstance(value, list) or len(value) > MAX_SET_CHANGES:
        raise _format(f"validator_set_changes must be a list of at most {MAX_SET_CHANGES} entries")
    out = []
    for i, item in enumerate(value):
        where = f"validator_set_changes[{i}]"
        if not isinstance(item, dict) or set(item) != set(ENTRY_KEYS):
            raise _format(f"{where} must be an object with exactly {', '.join(ENTRY_KEYS)}")
        header_raw = _hex(item["header"], f"{where}.header")
        try:
            header = Header.decode(header_raw)
        except LedgerError as exc:
            raise _format(f"{where}.header is not a canonical block header: {exc.message}") from None
        validators = item["validators"]
        if not isinstance(validators, list) or len(validators) > MAX_VALIDATORS:
            raise _format(f"{where}.validators must be a list of at most {MAX_VALIDATORS} public keys")
        keys = tuple(_hex(v, f"{where}.validators[{j}]", 32) for j, v in enumerate(validators))
        out.append(ValidatorSetChange(header, header_raw, parse_seals(item["commit"], f"{where}.commit"), keys))
    return tuple(out)


def changes_from_compact(value: Any) -> list[dict[str, Any]]:
    """Compact ``[[header, [[v, s], ...], [pk, ...]], ...]`` -> the JSON entries (shape-checked later)."""
    if not isinstance(value, list) or len(value) > MAX_SET_CHANGES:
        raise _format(f"compact validator_set_changes must be an array of at most {MAX_SET_CHANGES} entries")
    out = []
    for i, item in enumerate(value):
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], bytes)
                and isinstance(item[1], list) and isinstance(item[2], list)
                and all(isinstance(s, list) and len(s) == 2 and all(isinstance(x, bytes) for x in s)
                        for s in item[1])
                and all(isinstance(v, bytes) for v in item[2])):
            raise _format(f"compact validator_set_changes[{i}] must be [header, [[validator, signature], ...], "
                          "[public_key, ...]] with bytes as bin")
        out.append({"header": item[0].hex(),
                    "commit": [{"validator": v.hex(), "signature": s.hex()} for v, s in item[1]],
                    "validators": [v.hex() for v in item[2]]})
    return out


# ---------------------------------------------------------------------------------------------- checking


def verify_seals(chain_id: str, height: int, block_hash: bytes, seals: Sequence[CommitSeal],
                 validators: Sequence[bytes], prefix: str = "commit", what: str = "commit") -> tuple[bytes, ...]:
    """Raise unless >= ceil(2n/3) distinct members of ``validators`` validly sealed ``block_hash``.

    Checks are named ``{prefix}_unknown_validator``, ``_duplicate_validator``, ``_signature`` and ``_quorum``;
    messages call the seal list ``what``. Returns the signers in seal order.
    """
    members = set(validators)
    message = seal_message(chain_id, height, block_hash)
    seen: list[bytes] = []
    for i, seal in enumerate(seals):
        if seal.validator not in members:
            raise ValidatorSetError(f"{prefix}_unknown_validator",
                                    f"{what}[{i}] is by {seal.validator.hex()}, not a validator of the set "
                                    f"in force at height {height}")
        if seal.validator in seen:
            raise ValidatorSetError(f"{prefix}_duplicate_validator",
                                    f"{what}[{i}]: validator {seal.validator.hex()} sealed twice")
        if not verify_signature(seal.validator, message, seal.signature):
            raise ValidatorSetError(f"{prefix}_signature",
                                    f"{what}[{i}] by {seal.validator.hex()} does not verify for block "
                                    f"{block_hash.hex()} at height {height}")
        seen.append(seal.validator)
    need = quorum(len(validators))
    if len(seen) < need:
        where = "" if what == "commit" else f" in {what}"
        raise ValidatorSetError(f"{prefix}_quorum", f"{len(seen)} distinct validator seals{where} at height "
                                                   f"{height}; {len(validators)} validators need {need}")
    return tuple(seen)


def _fail(check: str, index: int, message: str) -> ValidatorSetError:
    return ValidatorSetError(f"validator_set_change_{check}", f"validator_set_changes[{index}]: {message}")


def verify_validator_set_changes(chain_id: str, genesis_set: Sequence[bytes],
                                 changes: Sequence[ValidatorSetChange], height: int) -> tuple[bytes, ...]:
    """Walk ``changes`` from ``genesis_set``; return the set in force at ``height`` or raise ``ValidatorSetError``."""
    # Entries come in strictly increasing height order (checked first, so a shuffled list is named as such)
    for i in range(1, len(changes)):
        if changes[i].header.height <= changes[i - 1].header.height:
            raise _fail("order", i, f"height {changes[i].header.height} does not follow the previous entry's "
                                    f"{changes[i - 1].header.height}; expected increasing heights")
    current = tuple(genesis_set)
    for i, change in enumerate(changes):
        h = change.header
        # The entry is for this network
        if h.chain_id != chain_id:
            raise _fail("chain_id", i, f"header is for chain {h.chain_id!r}; the genesis is {chain_id!r}")
        # It is below the proven height (a change at or above it cannot affect who sealed it)
        if h.height >= height:
            raise _fail("height", i, f"header height {h.height} is not below the proven height {height}")
        # The set in force so far sealed it
        current_hash = validator_set_hash(current)
        if h.validator_set_hash != current_hash:
            raise _fail("set_hash", i, f"header names validator set {h.validator_set_hash.hex()}; the set in "
                                       f"force at height {h.height} hashes to {current_hash.hex()}")
        # It names the new set, and that is a change
        if not change.validators or len(set(change.validators)) != len(change.validators):
            raise _fail("validators", i, f"the new set of {len(change.validators)} keys is empty or repeats a key")
        new_hash = validator_set_hash(change.validators)
        if h.next_validator_set_hash != new_hash:
            raise _fail("next_hash", i, f"header names next set {h.next_validator_set_hash.hex()}; the listed "
                                        f"validators hash to {new_hash.hex()}")
        if h.next_validator_set_hash == h.validator_set_hash:
            raise _fail("no_change", i, f"header at height {h.height} names the same set for the next height; "
                                        "expected a change")
        # A quorum of the set in force sealed that header
        verify_seals(h.chain_id, h.height, h.hash(), change.commit, current, prefix="validator_set_change",
                     what=f"validator_set_changes[{i}].commit")
        current = change.validators
    return current


def verify_sealed_header(chain_id: str, genesis_set: Sequence[bytes], changes: Sequence[ValidatorSetChange],
                         header: Header, block_hash: bytes, seals: Sequence[CommitSeal]) -> tuple[bytes, ...]:
    """The whole check of a proof's header: walk the changes, then the header names that set and a quorum
    of it sealed ``block_hash``. Returns the signers; raises ``ValidatorSetError``."""
    current = verify_validator_set_changes(chain_id, genesis_set, changes, header.height)
    expected = validator_set_hash(current)
    if header.validator_set_hash != expected:
        raise ValidatorSetError("validator_set_hash",
                                f"header names validator set {header.validator_set_hash.hex()}; after "
                                f"{len(changes)} change(s) the set in force at height {header.height} hashes "
                                f"to {expected.hex()}")
    return verify_seals(header.chain_id, header.height, block_hash, seals, current)


# ------------------------------------------------------------------------------------------ state records

KEY_CURRENT = b"w\x00"
KEY_PENDING = b"w\x01"
KEY_HISTORY = b"w\x02"
CHANGE_DELAY = 2  # decided in block H, in force from H + 2


@dataclass(frozen=True, slots=True)
class ValidatorInfo:
    """A validator (= a branch): its name, node key and the address peers dial ("" = from node config)."""

    branch_name: str
    node_public_key: bytes
    peer_address: str = ""

    def to_list(self) -> list:
        return [self.branch_name, self.node_public_key, self.peer_address]


@dataclass(frozen=True, slots=True)
class PendingChange:
    """A decided change not in force yet: the set that seals from ``effective_height`` on."""

    effective_height: int
    validators: tuple[ValidatorInfo, ...]


def _get(state: Any, key: bytes) -> Any:
    raw = state.get_state(key)
    return None if raw is None else codec.decode(raw)


def _parse_infos(value: Any, what: str) -> tuple[ValidatorInfo, ...]:
    if not (isinstance(value, list) and value and all(
            isinstance(v, list) and len(v) == 3 and isinstance(v[0], str) and isinstance(v[1], bytes)
            and len(v[1]) == 32 and isinstance(v[2], str) for v in value)):
        raise SchemaError(f"state validator set {what}: expected [[branch_name, key(32), peer_address], ...]")
    return tuple(ValidatorInfo(*v) for v in value)


def compute_genesis_validator_state(validators: Sequence[Any]) -> dict[bytes, bytes]:
    """The ``b"w"`` records of the genesis set (``ledger.genesis.Validator``s, in genesis order)."""
    infos = [ValidatorInfo(v.name, v.public_key, v.peer_address) for v in validators]
    return {KEY_CURRENT: codec.encode([i.to_list() for i in infos]),
            KEY_HISTORY: codec.encode([[0, [i.node_public_key for i in infos]]])}


def get_current_validators(state: Any) -> tuple[ValidatorInfo, ...]:
    """The set in force at the state's height, in order."""
    return _parse_infos(_get(state, KEY_CURRENT), "current")


def get_pending_change(state: Any) -> PendingChange | None:
    """The decided change not yet in force (None if there is none)."""
    value = _get(state, KEY_PENDING)
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and type(value[0]) is int):
        raise SchemaError("state pending validator change: expected [effective_height, validators]")
    return PendingChange(value[0], _parse_infos(value[1], "pending"))


def get_validator_info(state: Any) -> list[tuple[str, bytes, str]]:
    """``[(branch_name, node_public_key, peer_address)]`` of the latest decided set (pending, else current):
    what a node needs to dial every validator, an added one included, as soon as it is decided."""
    pending = get_pending_change(state)
    infos = pending.validators if pending is not None else get_current_validators(state)
    return [(i.branch_name, i.node_public_key, i.peer_address) for i in infos]


def get_branches(state: Any) -> tuple[str, ...]:
    """The network's branches: the names of the latest decided validator set, in its order."""
    return tuple(name for name, _, _ in get_validator_info(state))


def _get_history(state: Any) -> list[tuple[int, tuple[bytes, ...]]]:
    value = _get(state, KEY_HISTORY)
    if not (isinstance(value, list) and value and all(
            isinstance(e, list) and len(e) == 2 and type(e[0]) is int and isinstance(e[1], list)
            and e[1] and all(isinstance(k, bytes) and len(k) == 32 for k in e[1]) for e in value)):
        raise SchemaError("state validator history: expected [[effective_height, [key, ...]], ...] from height 0")
    return [(e[0], tuple(e[1])) for e in value]


def get_validators_at(state: Any, height: int) -> tuple[bytes, ...]:
    """The keys of the set that seals ``height``; answerable for any height <= head + 2 from the state at head."""
    keys: tuple[bytes, ...] = ()
    for effective, entry in _get_history(state):
        if effective > height:
            break
        keys = entry
    return keys


def schedule_validator_change(state: Any, decided_height: int, validators: Sequence[ValidatorInfo]) -> int:
    """Record the decision (at ``decided_height``) of a new set; return the height it seals from.

    The caller has checked that no change is pending and that the set is non-empty and new.
    """
    effective = decided_height + CHANGE_DELAY
    state.set_state(KEY_PENDING, codec.encode([effective, [v.to_list() for v in validators]]))
    history = _get_history(state) + [(effective, tuple(v.node_public_key for v in validators))]
    state.set_state(KEY_HISTORY, codec.encode([[h, list(keys)] for h, keys in history]))
    return effective


def process_validator_set_promotion(state: Any, height: int) -> bool:
    """At the start of block ``height``: make a pending set due at this height the current one."""
    pending = get_pending_change(state)
    if pending is None or pending.effective_height > height:
        return False
    state.set_state(KEY_CURRENT, codec.encode([v.to_list() for v in pending.validators]))
    state.set_state(KEY_PENDING, None)
    return True


# ------------------------------------------------------------------------------------------------ node side


def get_validator_set_changes(source: Any, height: int) -> tuple[ValidatorSetChange, ...]:
    """The changes a proof at ``height`` carries: every change announced below it, in height order.

    ``source`` is the node's store: its head state's history gives the changes, its blocks and certificates
    the announcing headers (effective height - 1) and their seals.
    """
    out = []
    for effective, keys in _get_history(source)[1:]:
        announce = effective - 1
        if announce >= height:
            break
        out.append(ValidatorSetChange.of(source.get_header(announce), source.get_certificate(announce), keys))
    return tuple(out)
