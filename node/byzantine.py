"""A byzantine validator for fault tests: ``CARECOIN_TEST_BYZANTINE`` wraps the node's consensus send path.

Test builds only. ``read_mode`` refuses (``ByzantineRefused``: the node does not start) when
``CARECOIN_TEST_BYZANTINE`` is set without ``CARECOIN_TEST_MODE=1``, so a node is never silently byzantine
in production. When the mode is on, ``install`` replaces the consensus driver's ``net`` port (its
``broadcast``/``send``) with a ``ByzantineNet`` around the real one; when it is off nothing is installed and
the honest path is untouched (no per-message cost).

The attacker signs with its own node key and bypasses its own safety rules on purpose. Behaviours (a comma
list, any subset):

- ``equivocate``: as proposer of (h, r), build a second valid block on the same parent (no txs, timestamp +1),
  sign a PROPOSAL for it and send the honest proposal to one group of peers and the twin to the other, with
  PREPARE and COMMIT for the twin sent at once to the twin's group; its own later PREPARE/COMMIT for the
  honest block go to the first group only. As a voter it sends its honest vote to one group and a signed
  vote for another hash to the rest. Groups are re-drawn per (h, r) and alternate 1/2 and 2/1 of 3 peers.
- ``corrupt_body``: the first time it sends a proposal whose block has txs, one peer first gets a copy with
  one bit of one tx signature flipped (same header, same proposal signature), then the honest copy.
- ``replay``: every ``REPLAY_PERIOD_S`` it re-sends up to ``REPLAY_BATCH`` of its own earlier messages
  (earlier heights, or earlier rounds of this height) to every peer.
- ``flood_future``: every ``FLOOD_PERIOD_S`` it signs ``FLOOD_VOTES`` PREPARE/COMMIT/ROUND-CHANGE messages
  for heights h+1..h+``FLOOD_HEIGHTS`` (beyond the replicas' buffer window too), far rounds of this height
  and two far heights, plus one PROPOSAL of about ``FLOOD_PROPOSAL_BYTES`` for a future height (whose
  proposer it mostly is not).

Misbehaviour is driven by the node's own sends (the driver re-sends a stuck height's votes every second), so
it needs no task of its own and its rate is bounded by the periods above.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import OrderedDict, deque
from typing import Any, Callable, Mapping, Sequence

from consensus.errors import ConsensusError
from consensus.messages import (
    NO_ROUND, Commit, Message, Prepare, Proposal, sign_commit, sign_prepare, sign_proposal, sign_round_change,
)
from consensus.wire import decode_message, encode_message
from ledger import chain
from ledger.block import Block, Header
from ledger.errors import LedgerError
from ledger.hashing import H
from ledger.keys import KeyPair
from node.errors import NodeError

log = logging.getLogger("carecoin.byzantine")

BYZANTINE_ENV = "CARECOIN_TEST_BYZANTINE"
TEST_MODE_ENV = "CARECOIN_TEST_MODE"
BEHAVIOURS = ("equivocate", "corrupt_body", "replay", "flood_future")
CHANNEL_CONSENSUS = "consensus"

REPLAY_PERIOD_S = 0.5
REPLAY_BATCH = 8
REPLAY_HISTORY = 256
FLOOD_PERIOD_S = 0.5
FLOOD_VOTES = 24
FLOOD_HEIGHTS = 12
FLOOD_FAR_HEIGHTS = (1_000, 1_000_000)
FLOOD_PROPOSAL_BYTES = 256 * 1024
FLOOD_TX_BYTES = 1024
MAX_REMEMBERED_ROUNDS = 64
TWIN_TAG = "carecoin/test/byzantine-twin"


class ByzantineRefused(NodeError):
    """``CARECOIN_TEST_BYZANTINE`` without ``CARECOIN_TEST_MODE=1``, or an unknown behaviour: no start."""

    code = "byzantine_refused"
    http_status = 500


def read_mode(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The byzantine behaviours asked for (empty: an honest node); raise ``ByzantineRefused`` when not allowed."""
    env = os.environ if environ is None else environ
    text = env.get(BYZANTINE_ENV, "")
    if not text.strip():
        return frozenset()
    if env.get(TEST_MODE_ENV, "") != "1":
        raise ByzantineRefused(f"{BYZANTINE_ENV}={text!r} is set but {TEST_MODE_ENV}=1 is not: refusing to run "
                               f"a byzantine validator outside test mode (unset {BYZANTINE_ENV})")
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(BEHAVIOURS))
    if unknown:
        raise ByzantineRefused(f"{BYZANTINE_ENV} names unknown behaviour(s) {', '.join(unknown)}; expected a "
                               f"comma list of {', '.join(BEHAVIOURS)}")
    return frozenset(names)


