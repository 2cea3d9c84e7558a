"""One validator's consensus state machine (sans-IO round-based PBFT, QBFT.md).

Theory of operation
-------------------
``Replica.handle(event) -> list[Action]`` is the only entry point; the caller feeds events one at a time
from a single loop and carries out the actions in order (a ``Persist`` must be durable before the actions
after it). The replica does no I/O, reads no clock and draws no randomness: time arrives as
``TimerExpired``, blocks are built and executed by the caller (``RequestBlock`` / ``ValidateBlock``).

Per height it keeps: ``round``, the proposal accepted in this round, ``prepared_round/block/proof`` (kept
across rounds), and the PREPAREs, COMMITs and ROUND-CHANGEs received (its own included, one per signer per
round). After every event ``_progress`` re-evaluates the rules of ``consensus.rules`` until none fires:
R5 (f+1 jump), R6 (new proposer), R1 (accept a validated proposal), R2 (prepare quorum → COMMIT) and R3
(commit quorum → Decide). Every vote (PROPOSAL, PREPARE, COMMIT, ROUND-CHANGE) is signed by
``consensus.safety.SafetyRules``, which owns the write-ahead record, refuses (``ConsensusSafetyError``) to
sign anything conflicting with it, and hands back the ``Persist`` and the ``Broadcast`` together.

Block bodies are kept apart from headers (``consensus.bodies``): validity is judged per (block hash, body
digest), so a corrupted copy of a proposal is dropped and counted (``fault_counts["invalid_block"]``) while
the honest copy of the same header, arriving later, is still validated and voted for.

Validator sets are per height (``consensus.schedule``): the node feeds ``ValidatorSetScheduled(H + 2, V)``
after committing block H and ``Restarted(record, (V(h), V(h + 1)))`` at start; every count, quorum, proposer and
certificate check of a message uses V(message height). A replica whose key is not in V(h) follows height h (it
validates proposals and decides from COMMITs or sync) and signs nothing; ``SafetyRules`` refuses it too.

Input from peers is never trusted and never raises: bad signatures, non-members, wrong proposer, stale or
far-future messages are dropped and counted in ``fault_counts``. Messages for later heights (within
``max_future_heights``; a PROPOSAL only from that slot's proposer) and later rounds are held in per-signer
buffers bounded in count and in bytes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from consensus import rules
from consensus.bodies import BlockBodies, compute_body_digest, compute_message_bytes
from consensus.errors import ConsensusSafetyError, ReplicaMisuse
from consensus.events import (TIMER_PROPOSE, TIMER_ROUND, Action, BlockProposalReady, BlockValidated, Decide,
                              Event, MessageReceived, ReportEvidence, RequestBlock, RequestSync, Restarted,
                              StartTimer, SyncedTo, TimerExpired, ValidateBlock, ValidatorSetScheduled)
from consensus.messages import Commit, Message, Prepare, Proposal, RoundChange, verify_message
from consensus.safety import COMMIT_VOTE, PREPARE_VOTE, PROPOSAL_VOTE, SafetyRules
from consensus.schedule import ValidatorSchedule, ValidatorSet
from ledger.block import Block
from ledger.keys import KeyPair

_SIG_CACHE_MAX = 100_000
_EVIDENCE_MAX = 1_000


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    chain_id: str
    validators: tuple[bytes, ...]      # the genesis set, in genesis order; later sets: ValidatorSetScheduled
    base_timeout_ms: int = 1000        # round r timer = min(base * 2**r, max_timeout_ms)
    max_timeout_ms: int = 60_000
    block_interval_ms: int = 0         # delay of the PROPOSE timer after a height starts (round 0 starts then)
    round_cap: int = 1000              # messages for rounds above this are dropped (memory attack bound)
    max_future_heights: int = 8        # messages for heights above h + this are dropped
    max_buffered_per_signer: int = 64  # bounded per-signer buffer of future-height/round messages
    max_buffered_bytes_per_signer: int = 16 * 1024 * 1024  # ... and its bound in bytes (2 default frames)
    max_bodies_per_supplier: int = 2   # distinct bodies of one block hash taken from one signer per height


def _kind(msg: Message) -> str:
    return type(msg).__name__


class Replica:
    """A validator's consensus core: events in, actions out (see the module docstring)."""

    def __init__(self, config: ReplicaConfig, key: KeyPair, height: int, prev_hash: bytes) -> None:
        self.config = config
        self.key = key
        self._schedule = ValidatorSchedule(tuple(config.validators))  # raises ReplicaMisuse on a bad set
        self.safety = SafetyRules(key, config.chain_id, height)
        self._use_set(height)
        self._started = False
        self._height = height
        self._prev_hash = prev_hash
        self.evidence: list[tuple[Message, Message]] = []
        self.fault_counts: Counter[str] = Counter()
        self._sig_ok: set[tuple] = set()
        self._future: dict[bytes, list[Message]] = {}      # signer -> messages for later heights
        self._future_bytes: Counter[bytes] = Counter()     # signer -> bytes held in ``_future``
        self._peer_heights: dict[bytes, int] = {}          # signer -> highest authenticated height seen
        self._heard: dict[bytes, int] = {}                 # signer -> highest height of any message verified
        self._sync_requested = -1
        self._reset_height(height, prev_hash)

    # ---- public surface --------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        """The height being decided."""
        return self._height

    @property
    def round(self) -> int:
        """The current round at ``height``."""
        return self._round

    @property
    def prepared_round(self) -> int:
        """The round this replica prepared in at ``height`` (NO_ROUND when none)."""
        return self.safety.prepared_round

    @property
    def prepared_block(self) -> Block | None:
        """The block this replica prepared at ``height`` (None when none)."""
        return self.safety.prepared_block

    def proposer(self, height: int, round_: int) -> bytes:
        """The validator that proposes at (height, round): V(height)[(height + round) mod |V(height)|]."""
        return self._schedule.at(height).proposer(height, round_)

    def validator_set(self, height: int) -> ValidatorSet:
        """The set in force at ``height`` as this replica knows it (final up to ``height + 1``)."""
        return self._schedule.at(height)

    @property
    def is_member(self) -> bool:
        """True iff this replica's key is in the set in force at ``height`` (only then does it sign)."""
        return self._is_member

    def get_best_known_height(self) -> int:
        """The highest height at least f+1 validators (so one honest) were seen working on, or this replica's
        own height when fewer are known to be ahead (f byzantine signers cannot inflate it)."""
        ahead = sorted((h for h in self._peer_heights.values() if h > self._height), reverse=True)
        return ahead[self._f] if len(ahead) > self._f else self._height

    def get_peer_heights(self) -> dict[bytes, int]:
        """The highest height of a correctly signed message from each validator since this replica started
        (stale heights below this replica's are not looked at); a copy."""
        return dict(self._heard)

    def buffered_count(self) -> int:
        """Messages held for later heights plus messages stored for rounds above the current one."""
        return sum(len(v) for v in self._future.values()) + sum(self._future_round_count.values())

    def buffered_bytes(self, signer: bytes | None = None) -> int:
        """Bytes (upper bound) held for later heights and rounds, for one signer or for all."""
        if signer is not None:
            return self._future_bytes[signer] + self._future_round_bytes[signer]
        return sum(self._future_bytes.values()) + sum(self._future_round_bytes.values())

    def handle(self, event: Event) -> list[Action]:
        """Process one event and return the actions to carry out, in order."""
        out: list[Action] = []
        if isinstance(event, Restarted):
            if self._started:
                raise ReplicaMisuse("Restarted received twice; expected it once, as the first event")
            self._started = True
            self._on_restarted(event, out)
        elif not self._started:
            raise ReplicaMisuse(f"{type(event).__name__} before Restarted; the first event must be Restarted")
        elif isinstance(event, MessageReceived):
            self._on_message(event.message, out)
        elif isinstance(event, TimerExpired):
            self._on_timer(event, out)
        elif isinstance(event, BlockProposalReady):
            self._on_block_ready(event, out)
        elif isinstance(event, BlockValidated):
            self._on_validated(event, out)
        elif isinstance(event, SyncedTo):
            if event.height >= self._height:
                self._start_height(event.height + 1, event.block_hash, out)
        elif isinstance(event, ValidatorSetScheduled):
            self._schedule.schedule(event.effective_height, tuple(event.validators), started_through=self._height)
        else:
            raise ReplicaMisuse(f"unknown event type {type(event).__name__}")
        return out

    # ---- height and round lifecycle -------------------------------------------------------------------

    def _use_set(self, height: int) -> None:
        """Take the set in force at ``height`` for every count, quorum and proposer of this height."""
        vs = self._schedule.at(height)
        self._vs = vs
        self._validators, self._members, self._n, self._q, self._f = vs.validators, vs.members, vs.n, vs.q, vs.f
        self._is_member = self.key.public_key in vs.members
        self.safety.set_members(height, vs.members)

    def _reset_height(self, height: int, prev_hash: bytes) -> None:
        self._height = height
        self._prev_hash = prev_hash
        self._round = 0
        self._round_started = False
        self._accepted: Proposal | None = None
        self._proposals: dict[int, Proposal] = {}
        self._prepares: dict[int, dict[bytes, Prepare]] = {}
        self._commits: dict[int, dict[bytes, Commit]] = {}
        self._rcs: dict[int, dict[bytes, RoundChange]] = {}
        self._latest_rc: dict[bytes, int] = {}
        self._future_round_count: Counter[bytes] = Counter()
        self._future_round_bytes: Counter[bytes] = Counter()
        self._bodies = BlockBodies(self.config.max_bodies_per_supplier)
        self._proposed_rounds: set[int] = set()
        self._pending_justification: dict[int, tuple[RoundChange, ...]] = {}
        self._evidence_keys: set[tuple] = set()

    def _start_height(self, height: int, prev_hash: bytes, out: list[Action]) -> None:
        self._reset_height(height, prev_hash)
        self.safety.start_height(height)
        self._schedule.prune(height)
        self._use_set(height)
        out.append(StartTimer(height, 0, TIMER_PROPOSE, self.config.block_interval_ms))
        if len(self._sig_ok) > _SIG_CACHE_MAX:
            self._sig_ok.clear()
        # Replay what was buffered for this height; drop what is now in the past.
        replay: list[Message] = []
        for signer in list(self._future):
            keep = []
            for m in self._future[signer]:
                if m.height == height:
                    replay.append(m)
                elif m.height > height:
                    keep.append(m)
            if keep:
                self._future[signer] = keep
                self._future_bytes[signer] = sum(compute_message_bytes(m) for m in keep)
            else:
                del self._future[signer]
                self._future_bytes.pop(signer, None)
        for m in replay:
            if self._height != height:
                break  # a replayed message decided this height; the rest were re-buffered or are stale
            self._on_message(m, out)

    def _timeout(self, round_: int) -> int:
        return rules.compute_round_timeout(self.config.base_timeout_ms, self.config.max_timeout_ms, round_)

    def _start_round_timer(self, out: list[Action]) -> None:
        self._round_started = True
        out.append(StartTimer(self._height, self._round, TIMER_ROUND, self._timeout(self._round)))

    def _enter_round(self, round_: int, out: list[Action], *, send_round_change: bool) -> None:
        if round_ <= self._round:
            raise ConsensusSafetyError(f"asked to enter round {round_} at height {self._height}; "
                                       f"expected a round above the current round {self._round}")
        self._round = round_
        self._accepted = None
        for store in (self._prepares, self._rcs):
            for r in [r for r in store if r < round_]:
                del store[r]
        for r in [r for r in self._proposals if r < round_]:
            del self._proposals[r]
        self._recount_future_rounds()
        self._start_round_timer(out)
        if send_round_change and self._is_member:
            vote = self.safety.sign_round_change(self._height, round_)
            out.extend(vote.actions)
            self._store_round_change(vote.message)
        else:
            self.safety.enter_round(round_)  # persisted with the PREPARE that follows

    def _recount_future_rounds(self) -> None:
        counts: Counter[bytes] = Counter()
        sizes: Counter[bytes] = Counter()
        for store in (self._prepares, self._commits, self._rcs):
            for r, by_signer in store.items():
                if r > self._round:
                    counts.update(by_signer.keys())
                    for signer, m in by_signer.items():
                        sizes[signer] += compute_message_bytes(m)
        self._future_round_count = counts
        self._future_round_bytes = sizes

    # ---- events ---------------------------------------------------------------------------------------

    def _on_restarted(self, event: Restarted, out: list[Action]) -> None:
        for change in event.validator_sets:  # V(h) and V(h + 1), before anything uses them
            self._schedule.schedule(change.effective_height, tuple(change.validators),
                                    started_through=self._height - 1)
        self._use_set(self._height)
        record = event.record
        if record is None or record.height < self._height:
            out.append(StartTimer(self._height, 0, TIMER_PROPOSE, self.config.block_interval_ms))
            return
        if record.height > self._height:
            raise ConsensusSafetyError(f"write-ahead record is for height {record.height}, ahead of the chain "
                                       f"(height {self._height}); expected at most {self._height}")
        self.safety.restore(record)
        self._round = record.round
        self._proposed_rounds.update(r for r, _ in record.proposal_votes)
        if record.prepared_block is not None:
            self._bodies.trust(record.prepared_block)  # our own record: it validated before we prepared it
        self._start_round_timer(out)
        # Re-send this round's votes: they were persisted but may not have left before the crash. They are
        # answered from the record (Ed25519 is deterministic: the very same messages, never conflicting ones).
        for vote in self.safety.resend_current_round():
            out.extend(vote.actions)
            store = self._prepares if isinstance(vote.message, Prepare) else self._commits
            store.setdefault(self._round, {})[vote.message.signer] = vote.message

    def _on_timer(self, ev: TimerExpired, out: list[Action]) -> None:
        if ev.height != self._height or ev.round != self._round:
            return  # stale: a height or round already left
        if ev.kind == TIMER_PROPOSE:
            if self._round != 0 or self._round_started:
                return
            self._start_round_timer(out)
            if self.proposer(self._height, 0) == self.key.public_key and 0 not in self._proposed_rounds:
                self._proposed_rounds.add(0)
                out.append(RequestBlock(self._height, 0))
            self._progress(out)
        elif ev.kind == TIMER_ROUND:
            if not self._round_started:
                return
            if not self._is_member:
                # A follower has no vote to change rounds with: it keeps its round (R5 moves it with the
                # validators) and, like a validator, asks for blocks while anyone is known to be ahead.
                self._start_round_timer(out)
                self._retry_sync(out)
                return
            self._enter_round(self._round + 1, out, send_round_change=True)  # R4
            self._retry_sync(out)
            self._progress(out)

    def _retry_sync(self, out: list[Action]) -> None:
        # A round timed out while some validator is known (signed message) to be at a higher height: ask
        # for the blocks again. Needed when fewer than f+1 are ahead, e.g. the one honest replica that
        # decided while the others missed its COMMIT quorum; spurious requests are cheap (the node verifies
        # certificates) and are paced by the round timer. ``_sync_requested`` is not raised here: one signer's
        # claim (a byzantine one may say h + 10**6) must not mute the f+1 trigger of ``_check_sync``.
        ahead = [h for s, h in self._peer_heights.items() if h > self._height]
        if ahead:
            out.append(RequestSync(max(ahead) - 1))

    def _on_block_ready(self, ev: BlockProposalReady, out: list[Action]) -> None:
        if ev.height != self._height or ev.round != self._round:
            return
        if self.proposer(ev.height, ev.round) != self.key.public_key or ev.round in self._proposals:
            return
        if self.safety.get_vote(PROPOSAL_VOTE, ev.round) is not None:
            return  # already proposed here (e.g. before a restart): never sign a second block
        justification = self._pending_justification.get(ev.round, ())
        if ev.round > 0 and not justification:
            return  # nothing justifies a fresh block in this round
        vote = self.safety.sign_proposal(self._height, ev.round, ev.block, justification, ())
        out.extend(vote.actions)
        self._on_message(vote.message, out)  # our own proposal goes through R1 like any other

    def _on_validated(self, ev: BlockValidated, out: list[Action]) -> None:
        if ev.height != self._height:
            return
        applied, nxt = self._bodies.settle(ev.block_hash, ev.body_digest, ev.valid)
        if not applied:
            return
        if not ev.valid:
            # This copy of the body is bad; the header hash is not condemned: another copy may still come.
            self.fault_counts["invalid_block"] += 1
        if nxt is not None:
            self._request_validation(nxt, out)
        self._progress(out)

    def _request_validation(self, block: Block, out: list[Action]) -> None:
        out.append(ValidateBlock(self._height, block, compute_body_digest(block)))

    def _offer_body(self, block: Block, supplier: bytes, out: list[Action]) -> None:
        """Take a body that came with a signed message; validate it unless its hash already has a valid body."""
        outcome, to_validate = self._bodies.offer(block, supplier)
        if outcome == "bad_copy":
            self._drop("invalid_block_copy")
        elif outcome == "limit":
            self._drop("block_copies_exceeded")
        if to_validate is not None:
            self._request_validation(to_validate, out)

    # ---- messages -------------------------------------------------------------------------------------

    def _verify(self, msg: Message) -> bool:
        key = (msg.signer, msg.signature, msg.payload(self.config.chain_id),
               msg.seal if isinstance(msg, Commit) else b"")
        if key not in self._sig_ok:
            if not verify_message(self.config.chain_id, msg):
                return False
            self._sig_ok.add(key)
        if msg.height > self._heard.get(msg.signer, -1):
            self._heard[msg.signer] = msg.height
        return True

    def _drop(self, reason: str) -> None:
        self.fault_counts[reason] += 1

    def _on_message(self, msg: Message, out: list[Action]) -> None:
        if not isinstance(msg, (Proposal, Prepare, Commit, RoundChange)):
            return self._drop("unknown_type")
        if msg.height < self._height:
            return  # stale, not a fault
        # The set in force at the message's own height (tentative for h + 2 and later: checked again on replay).
        if msg.signer not in self._schedule.at(msg.height).members:
            return self._drop("unknown_signer")
        if not 0 <= msg.round <= self.config.round_cap:
            return self._drop("round_out_of_range")
        if msg.height > self._height:
            return self._on_future_height(msg, out)
        if isinstance(msg, Proposal):
            return self._on_proposal(msg, out)
        if msg.round < self._round and not isinstance(msg, Commit):
            return  # stale round; COMMITs of any round still prove a decision
        if not self._verify(msg):
            return self._drop("bad_signature")
        if isinstance(msg, Prepare):
            self._store_vote(self._prepares, msg, out)
        elif isinstance(msg, Commit):
            self._store_vote(self._commits, msg, out)
        else:
            if not rules.is_valid_round_change(msg, self._members, self._q, self._height,
                                               self.config.round_cap, self._verify):
                return self._drop("invalid_round_change")
            if not self._check_duplicate(self._rcs.get(msg.round, {}).get(msg.signer), msg, out):
                return
            if msg.round > self._round and not self._take_future_slot(msg):
                return
            self._store_round_change(msg)
        self._progress(out)

    def _on_future_height(self, msg: Message, out: list[Action]) -> None:
        if not self._verify(msg):
            return self._drop("bad_signature")
        if msg.height > self._peer_heights.get(msg.signer, -1):
            self._peer_heights[msg.signer] = msg.height
            self._check_sync(out)
        if msg.height > self._height + self.config.max_future_heights:
            return self._drop("height_too_far")
        if isinstance(msg, Proposal) and msg.signer != self.proposer(msg.height, msg.round):
            return self._drop("future_proposal_not_proposer")  # worthless: R1 would refuse it at that height
        buf = self._future.get(msg.signer, [])
        if msg in buf:
            return
        if not self._has_buffer_room(msg):
            return self._drop("buffer_full")
        self._future.setdefault(msg.signer, []).append(msg)
        self._future_bytes[msg.signer] += compute_message_bytes(msg)

    def _check_sync(self, out: list[Action]) -> None:
        ahead = sorted((h for s, h in self._peer_heights.items() if h > self._height), reverse=True)
        if len(ahead) < self._f + 1:
            return
        target = ahead[self._f] - 1  # at least f+1 validators (one honest) are at or above this + 1
        if target >= self._height and target > self._sync_requested:
            self._sync_requested = target
            out.append(RequestSync(target))

    def _has_buffer_room(self, msg: Message) -> bool:
        """True iff ``msg`` fits in its signer's future buffer: count and bytes, heights and rounds together."""
        signer = msg.signer
        count = self._future_round_count[signer] + len(self._future.get(signer, ()))
        if count >= self.config.max_buffered_per_signer:
            return False
        return self.buffered_bytes(signer) + compute_message_bytes(msg) <= self.config.max_buffered_bytes_per_signer

    def _take_future_slot(self, msg: Message) -> bool:
        if not self._has_buffer_room(msg):
            self._drop("buffer_full")
            return False
        self._future_round_count[msg.signer] += 1
        self._future_round_bytes[msg.signer] += compute_message_bytes(msg)
        return True

    def _check_duplicate(self, first: Message | None, msg: Message, out: list[Action]) -> bool:
        """True iff ``msg`` is new; a repeat is ignored, a different one by the same signer is evidence."""
        if first is None:
            return True
        chain = self.config.chain_id
        if first.payload(chain) == msg.payload(chain) and not (
                isinstance(msg, Commit) and isinstance(first, Commit) and first.seal != msg.seal):
            return False  # duplicate: idempotent
        key = (_kind(msg), msg.height, msg.round, msg.signer)
        if key not in self._evidence_keys and len(self.evidence) < _EVIDENCE_MAX:
            self._evidence_keys.add(key)
            self.evidence.append((first, msg))
            out.append(ReportEvidence(first, msg))
        self._drop("equivocation")
        return False

    def _store_vote(self, store: dict, msg: Prepare | Commit, out: list[Action]) -> None:
        by_signer = store.setdefault(msg.round, {})
        if not self._check_duplicate(by_signer.get(msg.signer), msg, out):
            return
        if msg.round > self._round and not self._take_future_slot(msg):
            return
        by_signer[msg.signer] = msg

    def _store_round_change(self, rc: RoundChange) -> None:
        self._rcs.setdefault(rc.round, {})[rc.signer] = rc
        if rc.round > self._latest_rc.get(rc.signer, -1):
            self._latest_rc[rc.signer] = rc.round

    def _on_proposal(self, prop: Proposal, out: list[Action]) -> None:
        if prop.round < self._round:
            return  # stale round
        if not rules.is_valid_proposal(prop, self._validators, self._height, self._prev_hash,
                                       self.config.round_cap, self._verify):
            return self._drop("invalid_proposal")
        first = self._proposals.get(prop.round)
        if first is not None and first.block.hash == prop.block.hash:
            # The same signed header again, maybe with another body: a copy, not an equivocation. The first
            # copy's body may have been a bad one, so this body is validated on its own merits.
            self._offer_bodies(prop, out)
            return self._progress(out)
        if not self._check_duplicate(first, prop, out):
            return
        self._proposals[prop.round] = prop
        self._offer_bodies(prop, out)
        self._progress(out)

    def _offer_bodies(self, prop: Proposal, out: list[Action]) -> None:
        """Offer the proposal's body and, for a re-proposal, the same block as its ROUND-CHANGEs carry it."""
        self._offer_body(prop.block, prop.signer, out)
        for rc in prop.round_changes:
            if rc.prepared_block is not None and rc.prepared_block.hash == prop.block.hash:
                self._offer_body(rc.prepared_block, rc.signer, out)

    # ---- the rules --------------------------------------------------------------------------------------

    def _progress(self, out: list[Action]) -> None:
        """Apply R5, R6, R1, R2, R3 until none fires (each firing moves the state strictly forward)."""
        for _ in range(4 * self.config.round_cap + 16):
            height = self._height
            if self._try_jump(out) or self._try_propose(out) or self._try_accept(out) \
                    or self._try_commit(out) or self._try_decide(out):
                if self._height != height:
                    return  # decided; the new height was started (and its buffer replayed) already
                continue
            return

    def _try_jump(self, out: list[Action]) -> bool:
        """R5: f+1 ROUND-CHANGEs above the current round → move to the smallest of them."""
        target = rules.f_plus_one_jump_round(self._latest_rc, self._members, self._round, self._f)
        if target is None:
            return False
        self._enter_round(target, out, send_round_change=True)
        return True

    def _try_propose(self, out: list[Action]) -> bool:
        """R6: Q ROUND-CHANGEs for the current round and this replica proposes it."""
        r = self._round
        if r == 0 or r in self._proposed_rounds or self.proposer(self._height, r) != self.key.public_key:
            return False
        if r in self._proposals:
            return False  # a proposal signed with our key exists already (a twin): never sign a second one
        rcs = self._rcs.get(r, {})
        if rules.count_distinct_members(rcs.values(), self._members) < self._q:
            return False
        self._proposed_rounds.add(r)
        justification, best = rules.choose_justification(rcs, self._validators, self._q)
        if best is None:
            self._pending_justification[r] = justification
            out.append(RequestBlock(self._height, r))
            return True
        # Re-propose the body that validated here when there is one: the ROUND-CHANGE's copy of the block
        # is only bound to its hash, and a byzantine sender may have altered it.
        block = self._bodies.get_valid(best.prepared_block.hash) or best.prepared_block
        vote = self.safety.sign_proposal(self._height, r, block, justification, best.prepares)
        out.extend(vote.actions)
        self._on_proposal(vote.message, out)
        return True

    def _try_accept(self, out: list[Action]) -> bool:
        """R1: a valid, validated proposal for the current round (nothing accepted yet) or a higher one."""
        if not self._is_member:
            return False  # a follower validates proposals (to decide with their blocks) but never votes
        for r in sorted(self._proposals):
            if r < self._round or (r == self._round and self._accepted is not None):
                continue
            prop = self._proposals[r]
            if self._bodies.get_valid(prop.block.hash) is None:
                continue
            voted = self.safety.get_vote(PREPARE_VOTE, r)
            if voted is not None and voted != prop.block.hash:
                continue  # restarted after voting for another block here: the proposer equivocated
            if r > self._round:
                self._enter_round(r, out, send_round_change=False)
            elif not self._round_started:
                self._start_round_timer(out)
            self._accepted = prop
            vote = self.safety.sign_prepare(self._height, r, prop.block.hash)
            out.extend(vote.actions)
            self._prepares.setdefault(r, {})[vote.message.signer] = vote.message
            return True
        return False

    def _try_commit(self, out: list[Action]) -> bool:
        """R2: Q PREPAREs for the accepted proposal of this round, no COMMIT sent yet in this round."""
        acc = self._accepted
        r = self._round
        if acc is None or acc.round != r or self.safety.get_vote(COMMIT_VOTE, r) == acc.block.hash:
            return False
        if not rules.has_prepare_quorum(self._prepares.get(r, {}).values(), self._members, self._q,
                                        self._height, r, acc.block.hash):
            return False
        proof = tuple(p for p in self._prepares[r].values() if p.block_hash == acc.block.hash)
        order = {v: i for i, v in enumerate(self._validators)}
        proof = tuple(sorted(proof, key=lambda p: order[p.signer]))[:self._q]
        block = self._bodies.get_valid(acc.block.hash)  # the body that validated, not necessarily acc's copy
        vote = self.safety.sign_commit(self._height, r, block, proof)
        out.extend(vote.actions)
        self._commits.setdefault(r, {})[vote.message.signer] = vote.message
        return True

    def _try_decide(self, out: list[Action]) -> bool:
        """R3: Q COMMITs for one block in one round, and the block is known and valid here."""
        for r in sorted(self._commits, reverse=True):
            by_hash: dict[bytes, list[Commit]] = {}
            for c in self._commits[r].values():
                by_hash.setdefault(c.block_hash, []).append(c)
            for block_hash, commits in by_hash.items():
                if len(commits) < self._q:
                    continue
                block = self._bodies.get_valid(block_hash)
                if block is None:
                    continue
                seals = rules.select_commit_seals(commits, self._validators, block_hash, self._q)
                out.append(Decide(block, seals, r))
                self._start_height(self._height + 1, block_hash, out)
                return True
        return False
