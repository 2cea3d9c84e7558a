"""Mempool: admission and each refusal, nonce-ordered fair selection, eviction records, bounds."""

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.errors import InvalidTransaction, LedgerError
from ledger.keys import KeyPair
from ledger.tx import SignedTx, TxBody, make_tx
from node.errors import DuplicateTx, MempoolFull, NodeError, NonceConflict, SenderLimit, TxRejected, TxTooLarge
from node.mempool import EVICTED, PENDING, UNKNOWN, Mempool, MempoolLimits

CHAIN = "test-chain"
KEYS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(4)]


def tx(key: KeyPair, nonce: int, pad: int = 0) -> SignedTx:
    return make_tx(CHAIN, "transfer", key, nonce, [KEYS[0].public_key, 1, "x" * pad])


def fake_tx(sender: int, nonce: int, pad: int = 0) -> SignedTx:
    """An unsigned stand-in (the property tests' check does not verify signatures)."""
    body = TxBody(CHAIN, "transfer", bytes([sender]) * 32, nonce, (b"p" * pad,))
    raw = codec.encode([body.to_list(), [[body.sender, b"\0" * 64]]])
    return SignedTx(body, ((body.sender, b"\0" * 64),), raw, body.hash())


def ledger_check(state: dict[bytes, int]):
    """What ledger.chain.check_admissible does, reduced: signatures once, nonce >= state + 1."""
    def check(t: SignedTx) -> None:
        if t.body.chain_id != CHAIN:
            raise InvalidTransaction(f"chain id {t.body.chain_id!r}; expected {CHAIN!r}")
        t.verify_signatures()
        if t.body.nonce <= state.get(t.body.sender, 0):
            raise InvalidTransaction(f"nonce {t.body.nonce} is stale")
    return check


def accept(t: SignedTx) -> None:
    pass


def test_admitted_tx_is_pending_and_selected():
    pool, state = Mempool(), {}
    t = tx(KEYS[1], 1)
    pool.add(t, ledger_check(state))
    assert pool.status(t.tx_hash).state == PENDING
    assert t.tx_hash in pool and len(pool) == 1 and pool.size_bytes == len(t.raw)
    assert pool.select(10, 10_000, lambda s: state.get(s, 0)) == [t]


def test_duplicate_is_refused_without_running_the_check_again():
    pool, calls = Mempool(), []
    t = tx(KEYS[1], 1)
    pool.add(t, calls.append)
    with pytest.raises(DuplicateTx) as err:
        pool.add(t, calls.append)
    assert len(calls) == 1 and err.value.http_status == 409 and len(pool) == 1


def test_replace_by_same_nonce_is_refused_with_a_distinct_error():
    pool = Mempool()
    first, second = tx(KEYS[1], 1), tx(KEYS[1], 1, pad=3)
    pool.add(first, accept)
    with pytest.raises(NonceConflict, match="replace-by-nonce is refused") as err:
        pool.add(second, accept)
    assert err.value.code == "nonce_conflict"
    assert pool.get(first.tx_hash) is first and pool.status(second.tx_hash).state == UNKNOWN


def test_ledger_refusal_becomes_tx_rejected_with_the_ledger_code():
    pool = Mempool()
    bad_sig = tx(KEYS[1], 1)
    forged = SignedTx(bad_sig.body, ((KEYS[1].public_key, b"\1" * 64),), bad_sig.raw, bad_sig.tx_hash)
    with pytest.raises(TxRejected) as err:
        pool.add(forged, ledger_check({}))
    assert err.value.reason == "bad_signature" and err.value.http_status == 400
    with pytest.raises(TxRejected) as err:
        pool.add(tx(KEYS[1], 3), ledger_check({KEYS[1].public_key: 5}))
    assert err.value.reason == "invalid_tx" and "stale" in err.value.message
    assert len(pool) == 0


def test_full_by_count_raises_503_with_retry_after_and_keeps_everything():
    pool = Mempool(MempoolLimits(max_count=2, retry_after_s=3))
    pool.add(tx(KEYS[1], 1), accept)
    pool.add(tx(KEYS[2], 1), accept)
    with pytest.raises(MempoolFull) as err:
        pool.add(tx(KEYS[3], 1), accept)
    assert err.value.http_status == 503 and err.value.retry_after == 3
    assert len(pool) == 2
    assert pool.counters["refused_full"] == 1


def test_full_by_bytes_is_refused():
    t = tx(KEYS[1], 1)
    pool = Mempool(MempoolLimits(max_bytes=len(t.raw) * 2 - 1))
    pool.add(t, accept)
    with pytest.raises(MempoolFull, match="bytes"):
        pool.add(tx(KEYS[2], 1), accept)


