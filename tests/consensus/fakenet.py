"""A tiny fake link joining replicas with no sockets: a FIFO of deliveries, manual timers, no randomness.

``FakeNet.run()`` delivers queued events until the queue is empty (bounded). ``Broadcast`` reaches every
other *connected* replica; ``RequestBlock``/``ValidateBlock`` are answered at once (blocks in ``invalid``
are refused); ``Persist`` keeps the last WAL record per replica; ``StartTimer`` is remembered, and the test
fires timers explicitly with ``fire_round_timers`` / ``fire_propose``. ``Decide`` appends to ``decided``.

Validator-set changes: ``FakeNet(n, extra=k, changes={H: (i, ...)})`` runs n + k replicas, the genesis set
being the first n keys; block H decides the set of those key indices, in force from H + 2. After a replica
decides (or syncs past) block H, the net feeds it ``ValidatorSetScheduled(H + 2, ...)`` before any other
event, as the node does; ``set_at(h)`` is the truth the tests check certificates against.
"""

from __future__ import annotations

from collections import deque

from consensus.events import (TIMER_PROPOSE, TIMER_ROUND, BlockProposalReady, BlockValidated, Broadcast, Decide,
                              MessageReceived, Persist, RequestBlock, RequestSync, Restarted, SendTo,
                              StartTimer, SyncedTo, TimerExpired, ValidateBlock, ValidatorSetScheduled)
from consensus.replica import Replica, ReplicaConfig
from ledger.block import Block, Header, validator_set_hash
from ledger.keys import KeyPair

CHAIN = "carecoin-test"
GENESIS_HASH = b"\x00" * 32


def make_keys(n: int) -> list[KeyPair]:
    """n deterministic validator keys."""
    return [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(n)]


def make_block(height: int, prev_hash: bytes, proposer: bytes, validators: tuple[bytes, ...], salt: int = 0,
               chain_id: str = CHAIN, next_validators: tuple[bytes, ...] | None = None) -> Block:
    """An empty block; ``salt`` (in the timestamp) makes different blocks for the same height."""
    header = Header(chain_id, height, prev_hash, 1_000 * height + salt, proposer, 0, b"\x11" * 32, b"\x22" * 32,
                    validator_set_hash(validators),
                    validator_set_hash(next_validators) if next_validators is not None else b"")
    return Block(header, ())


