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
(commit quorum → Decide). Every vote passes through ``_sign_*`` which refuses (``ConsensusSafetyError``)
to sign a PREPARE/COMMIT that conflicts with one already signed for the same (height, round), and every
vote is preceded by a ``Persist`` of the record that commits the replica to it.

Input from peers is never trusted and never raises: bad signatures, non-members, wrong proposer, stale or
far-future messages are dropped and counted in ``fault_counts``. Messages for later heights (within
``max_future_heights``) and later rounds are held in per-signer bounded buffers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from consensus import rules
from consensus.errors import ConsensusSafetyError, ReplicaMisuse
from consensus.events import (TIMER_PROPOSE, TIMER_ROUND, Action, BlockProposalReady, BlockValidated,
                              Broadcast, Decide, Event, MessageReceived, Persist, ReportEvidence, RequestBlock,
                              RequestSync, Restarted, StartTimer, SyncedTo, TimerExpired, ValidateBlock,
                              WalRecord)
from consensus.messages import (NO_ROUND, Commit, Message, Prepare, Proposal, RoundChange, sign_commit,
                                sign_prepare, sign_proposal, sign_round_change, verify_message)
from ledger.block import Block
from ledger.keys import KeyPair

_SIG_CACHE_MAX = 100_000
_EVIDENCE_MAX = 1_000


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    chain_id: str
    validators: tuple[bytes, ...]      # public keys in genesis order; proposer(h, r) = validators[(h + r) % n]
    base_timeout_ms: int = 1000        # round r timer = min(base * 2**r, max_timeout_ms)
    max_timeout_ms: int = 60_000
    block_interval_ms: int = 0         # delay of the PROPOSE timer after a height starts (round 0 starts then)
    round_cap: int = 1000              # messages for rounds above this are dropped (memory attack bound)
    max_future_heights: int = 8        # messages for heights above h + this are dropped
    max_buffered_per_signer: int = 64  # bounded per-signer buffer of future-height/round messages


def _kind(msg: Message) -> str:
    return type(msg).__name__


