"""Mempool: admission and each refusal, nonce-ordered fair selection, eviction records, bounds."""

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.errors import InvalidTransaction, LedgerError
from ledger.keys import KeyPair
from ledger.tx import SignedTx, TxBody, make_tx
from node.errors import (
    DuplicateTx,
    MempoolFull,
    NodeError,
    NonceConflict,
    NonceGapTooLarge,
    SenderLimit,
    TxRejected,
    TxTooLarge,
)
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


# --- admission nobody can clog: bounded gap, expiry, gapped share, fair share, reserve ---

class Chain:
    """Committed nonces and a clock the test moves by hand (no sleeps)."""

    def __init__(self) -> None:
        self.nonces: dict[bytes, int] = defaultdict(int)
        self.t = 1000.0

    def get_nonce(self, sender: bytes) -> int:
        return self.nonces[sender]

    def now(self) -> float:
        return self.t

    def pool(self, limits: MempoolLimits | None = None, privileged: set[bytes] | None = None) -> Mempool:
        return Mempool(limits, get_nonce=self.get_nonce, now=self.now,
                       is_privileged=None if privileged is None else privileged.__contains__)

    def commit(self, pool: Mempool, txs: list[SignedTx]) -> list[bytes]:
        for t in txs:
            self.nonces[t.body.sender] = max(self.nonces[t.body.sender], t.body.nonce)
        return pool.on_block_committed([t.tx_hash for t in txs], self.get_nonce, {t.body.sender for t in txs})


def test_gapped_nonces_beyond_bound_refused():
    chain = Chain()
    chain.nonces[bytes([1]) * 32] = 5
    pool = chain.pool(MempoolLimits(max_nonce_gap=16))
    pool.add(fake_tx(1, 22), accept)  # next runnable is 6: 6 + 16 is the furthest taken
    with pytest.raises(NonceGapTooLarge) as err:
        pool.add(fake_tx(1, 23), accept)
    assert (err.value.observed, err.value.expected) == (23, 22) and err.value.code == "nonce_gap_too_large"
    assert "next runnable nonce 6" in err.value.message and err.value.http_status == 400
    # the attack from the issue: one key, 256 gapped nonces -> at most max_nonce_gap of them get in
    for n in range(2, 258):
        try:
            pool.add(fake_tx(2, n), accept)
        except NonceGapTooLarge:
            pass
    assert pool.get_pending_nonces(bytes([2]) * 32) == list(range(2, 18))
    # a sender with a runnable run may pipeline past it: the bound counts from the end of the run
    for n in range(6, 12):
        pool.add(fake_tx(1, n), accept)
    pool.add(fake_tx(1, 12 + 16), accept)
    assert pool.counters["refused_nonce_gap"] == 1 + (257 - 17)


def test_unrunnable_tx_expires():
    chain = Chain()
    pool = chain.pool(MempoolLimits(gap_ttl_s=30))
    runnable, gapped, later = fake_tx(1, 1), fake_tx(2, 3), fake_tx(3, 2)
    pool.add(runnable, accept)
    pool.add(gapped, accept)
    chain.t += 10
    pool.add(later, accept)
    chain.t += 19.9
    assert pool.expire() == []
    chain.t += 0.1
    assert pool.expire() == [gapped.tx_hash]
    record = pool.status(gapped.tx_hash)
    assert (record.state, record.reason) == (EVICTED, "expired_gap")
    assert "nonce 3 waited 30.0 s for the sender's nonce 1" in record.detail
    # a block runs expiry too: nobody has to call expire() for the pool to clean itself
    chain.t += 10
    assert chain.commit(pool, []) == [later.tx_hash]
    assert pool.status(later.tx_hash).reason == "expired_gap"
    chain.t += 1000
    assert pool.expire() == [] and pool.status(runnable.tx_hash).state == PENDING  # runnable never expires


def test_gapped_tx_whose_missing_nonce_arrives_does_not_expire():
    chain = Chain()
    pool = chain.pool(MempoolLimits(gap_ttl_s=30))
    two, one = fake_tx(1, 2), fake_tx(1, 1)
    pool.add(two, accept)
    chain.t += 20
    pool.add(one, accept)
    chain.t += 100
    assert pool.expire() == [] and len(pool) == 2 and pool.runnable_count() == 2


