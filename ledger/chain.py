"""Blocks as state transitions: the genesis block, and building, executing and validating a block.

Theory of operation
-------------------
A block is executed before anyone votes on it (execute-then-vote), so its header commits to the results
and the state of its own transactions. Execution is pure: it reads a ``StateReader`` (the parent's state)
and an SMT node reader, and returns a ``BlockExecution`` holding the header, per-tx results, the net state
writes and the new SMT nodes; the node commits all of them in one storage batch once the block is decided.

Each transaction goes through two gates:

1. **Admission** (``check_admission``): right chain, known kind, well-formed payload, nonce exactly the
   sender's state nonce + 1, valid signatures: the sender's first and at most one more, by the sender's
   registered second-factor key (``check_signers``: nobody can append a signature to a pending tx). A tx
   that fails admission can never enter a block: the proposer (``build_block``) skips it and reports why;
   a validator (``validate_block``) refuses a block that contains one. The mempool runs the same gate with ``check_admissible`` (later nonces allowed).
2. **Rules** (``ledger.process``): the kind's ``process_*`` step. A broken rule is *committed* as a failed
   ``TxResult`` (status + reason, no events) with the sender's nonce advanced: the nonce is bumped before
   the per-tx checkpoint, every other write of the tx is rolled back.

Poison transactions: any other error while executing one tx (a value beyond the 64-bit range of the
canonical encoding, met when a setter checks it at the write or when the tx's events are encoded, or any
unexpected exception of a ``process_*`` step) is also a committed failure, ``execution_error``, with the
overlay rolled back to the tx's checkpoint. Execution is a pure function of the parent state and the tx, so
every validator reaches the same failure. Only errors of the machine itself (``MemoryError``,
``RecursionError``: they depend on the node, not on the tx) are not turned into a result: the proposer then
drops the tx as ``unexecutable_tx`` (rolled back to before its nonce bump), so no mempool holds a tx that
stops every proposer; a validator meeting one raises (a local fault).

Validator sets: the set sealing a block and the one sealing the next height are DERIVED from the parent state
(``ledger.validator_sets.get_validators_at``), never taken from the caller: a governance decision in block H
makes header H+1 name the new set and block H+2 the first it seals; executing H+2 first promotes the pending
set (``process_validator_set_promotion``), before any transaction. ``validator_set_hash`` /
``next_validator_set_hash`` parameters are still accepted (older call sites pass them) and ignored.

Block-time sweeps (``ledger.sweeps``): when a due queue has an entry due by the block's timestamp in the
parent state, the block's first tx is the system transaction ``block-sweep`` (no signature, zero sender,
nonce = height). ``build_block``/``execute_block`` make it; ``validate_block`` demands exactly it, first,
exactly when due (check ``sweep``). Admission refuses the kind from anyone else (``system_tx``).

Signatures are checked at most once per tx per call (``build_block`` may skip them when the mempool has
already checked them at admission). Time comes only from the block's ``timestamp_ms``, never a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ledger import codec, merkle, reasons, sweeps
from ledger.block import MAX_BLOCK_TXS, Block, Header, validator_set_hash as compute_validator_set_hash
from ledger.errors import GenesisError, InvalidBlock, InvalidTransaction, LedgerError, SignatureError
from ledger.genesis import BRANCH_ROLES, Genesis
from ledger.limits import get_second_key
from ledger.process import KindSpec, get_kind
from ledger.proposals import compute_genesis_admin_counts
from ledger.process.common import DEFAULT_POLICY, TxContext, process_nonce
from ledger.reasons import TxFailure, invalid_tx
from ledger.results import TxResult, compute_leaves
from ledger.smt import EMPTY_ROOT, MemoryNodes, SparseMerkleTree
from ledger.state import (
    PREFIX_BRANCH, Overlay, StateReader, account_record_key, counter_key, get_nonce, policy_key, role_count_name,
    role_key,
)
from ledger.tx import SWEEP_KIND, SignedTx, decode_tx
from ledger.types import ZERO_HASH
from ledger.validator_sets import (
    compute_genesis_validator_state, get_validators_at, process_validator_set_promotion,
)

_INT_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class BlockExecution:
    """The outcome of executing a block: what the node stores when the block is decided."""

    header: Header
    results: list[TxResult]
    state_writes: dict[bytes, bytes | None]  # net changes against the parent state; None deletes
    smt_nodes: dict[bytes, bytes]  # new sparse-Merkle nodes (hash -> node bytes)
    block: Block
    smt_replaced: tuple[bytes, ...] = ()  # parent-tree nodes this block's tree no longer references (pruning)
    smt_reused: frozenset[bytes] = frozenset()  # ``smt_nodes`` the parent's tree already held


def _bad_block(check: str, message: str) -> InvalidBlock:
    err = InvalidBlock(f"{check}: {message}")
    err.check = check  # type: ignore[attr-defined]  # names the failed check for callers and tests
    return err


# --- genesis ---------------------------------------------------------------------------------------------


def genesis_state(genesis: Genesis) -> dict[bytes, bytes]:
    """Return the state at height 0: the genesis roles and the policy (code defaults, then genesis values)."""
    state: dict[bytes, bytes] = {}
    for role, keys in genesis.roles.items():
        for key in keys:
            state[role_key(role, key)] = codec.encode(1)
        if keys:  # the holder count guards rules such as "the last branch admin cannot be revoked"
            state[counter_key(role_count_name(role))] = codec.encode(len(set(keys)))
    state.update(_genesis_branches(genesis))
    state.update(compute_genesis_validator_state(genesis.validators))
    policy: dict[str, Any] = dict(DEFAULT_POLICY)
    policy.update(genesis.policy)
    for name, value in policy.items():
        # Every parameter is written explicitly, so a later change of a code default never forks a chain.
        if isinstance(value, int) and not 0 <= value <= _INT_MAX:
            raise GenesisError(f"genesis: policy.{name} is {value}; expected 0..{_INT_MAX}")
        default = DEFAULT_POLICY.get(name)
        if default is None:  # a misspelt name would silently leave the real parameter at its default
            raise GenesisError(f"genesis: unknown policy parameter {name!r}; expected one of "
                               f"{', '.join(sorted(DEFAULT_POLICY))}")
        if type(value) is not type(default):
            raise GenesisError(f"genesis: policy.{name} is {value!r}; expected a {type(default).__name__}")
        try:
            state[policy_key(name)] = codec.encode(value)
        except LedgerError as exc:
            raise GenesisError(f"genesis: policy.{name}: {exc.message}") from None
    return dict(sorted(state.items()))


def _genesis_branches(genesis: Genesis) -> dict[bytes, bytes]:
    """The branch of every branch-admin and staff holder (its placement, else the first validator's branch)."""
    out: dict[bytes, bytes] = {}
    for role in BRANCH_ROLES:
        for account in genesis.roles.get(role, ()):
            out[account_record_key(PREFIX_BRANCH, account)] = codec.encode(genesis.get_branch_of(account))
    admins: dict[str, int] = {}
    for account in set(genesis.roles.get("branch-admin", ())):
        branch = genesis.get_branch_of(account)
        admins[branch] = admins.get(branch, 0) + 1
    out.update(compute_genesis_admin_counts(admins))
    return out


def genesis_block(genesis: Genesis) -> tuple[Block, BlockExecution]:
    """Return the height-0 block of ``genesis`` and its execution (the genesis state and its SMT nodes)."""
    state = genesis_state(genesis)
    nodes = MemoryNodes()
    root, new_nodes = SparseMerkleTree(nodes).update(EMPTY_ROOT, state)  # replaces nothing
    header = Header(
        chain_id=genesis.chain_id, height=0, prev_hash=ZERO_HASH, timestamp_ms=genesis.genesis_time_ms,
        proposer=ZERO_HASH, tx_count=0, results_root=merkle.root([]), state_root=root,
        validator_set_hash=genesis.validator_set_hash, next_validator_set_hash=genesis.validator_set_hash,
    )
    block = Block(header, ())
    return block, BlockExecution(header, [], dict(state), dict(new_nodes), block)


# --- admission -------------------------------------------------------------------------------------------


def check_admission(state: StateReader, tx: SignedTx, chain_id: str, *, exact_nonce: bool,
                    verify_signatures: bool = True) -> tuple[KindSpec, Any]:
    """Raise ``InvalidTransaction`` (code = admission code) unless ``tx`` may enter a block on ``state``.

    Returns the kind's spec and the typed payload. ``exact_nonce`` demands nonce == state nonce + 1 (block
    execution); without it any later nonce passes (the mempool holds it until the gap fills).
    """
    body = tx.body
    # A system transaction is made by a block's proposer only, never submitted
    check_not_system(tx)
    # The tx is for this chain (signatures include the chain id, so this is also replay protection)
    if body.chain_id != chain_id:
        raise invalid_tx(reasons.WRONG_CHAIN, f"tx is for chain {body.chain_id!r}; this is {chain_id!r}")
    # The kind is known and the payload has its shape
    spec = get_kind(body.kind)
    payload = spec.compute_payload(body.payload)
    # The nonce is the sender's next one
    current = get_nonce(state, body.sender)
    if body.nonce <= current:
        raise invalid_tx(reasons.NONCE_TOO_LOW, f"nonce {body.nonce} is already used; the next is {current + 1}")
    if exact_nonce and body.nonce != current + 1:
        raise invalid_tx(reasons.NONCE_GAP, f"nonce {body.nonce} leaves a gap; expected {current + 1}")
    # Every further signer is the sender's registered second-factor key, at most one (checked even when the
    # signatures were verified before: the registered key is a fact of this state, not of the envelope)
    check_signers(state, tx)
    # The sender signed first and every signature verifies (last: the most expensive check)
    if verify_signatures:
        try:
            tx.verify_signatures()
        except SignatureError as exc:
            raise invalid_tx(reasons.BAD_SIGNATURE, exc.message) from None
    return spec, payload


def check_not_system(tx: SignedTx) -> None:
    """Raise ``system_tx`` for a system transaction (``block-sweep``): nobody submits one, whatever it carries."""
    if tx.body.kind == SWEEP_KIND:
        raise invalid_tx(reasons.SYSTEM_TX, f"{SWEEP_KIND} is a system transaction: only a block's proposer makes "
                                            f"it, as the block's first tx; it cannot be submitted")


def check_signers(state: StateReader, tx: SignedTx) -> None:
    """Raise ``unexpected_signer`` unless every signature after the first is the sender's second-factor key.

    The envelope's bytes are committed (``envelope_hash``), so a signature nobody asked for would let whoever
    relays a tx first change the bytes that commit (and have the sender's own copy refused as a duplicate).
    """
    if len(tx.signatures) < 2:  # (most txs: no tuple of signers built)
        return
    extra = tx.signers[1:]
    sender = tx.body.sender
    second = get_second_key(state, sender)
    expected = (f"only the sender's second-factor key {second.hex()[:16]}…" if second is not None
                else "no further signature: the sender has no second-factor key registered")
    if len(extra) > 1:
        raise invalid_tx(reasons.UNEXPECTED_SIGNER, f"{len(extra)} signatures after the sender's; expected at "
                         f"most one, by {expected}")
    if extra[0] != second:
        raise invalid_tx(reasons.UNEXPECTED_SIGNER, f"signature by {extra[0].hex()[:16]}… after the sender's "
                         f"{sender.hex()[:16]}…; expected {expected}")


def check_admissible(state: StateReader, tx: SignedTx, chain_id: str) -> None:
    """Mempool gate: raise ``InvalidTransaction`` unless ``tx`` could enter a block now or after its gap fills."""
    check_admission(state, tx, chain_id, exact_nonce=False)


# --- execution -------------------------------------------------------------------------------------------


# Errors that come from the machine, not from the tx: never turned into a (consensus) result.
_LOCAL_FAULTS = (MemoryError, RecursionError)


def process_tx(state: Overlay, tx: SignedTx, spec: KindSpec, payload: Any, height: int,
               timestamp_ms: int) -> TxResult:
    """Apply an admitted tx: bump the nonce, run its step, and roll back all but the nonce on a failure.

    A rule failure commits its reason; any other execution error of the tx commits ``execution_error``.
    """
    process_nonce(state, tx.body.sender)
    mark = state.checkpoint()
    ctx = TxContext(state, tx.body.sender, tx.signers, tx.tx_hash, height, timestamp_ms)
    try:
        events = spec.process(ctx, payload)
        result = TxResult(tx.tx_hash, reasons.APPLIED_STATUS, reasons.APPLIED_REASON, tuple(events))
        result.events_bytes  # encode the events now: one with no canonical encoding fails this tx, not the block
        return result
    except TxFailure as failure:
        state.rollback(mark)
        return TxResult(tx.tx_hash, failure.reason.status, failure.reason.name, (),
                        detail=failure.detail or failure.reason.message)
    except _LOCAL_FAULTS:
        raise
    except Exception:  # noqa: BLE001 - a poison tx (EncodeError, overflow, a step's bug) fails, deterministically
        state.rollback(mark)
        return TxResult(tx.tx_hash, reasons.EXECUTION_ERROR.status, reasons.EXECUTION_ERROR.name, ())


def compute_validator_set_hashes(state: StateReader, height: int) -> tuple[bytes, bytes]:
    """``(validator_set_hash, next_validator_set_hash)`` of block ``height`` from its parent's ``state``."""
    return (compute_validator_set_hash(get_validators_at(state, height)),
            compute_validator_set_hash(get_validators_at(state, height + 1)))


def _execute(state: StateReader, nodes: Any, parent: Header, txs: Sequence[SignedTx], timestamp_ms: int,
             proposer: bytes, chain_id: str, *,
             verify_signatures: bool,
             known_verified: Callable[[SignedTx], bool] | None = None,
             skip_invalid: bool, max_txs: int = MAX_BLOCK_TXS, make_sweep: bool = True,
             ) -> tuple[BlockExecution, list[tuple[SignedTx, InvalidTransaction]]]:
    """Shared core of build/execute/validate: sweep, admit, process, and compute the roots and header.

    ``make_sweep`` (build/execute): add the block-sweep when due; else (validate) ``txs`` must carry it.
    """
    # A block's time moves forward (rules such as expiry read it)
    if timestamp_ms <= parent.timestamp_ms:
        raise _bad_block("timestamp", f"timestamp {timestamp_ms} is not above the parent's {parent.timestamp_ms}")
    height = parent.height + 1
    validator_set_hash, next_validator_set_hash = compute_validator_set_hashes(state, height)
    overlay = Overlay(state)
    # A set decided two blocks ago seals this block: it becomes the current one before any tx runs
    process_validator_set_promotion(overlay, height)
    included: list[SignedTx] = []
    results: list[TxResult] = []
    rejected: list[tuple[SignedTx, InvalidTransaction]] = []
    seen: set[bytes] = set()
    # Due entries are swept first, by the system tx at leaf 0 (made here, or checked in the block)
    due_now = sweeps.get_due_now(overlay, timestamp_ms)
    if make_sweep:
        sweep = sweeps.make_sweep_tx(chain_id, height) if due_now is not None else None
    else:
        sweep = _check_sweep(txs, due_now, chain_id, height, timestamp_ms)
        txs = txs[1:] if sweep is not None else txs
    if sweep is not None:
        included.append(sweep)
        results.append(sweeps.process_block_sweep(overlay, sweep, height, timestamp_ms))
        seen.add(sweep.tx_hash)
    for index, tx in enumerate(txs, start=len(included)):
        if len(included) >= max_txs:
            break
        try:
            # Each tx appears once (the nonce check would refuse a repeat too; this names the real problem)
            if tx.tx_hash in seen:
                raise invalid_tx(reasons.DUPLICATE_TX, f"tx {tx.tx_hash.hex()[:16]}… appears twice")
            spec, payload = check_admission(overlay, tx, chain_id, exact_nonce=True,
                                            verify_signatures=verify_signatures and not (
                                                known_verified is not None and known_verified(tx)))
        except InvalidTransaction as exc:
            if not skip_invalid:
                exc.tx_index = index  # type: ignore[attr-defined]  # position in the block, for the message
                raise
            rejected.append((tx, exc))
            continue
        if skip_invalid:
            before = overlay.checkpoint()
            try:
                result = process_tx(overlay, tx, spec, payload, height, timestamp_ms)
            except Exception as exc:  # noqa: BLE001 - the proposer drops it rather than never building again
                overlay.rollback(before)
                rejected.append((tx, invalid_tx(reasons.UNEXECUTABLE, f"execution raised "
                                                f"{type(exc).__name__}: {str(exc)[:120]}")))
                continue
        else:
            result = process_tx(overlay, tx, spec, payload, height, timestamp_ms)
        seen.add(tx.tx_hash)
        included.append(tx)
        results.append(result)
    writes = overlay.get_changes()
    tracked = SparseMerkleTree(nodes).update_tracked(parent.state_root, writes)
    state_root = tracked.root
    envelopes = tuple(tx.raw for tx in included)  # the exact bytes the block carries (and the leaves bind)
    header = Header(
        chain_id=chain_id, height=height, prev_hash=parent.hash(), timestamp_ms=timestamp_ms, proposer=proposer,
        tx_count=len(included), results_root=merkle.root(compute_leaves(results, envelopes)),
        state_root=state_root, validator_set_hash=validator_set_hash,
        next_validator_set_hash=next_validator_set_hash,
    )
    block = Block(header, envelopes)
    return BlockExecution(header, results, writes, tracked.nodes, block, tracked.replaced,
                          tracked.reused), rejected


def _check_sweep(txs: Sequence[SignedTx], due_now: tuple[int, int] | None, chain_id: str, height: int,
                 timestamp_ms: int) -> SignedTx | None:
    """The block's sweep tx (None when nothing is due); raise ``InvalidBlock`` (check "sweep") otherwise."""
    # A block-sweep may only be the first tx
    for index, tx in enumerate(txs[1:], start=1):
        if tx.body.kind == SWEEP_KIND:
            raise _bad_block("sweep", f"tx {index} is a {SWEEP_KIND}; it may only be a block's first tx")
    first = txs[0] if txs and txs[0].body.kind == SWEEP_KIND else None
    # It is there exactly when an entry is due by the block's time
    if due_now is not None and first is None:
        queue, due_ms = due_now
        raise _bad_block("sweep", f"the block does not start with a {SWEEP_KIND}; due queue {queue} has an entry "
                                  f"due at {due_ms} <= block time {timestamp_ms}")
    if first is None:
        return None
    if due_now is None:
        raise _bad_block("sweep", f"tx 0 is a {SWEEP_KIND} but no due entry is due by block time {timestamp_ms}")
    # It is the canonical one: this chain, zero sender, nonce = height, empty payload, no signature
    expected = sweeps.make_sweep_tx(chain_id, height)
    if first.raw != expected.raw:
        b = first.body
        raise _bad_block("sweep", f"tx 0 is a {SWEEP_KIND} with chain {b.chain_id!r}, sender {b.sender.hex()[:16]}…, "
                                  f"nonce {b.nonce}, {len(b.payload)} payload field(s) and {len(first.signatures)} "
                                  f"signature(s); expected chain {chain_id!r}, the zero sender, nonce {height}, "
                                  f"no payload and no signature, canonically encoded")
    return first


def execute_block(state: StateReader, nodes: Any, parent: Header, txs: Sequence[SignedTx], timestamp_ms: int,
                  proposer: bytes, chain_id: str, validator_set_hash: bytes, *,
                  next_validator_set_hash: bytes | None = None) -> BlockExecution:
    """Execute ``txs`` on top of ``parent``; raise ``InvalidTransaction`` if any of them cannot enter a block.

    The validator-set hashes come from ``state`` (the parameters are accepted and ignored).
    """
    execution, _ = _execute(state, nodes, parent, txs, timestamp_ms, proposer, chain_id,
                            verify_signatures=True, skip_invalid=False)
    return execution


def build_block(state: StateReader, nodes: Any, parent: Header, candidates: Sequence[SignedTx],
                timestamp_ms: int, proposer: bytes, validator_set_hash: bytes | None = None, *,
                chain_id: str | None = None, max_txs: int = MAX_BLOCK_TXS, signatures_checked: bool = False,
                next_validator_set_hash: bytes | None = None,
                ) -> tuple[BlockExecution, list[tuple[SignedTx, InvalidTransaction]]]:
    """Proposer's path: execute the admissible candidates in order, skipping (and reporting) the rest.

    ``chain_id`` defaults to the parent's; the validator-set hashes come from ``state`` (the parameters are
    accepted and ignored). ``signatures_checked=True`` trusts that the mempool verified every candidate's signatures at admission
    (a bad one gets the block refused).
    """
    if not 0 <= max_txs <= MAX_BLOCK_TXS:
        raise ValueError(f"max_txs {max_txs} outside 0..{MAX_BLOCK_TXS}")
    return _execute(state, nodes, parent, candidates, timestamp_ms, proposer,
                    parent.chain_id if chain_id is None else chain_id,
                    verify_signatures=not signatures_checked, skip_invalid=True, max_txs=max_txs)


def _expect(check: str, seen: Any, expected: Any, what: str = "") -> None:
    if seen != expected:
        def show(v: Any) -> str:
            return v.hex() if isinstance(v, bytes) else repr(v)
        raise _bad_block(check, f"{what or check} is {show(seen)}; expected {show(expected)}")


def validate_block(state: StateReader, nodes: Any, parent: Header, block: Block, now_ms: int,
                   max_future_ms: int, validator_set_hash: bytes | None = None, *,
                   known_verified: Callable[[SignedTx], bool] | None = None,
                   decode: Callable[[bytes], SignedTx] | None = None,
                   next_validator_set_hash: bytes | None = None) -> BlockExecution:
    """Validator's path: re-execute ``block`` on ``parent``; raise ``InvalidBlock`` (``.check``) on any mismatch.

    The set sealing the block and the next height are derived from ``state`` (the parent's) with
    ``get_validators_at``; the ``validator_set_hash`` / ``next_validator_set_hash`` parameters are ignored.

    ``known_verified(tx)`` may say that this exact envelope (same raw bytes, not just the same hash) had
    its signatures verified already (the node's mempool at admission); those are not verified again.
    ``decode(raw)`` may stand in for ``decode_tx`` (e.g. answer from the envelopes a node decoded already);
    it must return exactly what ``decode_tx(raw)`` would, or raise the same errors.
    """
    h = block.header
    # The block's hash is the hash of its header
    _expect("block_hash", block.hash, h.hash(), "block hash")
    # It extends the parent on the same chain
    _expect("chain_id", h.chain_id, parent.chain_id, "chain id")
    _expect("height", h.height, parent.height + 1)
    _expect("prev_hash", h.prev_hash, parent.hash(), "prev_hash")
    # Its time is after the parent's and not too far ahead of ours
    if h.timestamp_ms <= parent.timestamp_ms:
        raise _bad_block("timestamp", f"timestamp {h.timestamp_ms} is not above the parent's {parent.timestamp_ms}")
    if h.timestamp_ms > now_ms + max_future_ms:
        raise _bad_block("timestamp", f"timestamp {h.timestamp_ms} is {h.timestamp_ms - now_ms} ms ahead of "
                                      f"our clock {now_ms}; at most {max_future_ms} ms are allowed")
    # It names the validator set in force (from the parent state, and the one its parent announced), and the
    # one sealing the next height (a change decided in the parent is named here)
    expected_set, expected_next = compute_validator_set_hashes(state, h.height)
    _expect("validator_set_hash", h.validator_set_hash, expected_set, "validator set hash")
    _expect("validator_set_hash", h.validator_set_hash, parent.next_validator_set_hash,
            "validator set hash (vs the set the parent named for this height)")
    _expect("next_validator_set_hash", h.next_validator_set_hash, expected_next, "next validator set hash")
    # The header counts the transactions it carries
    _expect("tx_count", h.tx_count, len(block.txs), "header tx_count vs txs carried")
    if len(block.txs) > MAX_BLOCK_TXS:
        raise _bad_block("tx_count", f"{len(block.txs)} txs; at most {MAX_BLOCK_TXS} per block")
    # Every tx decodes, and (below) is admissible in order and appears once
    txs = []
    for i, raw in enumerate(block.txs):
        try:
            txs.append(decode_tx(raw) if decode is None else decode(raw))
        except LedgerError as exc:
            raise _bad_block("tx_decode", f"tx {i} does not decode: {exc.message}") from None
    try:
        execution, _ = _execute(state, nodes, parent, txs, h.timestamp_ms, h.proposer, h.chain_id,
                                verify_signatures=True, skip_invalid=False,
                                known_verified=known_verified, make_sweep=False)
    except InvalidTransaction as exc:
        check = "duplicate_tx" if exc.code == reasons.DUPLICATE_TX else "tx_admission"
        index = getattr(exc, "tx_index", "?")
        raise _bad_block(check, f"tx {index} cannot enter a block: {exc.message}") from None
    # Re-execution reproduces exactly what the header commits to
    mine = execution.header
    _expect("results_root", h.results_root, mine.results_root, "results_root")
    _expect("state_root", h.state_root, mine.state_root, "state_root")
    _expect("header", h, mine, "header")  # every field is covered above; this guards future fields
    return BlockExecution(h, execution.results, execution.state_writes, execution.smt_nodes, block,
                          execution.smt_replaced, execution.smt_reused)