class Replica:
    """A validator's consensus core: events in, actions out (see the module docstring)."""

    def __init__(self, config: ReplicaConfig, key: KeyPair, height: int, prev_hash: bytes) -> None:
        if not config.validators:
            raise ReplicaMisuse("validator set is empty; expected at least one validator")
        if len(set(config.validators)) != len(config.validators):
            raise ReplicaMisuse("validator set lists a key twice; expected distinct keys")
        self.config = config
        self.key = key
        self._validators = tuple(config.validators)
        self._members = frozenset(config.validators)
        self._n = len(self._validators)
        self._q = rules.compute_quorum(self._n)
        self._f = rules.compute_max_faulty(self._n)
        self._started = False
        self._height = height
        self._prev_hash = prev_hash
        self.evidence: list[tuple[Message, Message]] = []
        self.fault_counts: Counter[str] = Counter()
        self._sig_ok: set[tuple] = set()
        self._future: dict[bytes, list[Message]] = {}      # signer -> messages for later heights
        self._peer_heights: dict[bytes, int] = {}          # signer -> highest authenticated height seen
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
        return self._prepared_round

    @property
    def prepared_block(self) -> Block | None:
        """The block this replica prepared at ``height`` (None when none)."""
        return self._prepared_block

    def proposer(self, height: int, round_: int) -> bytes:
        """The validator that proposes at (height, round)."""
        return rules.get_proposer(self._validators, height, round_)

    def buffered_count(self) -> int:
        """Messages held for later heights plus messages stored for rounds above the current one."""
        return sum(len(v) for v in self._future.values()) + sum(self._future_round_count.values())

    def handle(self, event: Event) -> list[Action]:
        """Process one event and return the actions to carry out, in order."""
        out: list[Action] = []
        if isinstance(event, Restarted):
            if self._started:
                raise ReplicaMisuse("Restarted received twice; expected it once, as the first event")
            self._started = True
            self._on_restarted(event.record, out)
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
        else:
            raise ReplicaMisuse(f"unknown event type {type(event).__name__}")
        return out

    # ---- height and round lifecycle -------------------------------------------------------------------

    def _reset_height(self, height: int, prev_hash: bytes) -> None:
        self._height = height
        self._prev_hash = prev_hash
        self._round = 0
        self._round_started = False
        self._accepted: Proposal | None = None
        self._prepared_round = NO_ROUND
        self._prepared_block: Block | None = None
        self._prepared_proof: tuple[Prepare, ...] = ()
        self._prepare_votes: dict[int, bytes] = {}
        self._commit_votes: dict[int, bytes] = {}
        self._proposals: dict[int, Proposal] = {}
        self._prepares: dict[int, dict[bytes, Prepare]] = {}
        self._commits: dict[int, dict[bytes, Commit]] = {}
        self._rcs: dict[int, dict[bytes, RoundChange]] = {}
        self._latest_rc: dict[bytes, int] = {}
        self._future_round_count: Counter[bytes] = Counter()
        self._blocks: dict[bytes, Block] = {}
        self._validity: dict[bytes, bool] = {}
        self._requested_validation: set[bytes] = set()
        self._proposed_rounds: set[int] = set()
        self._proposal_votes: dict[int, bytes] = {}
        self._pending_justification: dict[int, tuple[RoundChange, ...]] = {}
        self._evidence_keys: set[tuple] = set()

    def _start_height(self, height: int, prev_hash: bytes, out: list[Action]) -> None:
        self._reset_height(height, prev_hash)
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
            else:
                del self._future[signer]
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
        # Votes of lower rounds can never be signed again (the round never goes down): forget them.
        self._prepare_votes = {r: h for r, h in self._prepare_votes.items() if r >= round_}
        self._commit_votes = {r: h for r, h in self._commit_votes.items() if r >= round_}
        for store in (self._prepares, self._rcs):
            for r in [r for r in store if r < round_]:
                del store[r]
        for r in [r for r in self._proposals if r < round_]:
            del self._proposals[r]
        self._recount_future_rounds()
        self._start_round_timer(out)
        if send_round_change:
            rc = sign_round_change(self.key, self.config.chain_id, self._height, round_, self._prepared_round,
                                   self._prepared_block, self._prepared_proof)
            out.append(Persist(self._record()))
            out.append(Broadcast(rc))
            self._store_round_change(rc)

    def _recount_future_rounds(self) -> None:
        counts: Counter[bytes] = Counter()
        for store in (self._prepares, self._commits, self._rcs):
            for r, by_signer in store.items():
                if r > self._round:
                    counts.update(by_signer.keys())
        self._future_round_count = counts

    def _record(self) -> WalRecord:
        return WalRecord(self._height, self._round, self._prepared_round, self._prepared_block,
                         self._prepared_proof, tuple(sorted(self._prepare_votes.items())),
                         tuple(sorted(self._commit_votes.items())), tuple(sorted(self._proposal_votes.items())))

    # ---- events ---------------------------------------------------------------------------------------

    def _on_restarted(self, record: WalRecord | None, out: list[Action]) -> None:
        if record is None or record.height < self._height:
            out.append(StartTimer(self._height, 0, TIMER_PROPOSE, self.config.block_interval_ms))
            return
        if record.height > self._height:
            raise ConsensusSafetyError(f"write-ahead record is for height {record.height}, ahead of the chain "
                                       f"(height {self._height}); expected at most {self._height}")
        self._round = record.round
        self._prepared_round = record.prepared_round
        self._prepared_block = record.prepared_block
        self._prepared_proof = tuple(record.prepared_proof)
        self._prepare_votes = dict(record.prepare_votes)
        self._commit_votes = dict(record.commit_votes)
        self._proposal_votes = dict(record.proposal_votes)
        self._proposed_rounds.update(self._proposal_votes)
        if self._prepared_block is not None:
            self._blocks[self._prepared_block.hash] = self._prepared_block
            self._validity[self._prepared_block.hash] = True
        self._start_round_timer(out)
        # Re-send this round's votes: they were persisted but may not have left before the crash. Ed25519
        # is deterministic, so these are the very same messages, never conflicting ones.
        r = self._round
        if r in self._prepare_votes:
            p = sign_prepare(self.key, self.config.chain_id, self._height, r, self._prepare_votes[r])
            self._prepares.setdefault(r, {})[p.signer] = p
            out.append(Broadcast(p))
        if r in self._commit_votes:
            c = sign_commit(self.key, self.config.chain_id, self._height, r, self._commit_votes[r])
            self._commits.setdefault(r, {})[c.signer] = c
            out.append(Broadcast(c))

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
            self._enter_round(self._round + 1, out, send_round_change=True)  # R4
            self._retry_sync(out)
            self._progress(out)

    def _retry_sync(self, out: list[Action]) -> None:
        # A round timed out while some validator is known (signed message) to be at a higher height: ask
        # for the blocks again. Needed when fewer than f+1 are ahead, e.g. the one honest replica that
        # decided while the others missed its COMMIT quorum; spurious requests are cheap (the node verifies
        # certificates) and are paced by the round timer.
        ahead = [h for s, h in self._peer_heights.items() if h > self._height]
        if ahead:
            target = max(ahead) - 1
            self._sync_requested = max(self._sync_requested, target)
            out.append(RequestSync(target))

    def _on_block_ready(self, ev: BlockProposalReady, out: list[Action]) -> None:
        if ev.height != self._height or ev.round != self._round:
            return
        if self.proposer(ev.height, ev.round) != self.key.public_key or ev.round in self._proposals:
            return
        if ev.round in self._proposal_votes:
            return  # already proposed here (e.g. before a restart): never sign a second block
        justification = self._pending_justification.get(ev.round, ())
        if ev.round > 0 and not justification:
            return  # nothing justifies a fresh block in this round
        prop = self._sign_proposal(ev.round, ev.block, justification, (), out)
        out.append(Broadcast(prop))
        self._on_message(prop, out)  # our own proposal goes through R1 like any other

    def _on_validated(self, ev: BlockValidated, out: list[Action]) -> None:
        if ev.height != self._height or ev.block_hash in self._validity:
            return
        self._validity[ev.block_hash] = ev.valid
        if not ev.valid:
            self.fault_counts["invalid_block"] += 1
            self._blocks.pop(ev.block_hash, None)
        self._progress(out)

    # ---- messages -------------------------------------------------------------------------------------

    def _verify(self, msg: Message) -> bool:
        key = (msg.signer, msg.signature, msg.payload(self.config.chain_id),
               msg.seal if isinstance(msg, Commit) else b"")
        if key in self._sig_ok:
            return True
        if not verify_message(self.config.chain_id, msg):
            return False
        self._sig_ok.add(key)
        return True

    def _drop(self, reason: str) -> None:
        self.fault_counts[reason] += 1

    def _on_message(self, msg: Message, out: list[Action]) -> None:
        if not isinstance(msg, (Proposal, Prepare, Commit, RoundChange)):
            return self._drop("unknown_type")
        if msg.signer not in self._members:
            return self._drop("unknown_signer")
        if msg.height < self._height:
            return  # stale, not a fault
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
            if msg.round > self._round and not self._take_future_slot(msg.signer):
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
        buf = self._future.setdefault(msg.signer, [])
        if len(buf) + self._future_round_count[msg.signer] >= self.config.max_buffered_per_signer:
            return self._drop("buffer_full")
        if msg not in buf:
            buf.append(msg)

    def _check_sync(self, out: list[Action]) -> None:
        ahead = sorted((h for s, h in self._peer_heights.items() if h > self._height), reverse=True)
        if len(ahead) < self._f + 1:
            return
        target = ahead[self._f] - 1  # at least f+1 validators (one honest) are at or above this + 1
        if target >= self._height and target > self._sync_requested:
            self._sync_requested = target
            out.append(RequestSync(target))

    def _take_future_slot(self, signer: bytes) -> bool:
        used = self._future_round_count[signer] + len(self._future.get(signer, ()))
        if used >= self.config.max_buffered_per_signer:
            self._drop("buffer_full")
            return False
        self._future_round_count[signer] += 1
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
        if msg.round > self._round and not self._take_future_slot(msg.signer):
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
        if not self._check_duplicate(self._proposals.get(prop.round), prop, out):
            return
        self._proposals[prop.round] = prop
        h = prop.block.hash
        if h not in self._validity:
            self._blocks.setdefault(h, prop.block)
            if h not in self._requested_validation:
                self._requested_validation.add(h)
                out.append(ValidateBlock(self._height, prop.block))
        elif self._validity[h]:
            self._blocks.setdefault(h, prop.block)
        self._progress(out)

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
        prop = self._sign_proposal(r, best.prepared_block, justification, best.prepares, out)
        out.append(Broadcast(prop))
        self._on_proposal(prop, out)
        return True

    def _try_accept(self, out: list[Action]) -> bool:
        """R1: a valid, validated proposal for the current round (nothing accepted yet) or a higher one."""
        for r in sorted(self._proposals):
            if r < self._round or (r == self._round and self._accepted is not None):
                continue
            prop = self._proposals[r]
            if self._validity.get(prop.block.hash) is not True:
                continue
            voted = self._prepare_votes.get(r)
            if voted is not None and voted != prop.block.hash:
                continue  # restarted after voting for another block here: the proposer equivocated
            if r > self._round:
                self._enter_round(r, out, send_round_change=False)
            elif not self._round_started:
                self._start_round_timer(out)
            self._accepted = prop
            prepare = self._sign_prepare(r, prop.block.hash)
            out.append(Persist(self._record()))
            out.append(Broadcast(prepare))
            self._prepares.setdefault(r, {})[prepare.signer] = prepare
            return True
        return False

    def _try_commit(self, out: list[Action]) -> bool:
        """R2: Q PREPAREs for the accepted proposal of this round, no COMMIT sent yet in this round."""
        acc = self._accepted
        r = self._round
        if acc is None or acc.round != r or self._commit_votes.get(r) == acc.block.hash:
            return False
        if not rules.has_prepare_quorum(self._prepares.get(r, {}).values(), self._members, self._q,
                                        self._height, r, acc.block.hash):
            return False
        proof = tuple(p for p in self._prepares[r].values() if p.block_hash == acc.block.hash)
        order = {v: i for i, v in enumerate(self._validators)}
        self._prepared_round = r
        self._prepared_block = acc.block
        self._prepared_proof = tuple(sorted(proof, key=lambda p: order[p.signer]))[:self._q]
        commit = self._sign_commit(r, acc.block.hash)
        out.append(Persist(self._record()))
        out.append(Broadcast(commit))
        self._commits.setdefault(r, {})[commit.signer] = commit
        return True

    def _try_decide(self, out: list[Action]) -> bool:
        """R3: Q COMMITs for one block in one round, and the block is known and valid here."""
        for r in sorted(self._commits, reverse=True):
            by_hash: dict[bytes, list[Commit]] = {}
            for c in self._commits[r].values():
                by_hash.setdefault(c.block_hash, []).append(c)
            for block_hash, commits in by_hash.items():
                if len(commits) < self._q or self._validity.get(block_hash) is not True:
                    continue
                block = self._blocks.get(block_hash)
                if block is None:
                    continue
                seals = rules.select_commit_seals(commits, self._validators, block_hash, self._q)
                out.append(Decide(block, seals, r))
                self._start_height(self._height + 1, block_hash, out)
                return True
        return False

    # ---- signing guards (local safety) -----------------------------------------------------------------

    def _sign_proposal(self, round_: int, block: Block, justification: tuple, prepares: tuple,
                       out: list[Action]) -> Proposal:
        """Sign a PROPOSAL after persisting it: never two different proposals for one (height, round)."""
        voted = self._proposal_votes.get(round_)
        if voted is not None and voted != block.hash:
            raise ConsensusSafetyError(
                f"about to propose block {block.hash.hex()[:16]} at height {self._height} round {round_}, "
                f"but block {voted.hex()[:16]} was proposed there already")
        self._proposal_votes[round_] = block.hash
        out.append(Persist(self._record()))
        return sign_proposal(self.key, self.config.chain_id, self._height, round_, block, justification, prepares)

    def _sign_prepare(self, round_: int, block_hash: bytes) -> Prepare:
        if round_ < self._round:
            raise ConsensusSafetyError(f"PREPARE for round {round_} is below the current round {self._round}")
        voted = self._prepare_votes.get(round_)
        if voted is not None and voted != block_hash:
            raise ConsensusSafetyError(
                f"PREPARE for {block_hash.hex()[:16]} at height {self._height} round {round_}; "
                f"already prepared {voted.hex()[:16]} there")
        self._prepare_votes[round_] = block_hash
        return sign_prepare(self.key, self.config.chain_id, self._height, round_, block_hash)

    def _sign_commit(self, round_: int, block_hash: bytes) -> Commit:
        if round_ < self._round:
            raise ConsensusSafetyError(f"COMMIT for round {round_} is below the current round {self._round}")
        voted = self._commit_votes.get(round_)
        if voted is not None and voted != block_hash:
            raise ConsensusSafetyError(
                f"COMMIT for {block_hash.hex()[:16]} at height {self._height} round {round_}; "
                f"already committed {voted.hex()[:16]} there")
        self._commit_votes[round_] = block_hash
        return sign_commit(self.key, self.config.chain_id, self._height, round_, block_hash)