def test_gapped_junk_does_not_count_as_runnable():
    chain = Chain()
    pool = chain.pool()
    for key in range(1, 51):  # 50 fresh keys, each parks nonces 2..17 behind a nonce 1 it never sends
        for n in range(2, 18):
            pool.add(fake_tx(key, n), accept)
    assert len(pool) == 800 and pool.runnable_count() == 0
    pool.add(fake_tx(51, 1), accept)
    assert pool.runnable_count() == 1
    pool.add(fake_tx(7, 1), accept)  # key 7 fills its gap: its whole chain can run now
    assert pool.runnable_count() == 1 + 17
    assert chain.commit(pool, pool.select(5, 10**6, chain.get_nonce)) == []
    assert pool.runnable_count() == 13 and len(pool) == 797  # 51:1 and 7:1..4 committed; 7:5..17 left
    # a runnable tx evicted from the middle of a chain leaves the rest of it waiting on a gap
    assert pool.evict(fake_tx(7, 10).tx_hash, "test")
    assert pool.runnable_count() == 5 and pool.stats()["gapped"] == 49 * 16 + 7


def test_gapped_share_is_bounded_so_runnable_txs_still_get_in():
    chain = Chain()
    pool = chain.pool(MempoolLimits(max_count=100, max_gapped_fraction=0.25))
    for key in range(1, 9):
        for n in range(2, 6):
            try:
                pool.add(fake_tx(key, n), accept)
            except MempoolFull as err:
                assert "nonce gap" in err.message and err.http_status == 503 and err.retry_after == 1
    assert len(pool) == 25 and pool.counters["refused_gapped_full"] == 7
    for key in range(20, 95):  # runnable txs fill the rest of the pool
        pool.add(fake_tx(key, 1), accept)
    assert len(pool) == 100 and pool.runnable_count() == 75


def test_one_sender_with_many_txs_gets_a_smaller_share_under_pressure():
    chain = Chain()
    limits = MempoolLimits(max_count=100, max_per_sender=40, min_per_sender=4, pressure_fraction=0.5)
    pool = chain.pool(limits)
    assert pool.get_sender_share() == 40
    for key in range(1, 61):  # 60 % full
        pool.add(fake_tx(key, 1), accept)
    assert pool.get_sender_share() == 4 + int(36 * 0.8)
    with pytest.raises(SenderLimit) as err:
        for n in range(1, 41):  # below pressure this sender could hold 40
            pool.add(fake_tx(200, n), accept)
    # each of its txs fills the pool a little more: at 79 % full the share is 4 + int(36 * 0.42) = 19
    assert len(pool.get_pending_nonces(bytes([200]) * 32)) == 19
    assert "79% full a sender may hold 19" in err.value.message and err.value.http_status == 429
    pool.add(fake_tx(201, 1), accept)  # a sender with little pending still gets in
    assert pool.counters["refused_sender_share"] == 1


def test_fresh_key_flood_cannot_shut_out_staff():
    """The attack from the issue, scaled down: fresh keys flood the pool; staff and issuer still get in."""
    chain = Chain()
    staff, issuer = bytes([250]) * 32, bytes([251]) * 32
    pool = chain.pool(MempoolLimits(max_count=500, reserve_fraction=0.2), privileged={staff, issuer})
    refused = []
    for key in range(1, 200):  # 199 fresh keys with 256 nonces each: odd keys gapped (from 2), even runnable
        for n in range(1 + key % 2, 257 + key % 2):
            try:
                pool.add(fake_tx(key, n), accept)
            except NodeError as err:
                refused.append(err)
    assert len(pool) == 400  # the public 80 %: the flood never reaches the reserve
    full = [e for e in refused if isinstance(e, MempoolFull) and "reserved" in e.message]
    assert full and all(e.http_status == 503 and e.retry_after >= 1 for e in full)
    mint, grant = fake_tx(251, 1), fake_tx(250, 1)
    pool.add(mint, accept)
    pool.add(grant, accept)
    assert pool.status(mint.tx_hash).state == PENDING and pool.status(grant.tx_hash).state == PENDING
    with pytest.raises(MempoolFull):
        pool.add(fake_tx(230, 1), accept)  # the next fresh key is still refused, with Retry-After
    # the gapped part of the flood is held to its share, does not count as runnable, and goes away by itself
    gapped = pool.stats()["gapped"]
    assert 0 < gapped <= 125 and pool.runnable_count() == 402 - gapped
    chain.t += MempoolLimits().gap_ttl_s
    assert len(pool.expire()) == gapped
    assert pool.stats()["gapped"] == 0 and len(pool) == pool.runnable_count() == 402 - gapped


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