class FakeNet:
    def __init__(self, n: int, *, base_timeout_ms: int = 1000, start_height: int = 1, extra: int = 0,
                 changes: dict[int, tuple[int, ...]] | None = None, **cfg) -> None:
        self.keys = make_keys(n + extra)
        self.all_keys = tuple(k.public_key for k in self.keys)
        self.validators = self.all_keys[:n]  # the genesis set
        self.changes = {h: tuple(self.all_keys[j] for j in idx) for h, idx in (changes or {}).items()}
        n += extra
        self.config = ReplicaConfig(CHAIN, self.validators, base_timeout_ms=base_timeout_ms, **cfg)
        self.replicas = [Replica(self.config, k, start_height, GENESIS_HASH) for k in self.keys]
        self.queue: deque[tuple[int, object]] = deque()
        self.connected = [True] * n
        self.invalid: set[bytes] = set()
        self.wal: dict[int, object] = {}
        self.timers: dict[int, dict[str, StartTimer]] = {i: {} for i in range(n)}
        self.decided: dict[int, list[Decide]] = {i: [] for i in range(n)}
        self.sync_requests: dict[int, list[int]] = {i: [] for i in range(n)}
        self.sent: list[tuple[int, object]] = []
        self.salt = [0] * n  # per-replica block salt, to make proposers build different blocks
        self.now = 0  # virtual clock (ms) for ``advance``
        self.deadlines: dict[int, dict[str, tuple[int, StartTimer]]] = {i: {} for i in range(n)}
        self.silent: set[int] = set()  # crashed replicas: receive nothing, fire nothing
        self.synced: dict[int, list[int]] = {}  # heights each replica caught up to by sync

    def start(self) -> None:
        for i in range(len(self.replicas)):
            self.deliver(i, Restarted(None))

    def set_at(self, height: int) -> tuple[bytes, ...]:
        """The validator set in force at ``height`` (the chain's truth)."""
        current = self.validators
        for h in sorted(self.changes):
            if h + 2 <= height:
                current = self.changes[h]
        return current

    def deliver(self, i: int, event) -> None:
        actions = self.replicas[i].handle(event)
        self.apply(i, actions)

    def apply(self, i: int, actions) -> None:
        follow_up = []
        for a in actions:
            self.sent.append((i, a))
            if isinstance(a, Broadcast):
                if self.connected[i]:
                    for j in range(len(self.replicas)):
                        if j != i and self.connected[j]:
                            self.queue.append((j, MessageReceived(a.message)))
            elif isinstance(a, SendTo):
                j = self.all_keys.index(a.validator)
                if self.connected[i] and self.connected[j]:
                    self.queue.append((j, MessageReceived(a.message)))
            elif isinstance(a, Persist):
                self.wal[i] = a.record
            elif isinstance(a, StartTimer):
                self.timers[i][a.kind] = a
                self.deadlines[i][a.kind] = (self.now + a.delay_ms, a)
            elif isinstance(a, RequestBlock):
                r = self.replicas[i]
                block = make_block(a.height, r._prev_hash, self.all_keys[i], self.set_at(a.height), self.salt[i],
                                   next_validators=self.set_at(a.height + 1))
                self.queue.append((i, BlockProposalReady(a.height, a.round, block)))
            elif isinstance(a, ValidateBlock):
                ok = a.block.hash not in self.invalid
                self.queue.append((i, BlockValidated(a.height, a.block.hash, ok)))
            elif isinstance(a, Decide):
                self.decided[i].append(a)
                if a.block.height in self.changes:  # fed after the commit, before any other event
                    follow_up.append(ValidatorSetScheduled(a.block.height + 2, self.changes[a.block.height]))
            elif isinstance(a, RequestSync):
                self.sync_requests[i].append(a.height)
                self._serve_sync(i)
        for event in follow_up:
            self.deliver(i, event)

    def _serve_sync(self, i: int) -> None:
        """Catch-up (R3b): hand replica i the highest block any replica decided, as the node's sync would."""
        top = None
        for j, ds in self.decided.items():
            if j != i and j not in self.silent and ds and (top is None or ds[-1].block.height > top.block.height):
                top = ds[-1]
        if top is not None and top.block.height >= self.replicas[i].height:
            self.synced.setdefault(i, []).append(top.block.height)
            # The node commits the synced blocks, feeding each change they decide, then SyncedTo.
            at = self.replicas[i].height
            for h in sorted(self.changes):
                if at <= h <= top.block.height:
                    self.deliver(i, ValidatorSetScheduled(h + 2, self.changes[h]))
            self.queue.append((i, SyncedTo(top.block.height, top.block.hash)))

    def run(self, max_steps: int = 100_000) -> int:
        steps = 0
        while self.queue and steps < max_steps:
            i, ev = self.queue.popleft()
            if i not in self.silent:
                self.deliver(i, ev)
            steps += 1
        return steps

    def advance(self, drain: bool = True) -> bool:
        """Move the virtual clock to the earliest pending timer of a live replica, fire it, and (``drain``)
        run the queue."""
        pending = [(d, i, k) for i, ts in self.deadlines.items() if i not in self.silent
                   for k, (d, _) in ts.items()]
        if not pending:
            return False
        d, i, k = min(pending)
        _, t = self.deadlines[i].pop(k)
        self.now = max(self.now, d)
        self.deliver(i, TimerExpired(t.height, t.round, t.kind))
        if drain:
            self.run()
        return True

    def run_until_height(self, height: int, max_timer_fires: int = 200) -> int:
        """Advance until every live replica reaches ``height``; return the timer fires used."""
        self.run()
        for fires in range(max_timer_fires):
            if all(r.height >= height for i, r in enumerate(self.replicas) if i not in self.silent):
                return fires
            if not self.advance():
                break
        live = [r.height for i, r in enumerate(self.replicas) if i not in self.silent]
        raise AssertionError(f"live replicas at heights {live} after {max_timer_fires} timer fires; "
                             f"expected all at {height}")

    def fire(self, i: int, kind: str) -> None:
        t = self.timers[i].get(kind)
        if t is not None:
            self.deliver(i, TimerExpired(t.height, t.round, t.kind))

    def fire_propose(self, only: list[int] | None = None) -> None:
        for i in (only if only is not None else range(len(self.replicas))):
            self.fire(i, TIMER_PROPOSE)

    def fire_round_timers(self, only: list[int] | None = None) -> None:
        for i in (only if only is not None else range(len(self.replicas))):
            self.fire(i, TIMER_ROUND)

    def heights(self) -> list[int]:
        return [r.height for r in self.replicas]