def test_tx_larger_than_the_pool_is_refused_as_too_large():
    big = tx(KEYS[1], 1, pad=2000)
    with pytest.raises(TxTooLarge) as err:
        Mempool(MempoolLimits(max_bytes=1024)).add(big, accept)
    assert err.value.http_status == 413


def test_one_sender_cannot_fill_the_pool():
    pool = Mempool(MempoolLimits(max_count=100, max_per_sender=3))
    for n in range(1, 4):
        pool.add(tx(KEYS[1], n), accept)
    with pytest.raises(SenderLimit) as err:
        pool.add(tx(KEYS[1], 4), accept)
    assert isinstance(err.value, NodeError) and err.value.http_status == 429
    pool.add(tx(KEYS[2], 1), accept)  # others still get in
    assert len(pool) == 4


def test_gap_waits_until_the_missing_nonce_arrives():
    pool, state = Mempool(), {}
    t3, t2, t1 = tx(KEYS[1], 3), tx(KEYS[1], 2), tx(KEYS[1], 1)
    pool.add(t3, accept)
    pool.add(t2, accept)
    nonce = lambda s: state.get(s, 0)  # noqa: E731
    assert pool.select(10, 10**6, nonce) == []
    pool.add(t1, accept)
    assert pool.select(10, 10**6, nonce) == [t1, t2, t3]


def test_selection_is_round_robin_across_senders_in_arrival_order():
    pool = Mempool()
    a = [tx(KEYS[1], n) for n in (1, 2, 3)]
    b = [tx(KEYS[2], n) for n in (1, 2)]
    for t in a + b:
        pool.add(t, accept)
    picked = pool.select(4, 10**6, lambda s: 0)
    assert picked == [a[0], b[0], a[1], b[1]]


def test_selection_respects_byte_budget_without_skipping_a_senders_nonce():
    pool = Mempool()
    small1, big2, small3 = tx(KEYS[1], 1), tx(KEYS[1], 2, pad=500), tx(KEYS[1], 3)
    other = tx(KEYS[2], 1)
    for t in (small1, big2, small3, other):
        pool.add(t, accept)
    budget = len(small1.raw) + len(other.raw) + len(small3.raw)
    picked = pool.select(10, budget, lambda s: 0)
    assert picked == [small1, other]


def test_commit_removes_txs_and_evicts_stale_nonces_with_a_reason():
    pool, state = Mempool(), {}
    ours = tx(KEYS[1], 1)
    rival = tx(KEYS[1], 1, pad=1)  # same nonce, committed via another node
    later = tx(KEYS[1], 2)
    pool.add(ours, accept)
    pool.add(later, accept)
    state[KEYS[1].public_key] = 1
    evicted = pool.on_block_committed([rival.tx_hash], lambda s: state.get(s, 0))
    assert evicted == [ours.tx_hash]
    st_ = pool.status(ours.tx_hash)
    assert st_.state == EVICTED and st_.reason == "nonce_stale" and "nonce 1" in st_.detail
    assert pool.status(later.tx_hash).state == PENDING
    state[KEYS[1].public_key] = 2
    assert pool.on_block_committed([later.tx_hash], lambda s: state.get(s, 0)) == []
    assert len(pool) == 0 and pool.size_bytes == 0 and pool.status(later.tx_hash).state == UNKNOWN


def test_eviction_records_are_bounded_lru():
    pool = Mempool(MempoolLimits(recent_evictions=2))
    txs = [tx(KEYS[i], 1) for i in (1, 2, 3)]
    for t in txs:
        pool.add(t, accept)
        assert pool.evict(t.tx_hash, "test")
    assert pool.status(txs[0].tx_hash).state == UNKNOWN
    assert pool.status(txs[2].tx_hash).reason == "test"
    assert not pool.evict(txs[0].tx_hash)


def test_mempool_errors_are_node_errors_not_ledger_errors():
    for cls in (DuplicateTx, MempoolFull, NonceConflict, SenderLimit, TxTooLarge):
        assert issubclass(cls, NodeError) and not issubclass(cls, LedgerError)


# --- property: selection order and bounds hold for any sequence of operations ---

ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(1, 5), st.integers(1, 8), st.integers(0, 300)),
    st.tuples(st.just("commit"), st.integers(1, 12), st.integers(200, 3000), st.just(0)),
), min_size=1, max_size=60)