def flip_signature_bit(raw_tx: bytes) -> bytes:
    """The envelope with one bit of its last signature flipped (it is the envelope's last 64 bytes)."""
    return raw_tx[:-1] + bytes([raw_tx[-1] ^ 0x01])


def compute_groups(peers: Sequence[bytes], height: int, round_: int) -> tuple[list[bytes], list[bytes]]:
    """Split ``peers`` in two non-empty groups, re-drawn per (height, round); sizes alternate with height."""
    order = list(peers)
    random.Random(f"{TWIN_TAG}/{height}/{round_}").shuffle(order)
    if len(order) < 2:
        return order, []
    cut = len(order) // 2 if height % 2 else (len(order) + 1) // 2
    return order[:cut], order[cut:]


class ByzantineNet:
    """The driver's net port with the chosen misbehaviours around the real one (see the module docstring)."""

    def __init__(self, inner: Any, *, key: KeyPair, chain_id: str, validators: Sequence[bytes],
                 behaviours: frozenset[str], build_twin: Callable[[Block], Block | None],
                 position: Callable[[], tuple[int, int]], clock: Callable[[], float] = time.monotonic,
                 seed: int | str | None = None) -> None:
        self.inner, self.key, self.chain_id = inner, key, chain_id
        self.me = key.public_key
        self.validators = tuple(validators)
        self.peers = [v for v in self.validators if v != self.me]
        self.behaviours = behaviours
        self.build_twin, self.position, self.clock = build_twin, position, clock
        self.rng = random.Random(seed if seed is not None else f"{TWIN_TAG}/{self.me.hex()}")
        self._twins: OrderedDict[tuple[int, int], tuple[bytes, list[bytes]]] = OrderedDict()  # -> (twin hash, raws)
        self._corrupted: set[tuple[int, int]] = set()
        self._history: deque[tuple[int, int, bytes]] = deque(maxlen=REPLAY_HISTORY)
        self._next_replay = 0.0
        self._next_flood = 0.0
        self.sent: dict[str, int] = {"twin_proposals": 0, "twin_votes": 0, "split_votes": 0, "corrupt_copies": 0,
                                     "replayed": 0, "flooded": 0}

    # ---- the port ----------------------------------------------------------------------------------

    async def broadcast(self, channel: str, payload: bytes) -> Any:
        if channel != CHANNEL_CONSENSUS:
            return await self.inner.broadcast(channel, payload)
        try:
            msg = decode_message(payload)
        except ConsensusError:
            return await self.inner.broadcast(channel, payload)
        handled = False
        if isinstance(msg, Proposal) and msg.signer == self.me:
            handled = await self._send_proposal(msg, payload)
        elif isinstance(msg, (Prepare, Commit)) and "equivocate" in self.behaviours:
            handled = await self._send_split_vote(msg, payload)
        if not handled:
            await self.inner.broadcast(channel, payload)
        self._remember(msg, payload)
        await self._misbehave()
        return None

    async def send(self, peer: bytes, channel: str, payload: bytes) -> Any:
        result = await self.inner.send(peer, channel, payload)
        if channel == CHANNEL_CONSENSUS:
            await self._misbehave()
        return result

    # ---- equivocation and corrupt copies -----------------------------------------------------------

    async def _send_proposal(self, prop: Proposal, raw: bytes) -> bool:
        """Send our proposal the byzantine way; True when every peer was served here."""
        plan: dict[bytes, list[bytes]] = {p: [raw] for p in self.peers}
        if "equivocate" in self.behaviours:
            twin = self._get_twin(prop)
            if twin is not None:
                first, second = compute_groups(self.peers, prop.height, prop.round)
                for p in second:
                    plan[p] = list(twin[1])
        if "corrupt_body" in self.behaviours and (prop.height, prop.round) not in self._corrupted:
            self._corrupted.add((prop.height, prop.round))
            target = self.peers[prop.height % len(self.peers)] if self.peers else None
            if target is not None:
                original = decode_message(plan[target][0])
                if isinstance(original, Proposal) and original.block.txs:
                    plan[target].insert(0, encode_message(self._corrupt_copy(original)))
                    self.sent["corrupt_copies"] += 1
        if all(raws == [raw] for raws in plan.values()):
            return False
        for peer, raws in plan.items():
            for one in raws:
                await self.inner.send(peer, CHANNEL_CONSENSUS, one)
        return True

    def _get_twin(self, prop: Proposal) -> tuple[bytes, list[bytes]] | None:
        """(twin block hash, [twin PROPOSAL, PREPARE, COMMIT] encoded) for our proposal's (h, r); cached."""
        slot = (prop.height, prop.round)
        if slot in self._twins:
            return self._twins[slot]
        try:
            block = self.build_twin(prop.block)
        except (LedgerError, NodeError) as exc:
            log.info("no twin block for height %d round %d: %s", prop.height, prop.round, exc)
            block = None
        if block is None or block.hash == prop.block.hash:
            return None
        twin = sign_proposal(self.key, self.chain_id, prop.height, prop.round, block, prop.round_changes,
                             prop.prepares)
        raws = [encode_message(twin),
                encode_message(sign_prepare(self.key, self.chain_id, prop.height, prop.round, block.hash)),
                encode_message(sign_commit(self.key, self.chain_id, prop.height, prop.round, block.hash))]
        self._twins[slot] = (block.hash, raws)
        while len(self._twins) > MAX_REMEMBERED_ROUNDS:
            self._twins.popitem(last=False)
        self.sent["twin_proposals"] += 1
        self.sent["twin_votes"] += 2
        log.warning("equivocating at height %d round %d: %s and %s", prop.height, prop.round,
                    prop.block.hash.hex()[:12], block.hash.hex()[:12])
        return self._twins[slot]

    def _corrupt_copy(self, prop: Proposal) -> Proposal:
        """The same signed proposal with one bit of one tx signature flipped (same header and hash)."""
        txs = list(prop.block.txs)
        i = prop.height % len(txs)
        txs[i] = flip_signature_bit(txs[i])
        block = Block(prop.block.header, tuple(txs))
        return Proposal(prop.height, prop.round, block, prop.round_changes, prop.prepares, prop.signer,
                        prop.signature)

    async def _send_split_vote(self, vote: Prepare | Commit, raw: bytes) -> bool:
        """Honest vote to one group; the other group gets our twin's vote (sent already) or one for another hash."""
        first, second = compute_groups(self.peers, vote.height, vote.round)
        if not second:
            return False
        twin = self._twins.get((vote.height, vote.round))
        for p in first:
            await self.inner.send(p, CHANNEL_CONSENSUS, raw)
        if twin is not None and twin[0] != vote.block_hash:
            return True  # the twin's group had our twin votes with the twin proposal
        other = H(TWIN_TAG, vote.block_hash)
        sign = sign_prepare if isinstance(vote, Prepare) else sign_commit
        conflicting = encode_message(sign(self.key, self.chain_id, vote.height, vote.round, other))
        for p in second:
            await self.inner.send(p, CHANNEL_CONSENSUS, conflicting)
        self.sent["split_votes"] += 1
        return True

    # ---- replay and flood ------------------------------------------------------------------------

    def _remember(self, msg: Message, raw: bytes) -> None:
        self._history.append((msg.height, msg.round, raw))
        for slot in [s for s in self._corrupted if s[0] < msg.height - MAX_REMEMBERED_ROUNDS]:
            self._corrupted.discard(slot)

    async def _misbehave(self) -> None:
        now = self.clock()
        if "replay" in self.behaviours and now >= self._next_replay:
            self._next_replay = now + REPLAY_PERIOD_S
            await self._replay()
        if "flood_future" in self.behaviours and now >= self._next_flood:
            self._next_flood = now + FLOOD_PERIOD_S
            await self._flood()

    async def _replay(self) -> None:
        height, round_ = self.position()
        old = [raw for h, r, raw in self._history if h < height or (h == height and r < round_)]
        for raw in self.rng.sample(old, min(REPLAY_BATCH, len(old))):
            await self.inner.broadcast(CHANNEL_CONSENSUS, raw)
            self.sent["replayed"] += 1

    async def _flood(self) -> None:
        for raw in self.make_flood(*self.position()):
            await self.inner.broadcast(CHANNEL_CONSENSUS, raw)
            self.sent["flooded"] += 1

    def make_flood(self, height: int, round_: int) -> list[bytes]:
        """One period's flood: signed votes for future heights and rounds, and one big future proposal."""
        rng, key, chain_id = self.rng, self.key, self.chain_id
        out = []
        for i in range(FLOOD_VOTES):
            digest = rng.randbytes(32)
            pick = i % 4
            if pick == 0:
                msg = sign_prepare(key, chain_id, height + rng.randint(1, FLOOD_HEIGHTS), rng.randint(0, 3), digest)
            elif pick == 1:
                msg = sign_commit(key, chain_id, height + rng.randint(1, FLOOD_HEIGHTS), rng.randint(0, 3), digest)
            elif pick == 2:
                msg = sign_round_change(key, chain_id, height, round_ + rng.randint(1, 50), NO_ROUND, None, ())
            else:
                far = height + FLOOD_FAR_HEIGHTS[i // 4 % len(FLOOD_FAR_HEIGHTS)]
                msg = sign_prepare(key, chain_id, far, 0, digest)
            out.append(encode_message(msg))
        future = height + rng.randint(1, FLOOD_HEIGHTS)
        txs = tuple(rng.randbytes(FLOOD_TX_BYTES) for _ in range(FLOOD_PROPOSAL_BYTES // FLOOD_TX_BYTES))
        header = Header(chain_id, future, rng.randbytes(32), 0, self.me, len(txs), rng.randbytes(32),
                        rng.randbytes(32), rng.randbytes(32))
        out.append(encode_message(sign_proposal(key, chain_id, future, 0, Block(header, txs))))
        return out


def build_twin_block(store: Any, validator_set_hash: bytes, key: KeyPair, chain_id: str, block: Block) -> Block | None:
    """A second valid block for ``block``'s slot: same parent, no txs, timestamp + 1 (None off the head)."""
    head = store.head()
    if head is None or head.height + 1 != block.height or head.block_hash != block.header.prev_hash:
        return None
    parent = store.get_header(head.height)
    execution, _ = chain.build_block(store, store, parent, [], block.header.timestamp_ms + 1, key.public_key,
                                     validator_set_hash, chain_id=chain_id)
    return execution.block


def install(node: Any, behaviours: frozenset[str], environ: Mapping[str, str] | None = None) -> ByzantineNet:
    """Wrap ``node``'s consensus driver's net port (``node.service.NodeService``); test mode only."""
    env = os.environ if environ is None else environ
    if env.get(TEST_MODE_ENV, "") != "1":
        raise ByzantineRefused(f"a byzantine validator needs {TEST_MODE_ENV}=1; refusing to install one")
    driver = node.consensus.driver
    replica = node.consensus.replica
    net = ByzantineNet(
        driver.net, key=node.key, chain_id=node.chain_id, validators=node.genesis.validator_keys,
        behaviours=frozenset(behaviours),
        build_twin=lambda block: build_twin_block(node.store, node.genesis.validator_set_hash, node.key,
                                                  node.chain_id, block),
        position=lambda: (replica.height, replica.round))
    driver.net = net
    log.warning("TEST MODE: this validator is byzantine (%s)", ", ".join(sorted(behaviours)))
    return net
