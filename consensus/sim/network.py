"""A seeded, deterministic simulated network of replicas on a virtual clock.

Theory of operation: every future happening — a message delivery, a timer, an application answer, a
crash, a restart, a partition, a heal, a byzantine injection — is an item on one heap ordered by
(virtual time ms, sequence number). ``step()`` pops the earliest item, feeds the corresponding event to one
replica and carries out the returned actions in order, exactly as a node would:
  Persist    -> the host's durable WAL (survives a crash) is replaced before later actions run;
  Broadcast  -> one copy per other node, each through the link model (drop / delay / duplicate / partition);
  SendTo     -> the same, to every node holding that validator key (twins share one);
  StartTimer -> a TimerExpired item at now + delay, tagged with the host's incarnation so a crash cancels it;
  RequestBlock / ValidateBlock -> the fake app answers after a small delay;
  Decide     -> checked by the invariant checker, then appended to the host's decided log;
  RequestSync -> after a delay, certified blocks from a reachable honest replica's log, each certificate
                 verified with the set in force at its height, then SyncedTo;
  ReportEvidence -> recorded (and checked never to accuse an honest validator).
All randomness comes from one ``random.Random(seed)``, iteration is over lists only, so a (plan, seed)
replays bit for bit. A crash drops the Replica object and its in-flight timers and app answers; a restart
builds a new one at the decided height + 1 and feeds it ``Restarted(last WAL record, (V(h), V(h + 1)))``.
After a block that decided a validator-set change is committed (by consensus or sync), the host feeds its
replica ``ValidatorSetScheduled(H + 2, V(H + 2))`` before any other event (``Host.pending``), as a node does.
"""

from __future__ import annotations

import heapq
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from consensus import events as ev
from consensus.messages import Commit, Message
from consensus.sim.app import Decision, FakeApp
from consensus.sim.invariants import EXCEPTION, SYNC, WIRE, InvariantChecker
from ledger.block import verify_certificate
from ledger.errors import LedgerError
from ledger.keys import KeyPair

HONEST = "honest"
SYNC_RETRIES = 50


@dataclass(slots=True)
class LinkModel:
    """The fault knobs of the network right now (the scenario changes them over time)."""

    drop_p: float = 0.0
    dup_p: float = 0.0
    min_delay_ms: int = 1
    max_delay_ms: int = 10
    groups: tuple[frozenset[int], ...] = ()  # a partition: nodes talk only inside their group

    def is_connected(self, a: int, b: int) -> bool:
        """True iff no partition separates nodes ``a`` and ``b``."""
        if not self.groups:
            return True
        return any(a in g and b in g for g in self.groups)


@dataclass(slots=True)
class Host:
    """One simulated machine: a key, a role, a fake app, a WAL, and (when up) a Replica."""

    idx: int
    key: KeyPair
    role: str
    app: FakeApp
    replica: object | None = None
    epoch: int = 0
    wal: object | None = None
    up: bool = False
    behaviour: object | None = None  # byzantine outbox transformer (consensus.sim.byzantine)
    reachable: frozenset[int] | None = None  # twins: the only peers this node can talk to (None = all)
    crash_trigger: str = ""  # "persist" / "commit": crash right after that action (armed by the plan)
    crash_trigger_after_ms: int = 0
    restart_delay_ms: int = 0
    evidence: list = field(default_factory=list)
    crashes: int = 0
    started_ms: int = 0
    pending: list = field(default_factory=list)  # events to feed before anything else (set changes)

    @property
    def honest(self) -> bool:
        return self.role == HONEST


class EventQueue:
    """A heap of (time_ms, seq, kind, payload); seq breaks ties in insertion order."""

    def __init__(self) -> None:
        self._heap: list[tuple] = []
        self._seq = 0

    def push(self, time_ms: int, kind: str, payload: tuple) -> None:
        """Schedule ``kind`` with ``payload`` at ``time_ms``."""
        self._seq += 1
        heapq.heappush(self._heap, (time_ms, self._seq, kind, payload))

    def pop(self) -> tuple:
        """Remove and return the earliest item."""
        return heapq.heappop(self._heap)

    def __len__(self) -> int:
        return len(self._heap)