@settings(max_examples=60)
@given(ops, st.integers(3, 20), st.integers(1, 6), st.integers(600, 5000))
def test_selection_always_consecutive_per_sender_and_bounds_always_hold(seq, max_count, per_sender, max_bytes):
    pool = Mempool(MempoolLimits(max_count=max_count, max_bytes=max_bytes, max_per_sender=per_sender))
    state: dict[bytes, int] = defaultdict(int)
    known: dict[bytes, str] = {}
    for op, a, b, c in seq:
        if op == "add":
            t = fake_tx(a, state[bytes([a]) * 32] + b, c)
            try:
                pool.add(t, lambda t_: None)
                known[t.tx_hash] = "in"
            except NodeError:
                pass
        else:
            picked = pool.select(a, b, lambda s: state[s])
            assert len(picked) <= a and sum(len(t.raw) for t in picked) <= b
            expect: dict[bytes, int] = {}
            for t in picked:
                s = t.body.sender
                expect.setdefault(s, state[s] + 1)
                assert t.body.nonce == expect[s], "a sender's txs must be consecutive from state nonce + 1"
                expect[s] += 1
            for t in picked:  # commit what was selected, as the chain would
                state[t.body.sender] = t.body.nonce
            pool.on_block_committed([t.tx_hash for t in picked], lambda s: state[s])
            for t in picked:
                known[t.tx_hash] = "committed"
        assert len(pool) <= max_count and pool.size_bytes <= max_bytes
        assert all(len(pool.get_pending_nonces(bytes([s]) * 32)) <= per_sender for s in range(1, 6))
        # nothing admitted disappears silently: pending, evicted with a reason, or committed
        for h, where in known.items():
            if where == "in":
                assert pool.status(h).state in (PENDING, EVICTED)


# --- stateful: the mempool against a tiny dict model ---

from hypothesis.stateful import RuleBasedStateMachine, invariant, rule  # noqa: E402

LIMITS = MempoolLimits(max_count=12, max_bytes=2500, max_per_sender=4, recent_evictions=1000)


class MempoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.pool = Mempool(LIMITS)
        self.state: dict[bytes, int] = defaultdict(int)
        self.pending: dict[bytes, SignedTx] = {}
        self.evicted: dict[bytes, str] = {}

    def _nonce(self, sender: bytes) -> int:
        return self.state[sender]

    def _expected_refusal(self, t: SignedTx) -> type | None:
        if t.tx_hash in self.pending:
            return DuplicateTx
        if len(t.raw) > LIMITS.max_bytes:
            return TxTooLarge
        mine = [p for p in self.pending.values() if p.body.sender == t.body.sender]
        if any(p.body.nonce == t.body.nonce for p in mine):
            return NonceConflict
        if len(mine) >= LIMITS.max_per_sender:
            return SenderLimit
        used = sum(len(p.raw) for p in self.pending.values())
        if len(self.pending) >= LIMITS.max_count or used + len(t.raw) > LIMITS.max_bytes:
            return MempoolFull
        if t.body.nonce <= self.state[t.body.sender]:
            return TxRejected
        return None

    @rule(sender=st.integers(1, 4), ahead=st.integers(-1, 5), pad=st.sampled_from([0, 10, 400, 3000]))
    def add(self, sender, ahead, pad):
        s = bytes([sender]) * 32
        t = fake_tx(sender, max(1, self.state[s] + ahead), pad)

        def check(tx_: SignedTx) -> None:
            if tx_.body.nonce <= self.state[tx_.body.sender]:
                raise InvalidTransaction("stale nonce")

        expected = self._expected_refusal(t)
        if expected is None:
            self.pool.add(t, check)
            self.pending[t.tx_hash] = t
            self.evicted.pop(t.tx_hash, None)
        else:
            with pytest.raises(expected):
                self.pool.add(t, check)

    @rule(count=st.integers(0, 8), budget=st.integers(0, 3000))
    def propose_and_commit(self, count, budget):
        picked = self.pool.select(count, budget, self._nonce)
        assert len(picked) <= count and sum(len(t.raw) for t in picked) <= budget
        for t in picked:
            assert t.body.nonce == self.state[t.body.sender] + 1
            self.state[t.body.sender] = t.body.nonce
            del self.pending[t.tx_hash]
        self._after_block([t.tx_hash for t in picked], None)

    @rule(sender=st.integers(1, 4))
    def commit_elsewhere(self, sender):
        """Another node's tx from this sender commits: our tx with that nonce goes stale."""
        s = bytes([sender]) * 32
        self.state[s] += 1
        self._after_block([b"\xee" * 32], [s])

    def _after_block(self, hashes, senders):
        evicted = self.pool.on_block_committed(hashes, self._nonce, senders)
        stale = {h for h, t in self.pending.items() if t.body.nonce <= self.state[t.body.sender]}
        assert set(evicted) == stale
        for h in stale:
            del self.pending[h]
            self.evicted[h] = "nonce_stale"

    @invariant()
    def pool_matches_model(self):
        assert len(self.pool) == len(self.pending)
        assert self.pool.size_bytes == sum(len(t.raw) for t in self.pending.values())
        for h in self.pending:
            assert self.pool.status(h).state == PENDING
        for h, reason in self.evicted.items():
            got = self.pool.status(h)
            assert (got.state, got.reason) == (EVICTED, reason)


TestMempoolMachine = MempoolMachine.TestCase
TestMempoolMachine.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
