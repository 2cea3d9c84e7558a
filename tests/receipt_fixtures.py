"""Builders of a small signed chain for receipt tests: 4 validators, blocks of chosen sizes, seals, receipts,
and hand-made validator-set changes (a header announcing a new set, sealed by the old one).

No state transition is involved: results (status, reason, events) are synthesized, results_root is the
RFC 6962 root over their leaves (each binding its envelope bytes) and the state root is made up. Keys come
from fixed seeds so failures reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.block import Block, CommitSeal, Header, make_seal, validator_set_hash
from ledger.genesis import Genesis, Validator
from ledger.hashing import sha256
from ledger.keys import KeyPair
from ledger.merkle import root as merkle_root
from ledger.results import TxResult, compute_leaves
from ledger.tx import make_tx
from ledger.validator_sets import ValidatorSetChange

CHAIN_ID = "carecoin-test"
GENESIS_TIME_MS = 1_700_000_000_000


def validator_keys(n: int = 4) -> list[KeyPair]:
    """n validator keys from fixed seeds."""
    return [KeyPair.from_seed(bytes([0xA0 + i]) * 32) for i in range(n)]


def customer_key(i: int) -> KeyPair:
    return KeyPair.from_seed(bytes([0x10 + (i % 64)]) * 31 + bytes([i // 64]))


def make_genesis(keys: list[KeyPair] | None = None, chain_id: str = CHAIN_ID) -> Genesis:
    """A genesis whose validators are ``keys`` (default: the 4 fixed validator keys)."""
    keys = keys if keys is not None else validator_keys()
    validators = tuple(Validator(f"branch-{i}", k.public_key) for i, k in enumerate(keys))
    return Genesis(chain_id, GENESIS_TIME_MS, validators)


@dataclass(frozen=True)
class SealedBlock:
    block: Block
    results: list[TxResult]
    seals: list[CommitSeal]


def make_results(txs) -> list[TxResult]:
    """One result per tx: every third fails with a reason, the others earn coins (with events)."""
    results = []
    for i, tx in enumerate(txs):
        if i % 3 == 2:
            results.append(TxResult(tx.tx_hash, 7, "insufficient_balance", ()))
        else:
            results.append(TxResult(tx.tx_hash, 0, "", (["earned", tx.body.sender, 100 + i],
                                                          ["tier", tx.body.sender, "silver"])))
    return results


def make_block(height: int, tx_count: int, *, keys: list[KeyPair] | None = None, chain_id: str = CHAIN_ID,
               prev_hash: bytes = b"\x00" * 32, signers: int | None = None,
               next_keys: list[KeyPair] | None = None) -> SealedBlock:
    """A block of ``tx_count`` signed transfers, its results, and seals by the first ``signers`` of ``keys``
    (the set sealing this height; ``next_keys``, when given, is the set it announces for the next height)."""
    keys = keys if keys is not None else validator_keys()
    txs = []
    for i in range(tx_count):
        sender = customer_key(i)
        txs.append(make_tx(chain_id, "transfer", sender, height, [customer_key(i + 1).public_key, 5 + i, bytes(32)]))
    results = make_results(txs)
    header = Header(
        chain_id=chain_id, height=height, prev_hash=prev_hash, timestamp_ms=GENESIS_TIME_MS + 1000 * height,
        proposer=keys[height % len(keys)].public_key, tx_count=tx_count,
        results_root=merkle_root(compute_leaves(results, [t.raw for t in txs])),
        state_root=sha256(b"state %d" % height), validator_set_hash=validator_set_hash([k.public_key for k in keys]),
        next_validator_set_hash=validator_set_hash([k.public_key for k in (next_keys or keys)]),
    )
    block = Block(header, tuple(t.raw for t in txs))
    count = len(keys) if signers is None else signers
    seals = [make_seal(k, chain_id, height, block.hash) for k in keys[:count]]
    return SealedBlock(block, results, seals)


def make_chain(sizes=(1, 2, 3, 5, 8, 13), **kw) -> list[SealedBlock]:
    """Consecutive blocks (heights 1..) with the given tx counts, linked by prev_hash."""
    chain, prev = [], b"\x00" * 32
    for height, size in enumerate(sizes, start=1):
        sb = make_block(height, size, prev_hash=prev, **kw)
        chain.append(sb)
        prev = sb.block.hash
    return chain


def new_validator_keys(n: int = 4, first: int = 0) -> list[KeyPair]:
    """n keys of a later validator set (seeds apart from ``validator_keys``)."""
    return [KeyPair.from_seed(bytes([0xC0 + first + i]) * 32) for i in range(n)]


def make_change(height: int, old: list[KeyPair], new: list[KeyPair], *, chain_id: str = CHAIN_ID,
                signers: int | None = None) -> ValidatorSetChange:
    """The header at ``height`` announcing ``new`` (sealed by the first ``signers`` of ``old``), as an entry of
    a proof's ``validator_set_changes``."""
    sb = make_block(height, 1, keys=old, next_keys=new, chain_id=chain_id, signers=signers)
    return ValidatorSetChange.of(sb.block.header, sb.seals, [k.public_key for k in new])