class Simulation:
    """Hosts + link model + virtual clock + invariant checker; ``run`` steps until done or a bound."""

    def __init__(self, chain_id: str, validator_keys: list[KeyPair], hosts: list[Host], config: object,
                 rng: random.Random, checker: InvariantChecker, replica_factory: Callable, *,
                 app_delay_ms: tuple[int, int] = (0, 5), sync_delay_ms: tuple[int, int] = (5, 30),
                 wire_p: float = 0.0, max_wire_bytes: int | None = None,
                 sets_at: Callable[[int], tuple[bytes, ...]] | None = None,
                 decided_by: Callable[[int], tuple[bytes, ...] | None] | None = None) -> None:
        self.chain_id = chain_id
        self.validator_keys = validator_keys
        self.validators = tuple(k.public_key for k in validator_keys)  # the genesis set
        self.sets_at = sets_at or (lambda height: self.validators)  # V(h)
        self.decided_by = decided_by or (lambda height: None)  # the set block h decides (from h + 2), or None
        self.hosts = hosts
        self.config = config
        self.rng = rng
        self.checker = checker
        self.replica_factory = replica_factory
        self.link = LinkModel()
        self.queue = EventQueue()
        self.now = 0
        self.steps = 0
        self.messages_sent = 0
        self.app_delay_ms = app_delay_ms
        self.sync_delay_ms = sync_delay_ms
        self.wire_p = wire_p
        self.max_wire_bytes = max_wire_bytes
        self.injector = None  # consensus.sim.byzantine.Injector, set by the scenario
        self.node_sync_after_ms = 0  # > 0: like node.sync, a host that committed nothing for this long syncs
        self.watchdog_syncs = 0
        self.activity: dict[str, int] = {"crashes": 0, "restarts": 0, "syncs": 0, "wire_round_trips": 0,
                                         "partitions": 0, "set_changes_fed": 0}
        self.on_decide: Callable[[Host, int], None] | None = None
        self._nodes_by_key: dict[bytes, list[int]] = {}
        for h in hosts:
            self._nodes_by_key.setdefault(h.key.public_key, []).append(h.idx)

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def start_host(self, host: Host) -> None:
        """(Re)build the host's Replica at its decided height + 1 and feed Restarted(WAL record or None)."""
        host.epoch += 1
        host.up = True
        host.started_ms = self.now
        self.activity["restarts"] += host.crashes > 0
        if self.node_sync_after_ms > 0:
            self.queue.push(self.now + self.node_sync_after_ms, "watchdog", (host.idx, host.epoch))
        height = host.app.get_height() + 1
        host.pending.clear()  # what a node knows at restart: V(h) and V(h + 1), given with Restarted
        host.replica = self.replica_factory(self.config, host.key, height, host.app.get_last_hash())
        sets = (ev.ValidatorSetScheduled(height, self.sets_at(height)),
                ev.ValidatorSetScheduled(height + 1, self.sets_at(height + 1)))
        self.feed(host, ev.Restarted(host.wal, sets))

    def crash_host(self, host: Host, restart_after_ms: int | None) -> None:
        """Drop the Replica and everything in flight for it; optionally schedule its restart."""
        if not host.up:
            return
        host.up = False
        host.replica = None
        host.pending.clear()
        host.epoch += 1
        host.crashes += 1
        self.activity["crashes"] += 1
        if restart_after_ms is not None:
            self.queue.push(self.now + restart_after_ms, "restart", (host.idx,))

    # ---- feeding events and carrying out actions ------------------------------------------------------------

    def feed(self, host: Host, event: object) -> None:
        """Hand one event to a live host's replica and carry out its actions in order; events the host owes
        its replica (``pending``: validator-set changes of committed blocks) go first and right after."""
        self._flush(host)
        self._feed_one(host, event)
        self._flush(host)

    def _flush(self, host: Host) -> None:
        while host.up and host.pending:
            self._feed_one(host, host.pending.pop(0))

    def _feed_one(self, host: Host, event: object) -> None:
        if not host.up:
            return
        try:
            actions = host.replica.handle(event)
        except Exception as exc:  # a core that raises on any input is a finding, not a sim crash
            self.checker.record(EXCEPTION, host.idx, self.now, f"{type(event).__name__}: {type(exc).__name__}: "
                                f"{exc} | {traceback.format_exc(limit=3).splitlines()[-3:]}")
            self.crash_host(host, self.rng.randint(50, 500) if host.honest else None)
            return
        epoch = host.epoch
        for action in actions:
            if not host.up or host.epoch != epoch:
                break  # crashed in the middle of the batch: the rest never happened
            self.process_action(host, action)
        if host.up:
            self.checker.verify_buffers(host.idx, host.replica.buffered_count(), self.now)

    def process_action(self, host: Host, action: object) -> None:
        """Carry out one action of ``host``'s replica (see the module docstring)."""
        if isinstance(action, ev.Persist):
            host.wal = self._wal_roundtrip(host, action.record)
            self._maybe_trigger_crash(host, "persist")
        elif isinstance(action, ev.Broadcast):
            targets = [h.idx for h in self.hosts if h.idx != host.idx]
            self._send(host, action.message, targets)
            if isinstance(action.message, Commit):
                self._maybe_trigger_crash(host, "commit")
        elif isinstance(action, ev.SendTo):
            targets = [i for i in self._nodes_by_key.get(action.validator, []) if i != host.idx]
            self._send(host, action.message, targets)
        elif isinstance(action, ev.StartTimer):
            self.queue.push(self.now + max(0, action.delay_ms), "timer",
                            (host.idx, host.epoch, ev.TimerExpired(action.height, action.round, action.kind)))
        elif isinstance(action, ev.RequestBlock):
            block = host.app.compute_block(action.height, host.key.public_key, self.now)
            self._answer(host, ev.BlockProposalReady(action.height, action.round, block))
        elif isinstance(action, ev.ValidateBlock):
            problem = host.app.get_block_problem(action.block, self.now)
            if not problem and action.block.height != action.height:
                problem = f"block height {action.block.height}; validation asked for {action.height}"
            self._answer(host, ev.BlockValidated(action.height, action.block.hash, not problem, problem,
                                                 action.body_digest))
        elif isinstance(action, ev.Decide):
            self._decide(host, action.block, action.seals, action.round, "consensus")
        elif isinstance(action, ev.RequestSync):
            self.queue.push(self.now + self.rng.randint(*self.sync_delay_ms), "sync",
                            (host.idx, host.epoch, action.height, SYNC_RETRIES))
        elif isinstance(action, ev.ReportEvidence):
            host.evidence.append(action)
            self.checker.process_evidence(host.idx, action.first, action.second, self.now)

    def _wal_roundtrip(self, host: Host, record: object) -> object:
        """What a restart would read back: the record through ``consensus.wal`` encode/decode."""
        from consensus import wal
        from consensus.errors import ConsensusError
        try:
            back = wal.decode_record(wal.encode_record(record))
        except ConsensusError as exc:
            self.checker.record(WIRE, host.idx, self.now, f"WAL record refused by its own codec: {exc}")
            return record
        if back != record:
            self.checker.record(WIRE, host.idx, self.now, "WAL record changed through encode/decode")
        return back

    def _maybe_trigger_crash(self, host: Host, what: str) -> None:
        if host.crash_trigger == what and self.now >= host.crash_trigger_after_ms:
            host.crash_trigger = ""
            self.crash_host(host, host.restart_delay_ms)

    def _answer(self, host: Host, event: object) -> None:
        self.queue.push(self.now + self.rng.randint(*self.app_delay_ms), "app", (host.idx, host.epoch, event))

    def _decide(self, host: Host, block, seals, round_: int, source: str) -> bool:
        ok = self.checker.verify_decision(host.idx, host.honest, block, tuple(seals), host.app.get_height() + 1,
                                          host.app.get_last_hash(), self.now)
        if ok:
            host.app.process_decision(Decision(block, tuple(seals), round_, source, self.now))
            scheduled = self.decided_by(block.height)
            if scheduled is not None:
                host.pending.append(ev.ValidatorSetScheduled(block.height + 2, scheduled))
                self.activity["set_changes_fed"] += 1
            if self.on_decide is not None:
                self.on_decide(host, block.height)
        return ok

    def _send(self, host: Host, msg: Message, targets: list[int]) -> None:
        if host.honest:
            self.checker.process_honest_vote(host.idx, msg, self.now)
        if host.reachable is not None:
            targets = [t for t in targets if t in host.reachable]
        if host.behaviour is not None:
            pairs = host.behaviour.get_deliveries(self, host, msg, targets)
        else:
            pairs = [(t, msg) for t in targets]
        for dst, m in pairs:
            self.route(host.idx, dst, m)

    def route(self, src: int, dst: int, msg: Message) -> None:
        """Put ``msg`` on the wire from ``src`` to ``dst`` through the current link model."""
        link = self.link
        if link.drop_p and self.rng.random() < link.drop_p:
            return
        copies = 2 if (link.dup_p and self.rng.random() < link.dup_p) else 1
        for _ in range(copies):
            delay = self.rng.randint(link.min_delay_ms, link.max_delay_ms)
            self.queue.push(self.now + delay, "deliver", (src, dst, msg))
            self.messages_sent += 1

    def _deliver(self, src: int, dst: int, msg: Message) -> None:
        host = self.hosts[dst]
        if not host.up:
            return
        if src >= 0 and not self.link.is_connected(src, dst):
            return  # src < 0 is the outside adversary (injector): no partition stops it
        if src >= 0 and host.reachable is not None and src not in host.reachable:
            return
        if self.wire_p and self.rng.random() < self.wire_p:
            msg = self._wire_roundtrip(dst, msg)
            if msg is None:
                return
        self.feed(host, ev.MessageReceived(msg))

    def _wire_roundtrip(self, dst: int, msg: Message) -> Message | None:
        from consensus import wire
        from consensus.errors import ConsensusError
        self.activity["wire_round_trips"] += 1
        try:
            raw = wire.encode_message(msg)
            decoded = wire.decode_message(raw) if self.max_wire_bytes is None else \
                wire.decode_message(raw, max_bytes=self.max_wire_bytes)
        except ConsensusError as exc:
            self.checker.record(WIRE, dst, self.now, f"{type(msg).__name__} refused by the wire codec: {exc}")
            return None
        if decoded != msg:
            self.checker.record(WIRE, dst, self.now, f"{type(msg).__name__} changed through encode/decode")
            return None
        return decoded

    def _sync(self, host: Host, height: int, retries: int) -> None:
        own = host.app.get_height()
        if own >= height:
            return  # consensus got there first
        sources = [h for h in self.hosts if h.honest and h.idx != host.idx and h.app.get_height() > own
                   and self.link.is_connected(h.idx, host.idx)]
        if not sources:
            if retries > 0:  # like a node, keep asking (bounded) until a peer that has the blocks is reachable
                self.queue.push(self.now + self.rng.randint(*self.sync_delay_ms) * 4, "sync",
                                (host.idx, host.epoch, height, retries - 1))
            return
        source = max(sources, key=lambda h: (h.app.get_height(), -h.idx))
        top = source.app.get_height()
        for d in source.app.log[own:top]:
            try:
                verify_certificate(self.chain_id, d.block.height, d.block.hash, d.seals,
                                   self.sets_at(d.block.height))
            except LedgerError as exc:
                self.checker.record(SYNC, host.idx, self.now, f"sync refused height {d.block.height}: {exc}")
                return
            if not self._decide(host, d.block, d.seals, d.round, "sync"):
                return
        self.activity["syncs"] += 1
        self.feed(host, ev.SyncedTo(top, host.app.get_last_hash()))

    def _watchdog(self, host: Host) -> None:
        """The node's stall watchdog (node.sync): nothing committed for a while -> sync from a peer ahead."""
        last = max(host.started_ms, host.app.log[-1].time_ms if host.app.log else 0)
        if self.now - last >= self.node_sync_after_ms:
            before = host.app.get_height()
            self._sync(host, before + 1, 0)
            if host.app.get_height() > before:
                self.watchdog_syncs += 1
        self.queue.push(self.now + self.node_sync_after_ms // 4, "watchdog", (host.idx, host.epoch))

    # ---- the loop -----------------------------------------------------------------------------------------

    def step(self) -> bool:
        """Process the earliest item; False when the queue is empty."""
        if not self.queue:
            return False
        time_ms, _seq, kind, payload = self.queue.pop()
        self.now = max(self.now, time_ms)
        self.steps += 1
        if kind == "deliver":
            self._deliver(*payload)
        elif kind in ("timer", "app"):
            idx, epoch, event = payload
            host = self.hosts[idx]
            if host.up and host.epoch == epoch:
                self.feed(host, event)
        elif kind == "sync":
            idx, epoch, height, retries = payload
            host = self.hosts[idx]
            if host.up and host.epoch == epoch:
                self._sync(host, height, retries)
        elif kind == "watchdog":
            idx, epoch = payload
            host = self.hosts[idx]
            if host.up and host.epoch == epoch:
                self._watchdog(host)
        elif kind == "crash":
            idx, restart_after = payload
            self.crash_host(self.hosts[idx], restart_after)
        elif kind == "restart":
            host = self.hosts[payload[0]]
            if not host.up:
                self.start_host(host)
        elif kind == "call":
            payload[0](self)
        else:
            raise ValueError(f"unknown queue item kind {kind!r}")
        return True

    def run(self, done: Callable[["Simulation"], bool], until_ms: int, max_steps: int) -> str:
        """Step until ``done(sim)``, the virtual-time bound or the step bound; return which one stopped it."""
        while self.steps < max_steps:
            if done(self):
                return "done"
            if not self.queue:
                return "idle"
            if self.queue._heap[0][0] > until_ms:
                return "time"
            self.step()
        return "steps"

    def schedule(self, time_ms: int, fn: Callable[["Simulation"], None]) -> None:
        """Run ``fn(sim)`` at virtual ``time_ms`` (partitions, heals, injections, link changes)."""
        self.queue.push(time_ms, "call", (fn,))
