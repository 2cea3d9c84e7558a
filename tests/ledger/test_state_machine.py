"""Random mint/transfer sequences (valid and invalid) against a dict model of the coin.

Rules queue transactions and predict each outcome with the model; ``seal`` builds a block, has a validator
re-execute it, commits it, and checks every result against the prediction. Invariants after every step:
total supply == sum of balances == minted total, no negative balance, each nonce == the sender's committed
tx count, and the head's state_root == the SMT root recomputed from scratch over the committed state.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger import codec
from ledger.chain import build_block, genesis_block, validate_block
from ledger.process.common import MAX_MEMO_CHARS
from ledger.smt import MemoryNodes, compute_root
from ledger.state import PREFIX_ACCOUNT, MemoryState, get_account, get_supply
from ledger.tx import SignedTx, make_tx
from tests.strategies import CHAIN_ID, VALIDATORS, amounts, key, make_genesis, memos

CAP = 2_000
ISSUERS = (key(20), key(21))
ACCOUNTS = ISSUERS + (key(22), key(23), key(24))
MAX_PENDING = 12


@dataclass
class Model:
    balances: dict[bytes, int] = field(default_factory=dict)
    nonces: dict[bytes, int] = field(default_factory=dict)
    minted: int = 0

    def next_nonce(self, who: bytes) -> int:
        self.nonces[who] = self.nonces.get(who, 0) + 1
        return self.nonces[who]

    def mint(self, sender: bytes, to: bytes, amount: int) -> str:
        if sender not in {k.public_key for k in ISSUERS}:
            return "unauthorized"
        if amount <= 0:
            return "invalid_amount"
        if self.minted + amount > CAP:
            return "mint_cap_exceeded"
        self.balances[to] = self.balances.get(to, 0) + amount
        self.minted += amount
        return ""

    def transfer(self, sender: bytes, to: bytes, amount: int, memo: str) -> str:
        if amount <= 0:
            return "invalid_amount"
        if to == sender:
            return "self_transfer"
        if len(memo) > MAX_MEMO_CHARS:
            return "memo_too_long"
        if amount > 10_000:  # the default second_factor_threshold; no second key is registered here
            return "second_factor_required"
        if self.balances.get(sender, 0) < amount:
            return "insufficient_balance"
        self.balances[sender] -= amount
        self.balances[to] = self.balances.get(to, 0) + amount
        return ""


class CoinMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.genesis = make_genesis(issuers=ISSUERS, policy={"mint_cap": CAP})
        block, execution = genesis_block(self.genesis)
        self.state = MemoryState(execution.state_writes)
        self.nodes = MemoryNodes(execution.smt_nodes)
        self.head = block.header
        self.pending_model = Model()
        self.committed_model = Model()
        self.committed_txs: dict[bytes, int] = {}
        self.queue: list[SignedTx] = []
        self.expected: list[str] = []
        self.junk: list[tuple[SignedTx, str]] = []

    # --- rules that queue transactions --------------------------------------------------------------

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from(ACCOUNTS), to=st.sampled_from(ACCOUNTS), amount=amounts)
    def mint(self, sender, to, amount):
        nonce = self.pending_model.next_nonce(sender.public_key)
        self.queue.append(make_tx(CHAIN_ID, "mint", sender, nonce, [to.public_key, amount]))
        self.expected.append(self.pending_model.mint(sender.public_key, to.public_key, amount))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from(ACCOUNTS), to=st.sampled_from(ACCOUNTS), amount=amounts, memo=memos)
    def transfer(self, sender, to, amount, memo):
        nonce = self.pending_model.next_nonce(sender.public_key)
        self.queue.append(make_tx(CHAIN_ID, "transfer", sender, nonce, [to.public_key, amount, memo]))
        self.expected.append(self.pending_model.transfer(sender.public_key, to.public_key, amount, memo))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from(ACCOUNTS), flavour=st.sampled_from(["gap", "stale", "chain", "signature"]))
    def inadmissible(self, sender, flavour):
        """A tx that can never enter: the proposer must skip it and the model must not change."""
        nonce = self.pending_model.nonces.get(sender.public_key, 0)
        to = ACCOUNTS[0].public_key
        if flavour == "gap":
            tx, code = make_tx(CHAIN_ID, "mint", sender, nonce + 2, [to, 1]), "nonce_gap"
        elif flavour == "stale":
            if nonce == 0:
                return
            tx, code = make_tx(CHAIN_ID, "mint", sender, nonce, [to, 1]), "nonce_too_low"
        elif flavour == "chain":
            tx, code = make_tx("elsewhere", "mint", sender, nonce + 1, [to, 1]), "wrong_chain"
        else:
            good = make_tx(CHAIN_ID, "mint", sender, nonce + 1, [to, 1])
            sigs = ((sender.public_key, sender.sign(b"not the tx hash")),)
            raw = codec.encode([good.body.to_list(), [list(s) for s in sigs]])
            tx, code = SignedTx(good.body, sigs, raw, good.tx_hash), "bad_signature"
        self.queue.append(tx)
        self.junk.append((tx, code))

    # --- sealing a block ---------------------------------------------------------------------------

    @rule(advance_ms=st.integers(min_value=1, max_value=10_000))
    def seal(self, advance_ms):
        ts = self.head.timestamp_ms + advance_ms
        execution, rejected = build_block(self.state, self.nodes, self.head, self.queue, ts,
                                          VALIDATORS[0].public_key)
        assert [(tx.tx_hash, exc.code) for tx, exc in rejected] == [(tx.tx_hash, c) for tx, c in self.junk]
        assert [r.reason for r in execution.results] == self.expected
        assert all((r.status == 0) == (r.reason == "") for r in execution.results)
        assert all(r.events == () for r in execution.results if r.status)
        checked = validate_block(self.state, self.nodes, self.head, execution.block, ts, 0,
                                 self.genesis.validator_set_hash)
        assert checked.header == execution.header
        self.state.apply(checked.state_writes)
        self.nodes.put_many(checked.smt_nodes)
        self.head = checked.header
        junk = {tx.tx_hash for tx, _ in self.junk}
        for tx in self.queue:
            if tx.tx_hash not in junk:
                self.committed_txs[tx.body.sender] = self.committed_txs.get(tx.body.sender, 0) + 1
        self.committed_model = copy.deepcopy(self.pending_model)
        self.queue, self.expected, self.junk = [], [], []

    # --- invariants on the committed state --------------------------------------------------------

    def balances(self) -> dict[bytes, int]:
        return {k[1:]: get_account(self.state, k[1:]).balance
                for k in self.state.data if k[:1] == PREFIX_ACCOUNT}

    @invariant()
    def supply_equals_balances_equals_minted(self):
        balances = self.balances()
        assert get_supply(self.state) == sum(balances.values()) == self.committed_model.minted
        assert {k: v for k, v in balances.items() if v} == \
            {k: v for k, v in self.committed_model.balances.items() if v}

    @invariant()
    def no_negative_balance(self):
        assert all(v >= 0 for v in self.balances().values())

    @invariant()
    def nonce_counts_committed_txs(self):
        for acct in ACCOUNTS:
            assert get_account(self.state, acct.public_key).nonce == self.committed_txs.get(acct.public_key, 0)

    @invariant()
    def state_root_matches_a_from_scratch_rebuild(self):
        assert self.head.state_root == compute_root(self.state.data)


CoinMachine.TestCase.settings = settings(CoinMachine.TestCase.settings, stateful_step_count=30)
test_coin_state_machine = CoinMachine.TestCase
