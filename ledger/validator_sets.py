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

On the node side, ``get_validator_set_changes`` is the one hook that lists the changes a proof at a height
must carry. Governance does not change the validator set yet, so it returns none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from ledger.block import CommitSeal, Header, quorum, seal_message, validator_set_hash
from ledger.errors import LedgerError, ProofError
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


# ------------------------------------------------------------------------------------------------ node side


def get_validator_set_changes(source: Any, height: int) -> tuple[ValidatorSetChange, ...]:
    """The changes a proof at ``height`` carries: every change announced below it, in height order.

    The one place to extend when governance changes the validator set: read the announcing headers, their
    certificates and the new sets from ``source`` (the node's store). Until then the set never changes.
    """
    return ()
