"""Account state proofs: a customer checks a balance offline against a quorum-signed header.

Theory of operation
-------------------
A node answers ``GET /v1/accounts/{id}/proof`` with a JSON document (bytes as lowercase hex):

    {"version": 2, "chain_id", "account", "height", "header", "block_hash",
     "commit": [{"validator", "signature"}, ...],
     "validator_set_changes": [{"header", "commit": [...], "validators": [...]}, ...],
     "values": [{"key", "value" (hex or null: absent), "proof"}, ...]}

``header`` is the canonical header bytes (DESIGN "Wire formats"); each ``proof`` is the canonical
``ledger.smt.SmtProof`` bytes of one state key under the header's ``state_root``. ``verify_state_proof``
trusts nothing in the document except what it checks:

1. the header decodes, is for the genesis chain, and hashes to ``block_hash``;
2. the set in force at that height is found by walking ``validator_set_changes`` from the genesis set, exactly
   as for a receipt (``ledger.validator_sets.verify_sealed_header``, one function for both): the header names
   that set and at least ceil(2n/3) distinct members of it sealed ``block_hash``;
3. the document proves **exactly** the account's keys of ``compute_account_keys`` (derived here from the
   account id, never read from the document), each with a valid SMT membership or absence proof;
4. the proven values decode with the ledger's own typed getters.

What it returns (``VerifiedStateProof``): stored balance, nonce, lots, the balance spendable at the header's
time (lots expiring at or before it are dead), KYC level, freeze and lifetime earnings. Only ``pynacl`` and
``msgpack`` are needed (through ``ledger``'s pure core). Height 0 has no commit certificate, so a proof
at the genesis block is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.block import Header
from ledger.customers import PRIVILEGE_CODES, get_customer, get_earned, privilege_key
from ledger.limits import get_freeze
from ledger.lots import get_lots
from ledger.errors import LedgerError, ProofError
from ledger.genesis import Genesis
from ledger.smt import SmtProof, verify_proof
from ledger.state import (
    PREFIX_CUSTOMER, PREFIX_EARNED, PREFIX_FREEZE, PREFIX_LOTS, MemoryState, account_key, account_record_key,
    get_account,
)
from ledger.validator_sets import (
    ValidatorSetError, parse_seals, parse_validator_set_changes, verify_sealed_header,
)

STATE_PROOF_VERSION = 2
MAX_DOC_VALUES = 16


class StateProofError(ProofError):
    """A state proof document that fails verification; ``check`` names the failing check."""

    code = "bad_state_proof"

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check


@dataclass(frozen=True, slots=True)
class VerifiedStateProof:
    """What a valid state proof shows about an account at a quorum-signed height."""

    account: bytes
    height: int
    block_hash: bytes
    timestamp_ms: int
    state_root: bytes
    balance: int  # stored balance (lots dead but not yet swept included)
    spendable: int  # balance of the lots alive at timestamp_ms
    nonce: int
    lots: tuple[tuple[int, int], ...]
    kyc_level: int | None  # None: not a registered customer
    frozen: str | None  # the freeze reason code, None when not frozen
    lifetime_earned: int
    signers: tuple[bytes, ...]


def compute_account_keys(account: bytes) -> tuple[bytes, ...]:
    """The state keys a proof of ``account`` covers: record, lots, customer, freeze, earnings, privileges."""
    return (account_key(account), account_record_key(PREFIX_LOTS, account),
            account_record_key(PREFIX_CUSTOMER, account), account_record_key(PREFIX_FREEZE, account),
            account_record_key(PREFIX_EARNED, account),
            *(privilege_key(account, p) for p in PRIVILEGE_CODES))


def _hex(value: Any, what: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise StateProofError("format", f"{what} must be a hex string, got {type(value).__name__}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise StateProofError("format", f"{what} is not hex") from None
    if size is not None and len(raw) != size:
        raise StateProofError("format", f"{what} is {len(raw)} bytes; expected {size}")
    return raw


def _verify_header(doc: dict, genesis: Genesis) -> tuple[Header, bytes]:
    try:
        header = Header.decode(_hex(doc.get("header"), "header"))
    except StateProofError:
        raise
    except LedgerError as exc:
        raise StateProofError("header", f"header bytes do not decode: {exc.message}") from None
    if header.chain_id != genesis.chain_id or doc.get("chain_id") != genesis.chain_id:
        raise StateProofError("chain_id", f"proof is for chain {header.chain_id!r}; the genesis is "
                                          f"{genesis.chain_id!r}")
    block_hash = _hex(doc.get("block_hash"), "block_hash", 32)
    if header.hash() != block_hash:
        raise StateProofError("block_hash", f"header hashes to {header.hash().hex()}; the document says "
                                            f"{block_hash.hex()}")
    if header.height == 0:
        raise StateProofError("commit", "a proof at height 0 has no commit certificate; ask again after block 1")
    return header, block_hash


def _verify_commit(doc: dict, header: Header, block_hash: bytes, genesis: Genesis) -> tuple[bytes, ...]:
    """Walk ``validator_set_changes`` from the genesis set; the header names the set in force and a quorum
    of it sealed ``block_hash`` (the same function as for receipts; the same check names)."""
    try:
        seals = parse_seals(doc.get("commit"))
        changes = parse_validator_set_changes(doc.get("validator_set_changes"))
        return verify_sealed_header(genesis.chain_id, genesis.validator_keys, changes, header, block_hash, seals)
    except ValidatorSetError as exc:
        raise StateProofError(exc.check, exc.detail) from None


def _verify_values(doc: dict, account: bytes, root: bytes) -> MemoryState:
    values = doc.get("values")
    if not isinstance(values, list) or len(values) > MAX_DOC_VALUES:
        raise StateProofError("format", f"values must be a list of at most {MAX_DOC_VALUES} entries")
    wanted = compute_account_keys(account)
    seen: dict[bytes, bytes | None] = {}
    for i, item in enumerate(values):
        if not isinstance(item, dict):
            raise StateProofError("format", f"values[{i}] must be an object {{key, value, proof}}")
        key = _hex(item.get("key"), f"values[{i}].key")
        if key not in wanted:
            raise StateProofError("keys", f"values[{i}] proves key {key.hex()[:24]}…, which is not one of the "
                                          "account's keys")
        if key in seen:
            raise StateProofError("keys", f"values[{i}] proves key {key.hex()[:24]}… twice")
        value = None if item.get("value") is None else _hex(item.get("value"), f"values[{i}].value")
        try:
            proof = SmtProof.decode(_hex(item.get("proof"), f"values[{i}].proof"))
            verify_proof(root, key, value, proof)
        except StateProofError:
            raise
        except LedgerError as exc:
            raise StateProofError("smt_proof", f"values[{i}] (key {key.hex()[:24]}…): {exc.message}") from None
        seen[key] = value
    missing = [k for k in wanted if k not in seen]
    if missing:
        raise StateProofError("keys", f"{len(missing)} of the account's {len(wanted)} keys are not proven "
                                      f"(first: {missing[0].hex()[:24]}…)")
    return MemoryState({k: v for k, v in seen.items() if v is not None})


def verify_state_proof(doc: dict, genesis: Genesis) -> VerifiedStateProof:
    """Check an account state proof document against ``genesis``; return what it proves or raise ``StateProofError``."""
    if not isinstance(doc, dict):
        raise StateProofError("format", f"a state proof is a JSON object, got {type(doc).__name__}")
    if doc.get("version") == 1:
        raise StateProofError("version", "version 1 state proofs are no longer accepted; expected version 2")
    if doc.get("version") != STATE_PROOF_VERSION:
        raise StateProofError("version", f"state proof version {doc.get('version')!r}; expected "
                                         f"{STATE_PROOF_VERSION}")
    account = _hex(doc.get("account"), "account", 32)
    header, block_hash = _verify_header(doc, genesis)
    signers = _verify_commit(doc, header, block_hash, genesis)
    state = _verify_values(doc, account, header.state_root)
    try:
        acct = get_account(state, account)
        lots = tuple(get_lots(state, account))
        customer = get_customer(state, account)
        freeze = get_freeze(state, account)
        earned = get_earned(state, account)
    except LedgerError as exc:
        raise StateProofError("values", f"a proven value does not decode: {exc.message}") from None
    return VerifiedStateProof(
        account=account, height=header.height, block_hash=block_hash, timestamp_ms=header.timestamp_ms,
        state_root=header.state_root, balance=acct.balance,
        spendable=sum(a for e, a in lots if e > header.timestamp_ms), nonce=acct.nonce, lots=lots,
        kyc_level=None if customer is None else customer.kyc_level,
        frozen=None if freeze is None else freeze.reason_code, lifetime_earned=earned, signers=signers)
