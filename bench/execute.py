"""Benchmark: CPU cost of executing blocks of coin transactions (build and validate), with a result digest.

Theory of operation. Builds a deterministic, seeded workload on an in-memory chain: an issuer mints to many
accounts, staff register some of them as KYC-0/1 customers (daily outflow limits), a few accounts set a
second-factor key, and the bulk are transfers among the accounts, including failures (overdrafts, zero
amounts, self-transfers, over the daily limit, missing second factor). Coins live only ``--lifetime-blocks``
blocks, so lots expire and get swept mid-run. Pass 1 (a proposer) builds and commits every block (``--block``
txs) with ``ledger.chain.build_block`` (signatures trusted, as after mempool admission); pass 2 (a validator)
starts again from genesis with cold decode caches and re-executes every block with ``validate_block``
(known-verified signatures, pre-decoded envelopes, as a validator node does). Both are timed in CPU time
(``time.process_time``: the machine may be shared). ``--profile`` dumps cProfile of pass 2. Prints ONE
JSON object:

    build_us_per_tx, validate_us_per_tx, validate_tx_per_s, txs, blocks, failed, reasons, events, digest

``digest`` = sha256 over the concatenated block hashes: the headers commit to results_root and
state_root, so any change in results, events or state changes the digest. It must never change for an
optimisation (``tests/ledger/test_execution_golden.py`` pins the digest of a small run).

Usage: .venv/bin/python bench/execute.py [--blocks 20] [--block 500] [--accounts 300] [--seed 7]
       [--repeat 1] [--profile FILE] [--json] [--quick]   (never fails for being slow)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.chain import build_block, genesis_block, validate_block  # noqa: E402
from ledger.genesis import Genesis, Validator  # noqa: E402
from ledger.keys import KeyPair  # noqa: E402
from ledger.smt import MemoryNodes  # noqa: E402
from ledger.state import MemoryState  # noqa: E402
from ledger.tx import SignedTx, decode_tx, make_tx  # noqa: E402

CHAIN_ID = "carecoin-bench"
GENESIS_TIME_MS = 1_700_000_000_000
BLOCK_MS = 1_000


def _key(tag: str, i: int) -> KeyPair:
    return KeyPair.from_seed(hashlib.sha256(f"{tag}/{i}".encode()).digest()[:32])


class Workload:
    """A seeded generator of admissible txs (nonces in order); rule failures are part of the mix."""

    def __init__(self, seed: int, accounts: int, lifetime_blocks: int) -> None:
        self.rnd = random.Random(seed)
        self.validators = tuple(_key("validator", i) for i in range(4))
        self.issuer = _key("issuer", 0)
        self.staff = _key("staff", 0)
        self.accounts = [_key("account", i) for i in range(accounts)]
        self.seconds = {i: _key("second", i) for i in range(0, accounts, 17)}  # accounts with a 2nd factor
        self.nonces: dict[bytes, int] = {}
        self.genesis = Genesis(
            chain_id=CHAIN_ID, genesis_time_ms=GENESIS_TIME_MS,
            validators=tuple(Validator(f"branch-{i}", k.public_key) for i, k in enumerate(self.validators)),
            roles={"issuer": (self.issuer.public_key,), "staff": (self.staff.public_key,)},
            policy={"coin_lifetime_ms": lifetime_blocks * BLOCK_MS, "second_factor_threshold": 5_000,
                    "daily_outflow_kyc0": 5_000, "daily_outflow_kyc1": 40_000},
        )

    def _tx(self, kind: str, key: KeyPair, payload: list, *extra: KeyPair) -> SignedTx:
        nonce = self.nonces.get(key.public_key, 0) + 1
        self.nonces[key.public_key] = nonce
        return make_tx(CHAIN_ID, kind, key, nonce, payload, *extra)

    def setup_txs(self) -> list[SignedTx]:
        """Customer registrations (every 3rd account KYC 0, every 5th KYC 1) and second-factor keys."""
        txs = []
        for i, acct in enumerate(self.accounts):
            if i % 3 == 0 or i % 5 == 0:
                kyc = 0 if i % 3 == 0 else 1
                txs.append(self._tx("register-customer", self.staff,
                                    [acct.public_key, kyc, hashlib.sha256(acct.public_key).digest()]))
        for i, second in self.seconds.items():
            txs.append(self._tx("set-second-factor", self.accounts[i], [second.public_key]))
        return txs

    def next_tx(self) -> SignedTx:
        """One tx of the steady mix: ~10% mints, ~90% transfers (some failing by design)."""
        rnd, accts = self.rnd, self.accounts
        if rnd.random() < 0.10:
            return self._tx("mint", self.issuer, [rnd.choice(accts).public_key, rnd.randrange(1, 30_000)])
        i = rnd.randrange(len(accts))
        sender = accts[i]
        roll = rnd.random()
        if roll < 0.02:
            to, amount = sender, 5  # self-transfer: refused
        elif roll < 0.04:
            to, amount = rnd.choice(accts), 0  # invalid amount
        else:
            to = accts[rnd.randrange(len(accts))]
            amount = rnd.randrange(1, 600) if roll < 0.90 else rnd.randrange(600, 5_000)  # big: often overdraft
        extra = (self.seconds[i],) if i in self.seconds and amount > 1_000 and rnd.random() < 0.7 else ()
        return self._tx("transfer", sender, [to.public_key, amount, bytes([rnd.randrange(100)]) * 32], *extra)


def _clear_caches() -> None:
    # Decode memos are process-wide: start each pass cold, as a separate node would.
    import ledger.state
    clear = getattr(ledger.state, "clear_decode_caches", None)
    if clear is not None:
        clear()
    else:  # the code before decode memos: its lru caches
        import ledger.lots
        for fn in (ledger.state._decode_account, ledger.lots._decode_lots):
            fn.cache_clear()


def run(blocks: int, block_size: int, accounts: int, seed: int, lifetime_blocks: int = 8,
        profile: str | None = None) -> dict:
    """Execute the workload; return the figures and the digest (see the module docstring)."""
    work = Workload(seed, accounts, lifetime_blocks)
    genesis_b, genesis_exec = genesis_block(work.genesis)
    state = MemoryState(genesis_exec.state_writes)
    nodes = MemoryNodes(genesis_exec.smt_nodes)
    head = genesis_b.header
    vset = work.genesis.validator_set_hash
    proposer = work.validators[0].public_key
    pending = work.setup_txs()
    batches = []
    for _ in range(blocks):
        while len(pending) < block_size:
            pending.append(work.next_tx())
        batches.append(pending[:block_size])
        pending = pending[block_size:]
    digest = hashlib.sha256()
    build_cpu = validate_cpu = 0.0
    txs = failed = 0
    reasons_seen: dict[str, int] = {}
    events_seen: dict[str, int] = {}
    # Pass 1, the proposer: build every block (signatures trusted, as after mempool admission) and commit it.
    _clear_caches()
    blocks_built = []
    for batch in batches:
        ts = head.timestamp_ms + BLOCK_MS
        t0 = time.process_time()
        execution, rejected = build_block(state, nodes, head, batch, ts, proposer, signatures_checked=True)
        build_cpu += time.process_time() - t0
        if rejected:
            raise RuntimeError(f"workload tx rejected at admission: {rejected[0][1]}")
        state.apply(execution.state_writes)
        nodes.put_many(execution.smt_nodes)
        head = execution.header
        # the envelopes the "mempool" decoded; a block's own block-sweep (system tx) is decoded at validation
        blocks_built.append((execution, {tx.raw: tx for tx in batch}))
        txs += len(execution.results)
        failed += sum(1 for r in execution.results if r.status != 0)
        for r in execution.results:
            reasons_seen[r.reason] = reasons_seen.get(r.reason, 0) + 1
            for ev in r.events:
                events_seen[ev[0]] = events_seen.get(ev[0], 0) + 1
        digest.update(execution.block.hash)
    # Pass 2, a validator: a fresh copy of genesis, no warm decode caches, re-executes every block as a
    # validator node does (signatures known-verified by its mempool, envelopes already decoded).
    _clear_caches()
    state = MemoryState(genesis_exec.state_writes)
    nodes = MemoryNodes(genesis_exec.smt_nodes)
    head = genesis_b.header
    prof = None
    if profile:
        import cProfile
        prof = cProfile.Profile()
    for execution, by_raw in blocks_built:
        block = execution.block
        if prof:
            prof.enable()
        t0 = time.process_time()
        checked = validate_block(state, nodes, head, block, block.header.timestamp_ms, 0, vset,
                                 known_verified=lambda tx: True,
                                 decode=lambda raw, known=by_raw: known.get(raw) or decode_tx(raw))
        validate_cpu += time.process_time() - t0
        if prof:
            prof.disable()
        if checked.state_writes != execution.state_writes:
            raise RuntimeError("validate disagrees with build")
        state.apply(checked.state_writes)
        nodes.put_many(checked.smt_nodes)
        head = checked.header
    if prof:
        prof.dump_stats(profile)
    return {
        "txs": txs, "blocks": blocks, "failed": failed, "reasons": dict(sorted(reasons_seen.items())),
        "events": dict(sorted(events_seen.items())),
        "build_us_per_tx": round(build_cpu / txs * 1e6, 1),
        "validate_us_per_tx": round(validate_cpu / txs * 1e6, 1),
        "validate_tx_per_s": round(txs / validate_cpu) if validate_cpu else None,
        "digest": digest.hexdigest(),
    }


def main() -> None:
    """Command-line entry: print the JSON report (best of ``--repeat`` runs by validate time)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=20)
    p.add_argument("--block", type=int, default=500)
    p.add_argument("--accounts", type=int, default=300)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--lifetime-blocks", type=int, default=8)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--profile", default=None, help="write a cProfile dump of the validate path to FILE")
    p.add_argument("--json", action="store_true", help="print one JSON object (the default output already is)")
    p.add_argument("--quick", action="store_true", help="small sizes (3 blocks of 200 txs): ends in seconds")
    args = p.parse_args()
    if args.quick:
        args.blocks, args.block = min(args.blocks, 3), min(args.block, 200)
    best = None
    for _ in range(max(1, min(args.repeat, 10))):
        out = run(args.blocks, args.block, args.accounts, args.seed, args.lifetime_blocks, args.profile)
        if best is None or out["validate_us_per_tx"] < best["validate_us_per_tx"]:
            best = out
    params = {"blocks": args.blocks, "block": args.block, "accounts": args.accounts, "seed": args.seed,
              "lifetime_blocks": args.lifetime_blocks, "repeat": args.repeat, "quick": args.quick}
    print(json.dumps({"bench": "execute", "params": params, **best}))


if __name__ == "__main__":
    main()