# ---- single-replica harness for unit tests ---------------------------------------------------------------

from consensus.messages import (NO_ROUND, sign_commit, sign_prepare, sign_proposal,  # noqa: E402
                                sign_round_change)


class Solo:
    """One replica under test (validator ``me``) plus the other validators' keys to build its inbox."""

    def __init__(self, n: int, me: int = 0, height: int = 1, prev_hash: bytes = GENESIS_HASH, **cfg) -> None:
        self.keys = make_keys(n)
        self.validators = tuple(k.public_key for k in self.keys)
        self.config = ReplicaConfig(CHAIN, self.validators, **cfg)
        self.me = me
        self.height = height
        self.prev_hash = prev_hash
        self.r = Replica(self.config, self.keys[me], height, prev_hash)

    def start(self, record=None) -> list:
        return self.r.handle(Restarted(record))

    def handle(self, event) -> list:
        return self.r.handle(event)

    def recv(self, msg) -> list:
        return self.r.handle(MessageReceived(msg))

    def proposer_index(self, round_: int, height: int | None = None) -> int:
        return self.validators.index(self.r.proposer(self.height if height is None else height, round_))

    def block(self, salt: int = 0, height: int | None = None, prev_hash: bytes | None = None,
              round_: int = 0) -> Block:
        """A fresh block whose header names proposer(height, round_) (R1 checks it for fresh proposals)."""
        h = self.height if height is None else height
        return make_block(h, self.prev_hash if prev_hash is None else prev_hash,
                          self.validators[self.proposer_index(round_, h)], self.validators, salt)

    def proposal(self, round_: int, block: Block | None = None, signer: int | None = None, rcs=(), prepares=(),
                 height: int | None = None):
        h = self.height if height is None else height
        i = self.proposer_index(round_, h) if signer is None else signer
        return sign_proposal(self.keys[i], CHAIN, h, round_, block or self.block(height=h, round_=round_),
                             tuple(rcs), tuple(prepares))

    def prepare(self, i: int, round_: int, block_hash: bytes, height: int | None = None):
        return sign_prepare(self.keys[i], CHAIN, self.height if height is None else height, round_, block_hash)

    def commit(self, i: int, round_: int, block_hash: bytes, height: int | None = None):
        return sign_commit(self.keys[i], CHAIN, self.height if height is None else height, round_, block_hash)

    def rc(self, i: int, round_: int, block: Block | None = None, prepared_round: int = NO_ROUND,
           prepares=(), height: int | None = None):
        return sign_round_change(self.keys[i], CHAIN, self.height if height is None else height, round_,
                                 prepared_round, block, tuple(prepares))

    def prepared_rc(self, i: int, round_: int, block: Block, prepared_round: int, signers):
        """A ROUND-CHANGE by ``i`` carrying ``block`` prepared at ``prepared_round`` by ``signers``."""
        proof = tuple(self.prepare(j, prepared_round, block.hash) for j in signers)
        return self.rc(i, round_, block, prepared_round, proof)

    def accept(self, prop) -> list:
        """Deliver a proposal and answer its ValidateBlock with valid=True; return all actions."""
        out = self.recv(prop)
        for a in list(out):
            if isinstance(a, ValidateBlock):
                out += self.handle(BlockValidated(a.block.height, a.block.hash, True))
        return out


def of(actions, cls) -> list:
    """The actions of one type, in order."""
    return [a for a in actions if isinstance(a, cls)]


def broadcasts(actions, msg_cls) -> list:
    """The messages of one type broadcast by these actions, in order."""
    return [a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, msg_cls)]
