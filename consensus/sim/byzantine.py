"""Byzantine behaviours for the simulator: equivocators, silent validators, and an outside injector.

Theory of operation: a byzantine host runs the honest core (so it knows the height, round and what to
sign) and a behaviour object rewrites what leaves it. ``Equivocator`` sends a second, conflicting
PROPOSAL for each of its proposer slots to a random part of its peers, and conflicting PREPARE/COMMIT
votes (with valid signatures and seals) to others — different peers see different signed messages.
``Silent`` sends nothing. ``BodyCorrupter`` keeps every signature honest but alters block bodies under
the signed header: a copy with one flipped signature bit to some peers ("corrupt_copy"), or a different
body to each peer ("split_body"). Twins need no behaviour: two hosts share one key and the scenario splits which
honest peers each twin can reach. The ``Injector`` is the outside adversary: it delivers forged signatures
(honest signers, garbage signatures or seals), far-future rounds and heights (signed by a byzantine key
when the plan has one, else by an outsider), and oversized frames that must be refused by
``consensus.wire.decode_message`` before they reach any replica.
"""

from __future__ import annotations

import random

from consensus.events import MessageReceived
from consensus.messages import (NO_ROUND, Commit, Message, Prepare, Proposal, RoundChange, sign_commit,
                                sign_prepare, sign_proposal, sign_round_change)
from consensus.sim.app import corrupt_body
from consensus.sim.invariants import WIRE
from ledger.block import Block, Header
from ledger.keys import KeyPair

OVERSIZE_TX_BYTES = 64 * 1024


class Silent:
    """A validator that receives everything and sends nothing."""

    def get_deliveries(self, sim, host, msg: Message, targets: list[int]) -> list[tuple[int, Message]]:
        """Drop every outgoing message."""
        return []


class Equivocator:
    """Sends conflicting signed proposals and votes to different peers (see the module docstring)."""

    def __init__(self, vote_p: float = 0.5) -> None:
        self.vote_p = vote_p
        self.alt_hash: dict[tuple[int, int], bytes] = {}
        self.sent = 0

    def get_deliveries(self, sim, host, msg: Message, targets: list[int]) -> list[tuple[int, Message]]:
        """Return (target, message) pairs: the honest message for some peers, a conflicting one for others."""
        rng: random.Random = sim.rng
        key: KeyPair = host.key
        chain = sim.chain_id
        if isinstance(msg, Proposal):
            alt_block = host.app.compute_block(msg.height, key.public_key, sim.now,
                                               salt=b"equivocate" + msg.round.to_bytes(4, "big"))
            if alt_block.hash == msg.block.hash:
                return [(t, msg) for t in targets]
            alt = sign_proposal(key, chain, msg.height, msg.round, alt_block, msg.round_changes, msg.prepares)
            self.alt_hash[(msg.height, msg.round)] = alt_block.hash
            self.sent += 1
            return [(t, alt if rng.random() < 0.5 else msg) for t in targets]
        if isinstance(msg, (Prepare, Commit)):
            alt_h = self.alt_hash.get((msg.height, msg.round)) or rng.randbytes(32)
            if isinstance(msg, Prepare):
                alt = sign_prepare(key, chain, msg.height, msg.round, alt_h)
            else:
                alt = sign_commit(key, chain, msg.height, msg.round, alt_h)
            self.sent += 1
            return [(t, alt if rng.random() < self.vote_p else msg) for t in targets]
        return [(t, msg) for t in targets]


class BodyCorrupter:
    """Sends altered bodies under its honestly signed headers (see the module docstring).

    For each of its PROPOSALs: "corrupt_copy" gives a random non-empty part of the peers one copy with a
    flipped signature bit and the others the honest block; "split_body" gives each peer its own body (a
    different flipped bit each; the honest block to at most one peer). At a height where it did so it also
    withholds its COMMITs, so the honest validators that saw a bad copy are needed for the quorum and the
    block comes back, prepared, in a later round: the stall of "one byzantine validator stalls a height
    forever". Its ROUND-CHANGEs carry a corrupted copy of their prepared block.
    """

    def __init__(self, split: bool) -> None:
        self.split = split
        self.corrupted_heights: set[int] = set()
        self.sent = 0

    def get_deliveries(self, sim, host, msg: Message, targets: list[int]) -> list[tuple[int, Message]]:
        """Return (target, message) pairs with altered bodies for some targets."""
        rng: random.Random = sim.rng
        if isinstance(msg, Proposal) and msg.block.txs and targets:
            self.corrupted_heights.add(msg.height)
            if self.split:
                honest = rng.choice(targets + [-1])
                copies = [(t, msg if t == honest else self._with_body(msg, corrupt_body(msg.block, 8 * k + 1)))
                          for k, t in enumerate(targets)]
            else:
                bad = set(rng.sample(targets, rng.randint(1, len(targets))))
                alt = self._with_body(msg, corrupt_body(msg.block, rng.randrange(1024)))
                copies = [(t, alt if t in bad else msg) for t in targets]
            self.sent += sum(1 for _, m in copies if m is not msg)
            return copies
        if isinstance(msg, Commit) and msg.height in self.corrupted_heights:
            return []
        if isinstance(msg, RoundChange) and msg.prepared_block is not None and msg.prepared_block.txs:
            self.sent += 1
            alt = RoundChange(msg.height, msg.round, msg.prepared_round, corrupt_body(msg.prepared_block),
                              msg.prepares, msg.signer, msg.signature)
            return [(t, alt) for t in targets]
        return [(t, msg) for t in targets]

    @staticmethod
    def _with_body(msg: Proposal, block: Block) -> Proposal:
        return Proposal(msg.height, msg.round, block, msg.round_changes, msg.prepares, msg.signer, msg.signature)


class Injector:
    """The outside adversary: forged, far-future and oversized messages at scheduled times."""

    def __init__(self, kinds: tuple[str, ...], byzantine_key: KeyPair | None, outsider: KeyPair,
                 max_wire_bytes: int | None) -> None:
        self.kinds = kinds
        self.byzantine_key = byzantine_key
        self.outsider = outsider
        self.max_wire_bytes = max_wire_bytes
        self.injected = 0
        self.oversize_refused = 0

    def process_injection(self, sim) -> None:
        """Inject one burst of one randomly chosen kind at a random honest host."""
        rng: random.Random = sim.rng
        honest = [h for h in sim.hosts if h.honest and h.up]
        if not honest or not self.kinds:
            return
        target = rng.choice(honest)
        height, round_ = target.replica.height, target.replica.round
        kind = rng.choice(self.kinds)
        if kind == "forge":
            msgs = self.compute_forged(sim, rng, height, round_)
        elif kind == "future":
            msgs = self.compute_far_future(sim, rng, height, round_)
        elif kind == "oversize":
            self.process_oversize(sim, target, height, round_)
            return
        else:
            raise ValueError(f"unknown injection kind {kind!r}")
        for m in msgs:
            self.injected += 1
            sim.queue.push(sim.now + rng.randint(0, 20), "deliver", (-1, target.idx, m))

    def compute_forged(self, sim, rng: random.Random, height: int, round_: int) -> list[Message]:
        """Messages claiming honest signers with garbage signatures, and COMMITs with garbage seals."""
        honest_keys = [h.key.public_key for h in sim.hosts if h.honest]
        victim = rng.choice(honest_keys)
        bogus = rng.randbytes(32)
        sig = rng.randbytes(64)
        block = Block(Header(sim.chain_id, height, rng.randbytes(32), sim.now + 1, victim, 0, rng.randbytes(32),
                             rng.randbytes(32), rng.randbytes(32)), ())
        out: list[Message] = [
            Prepare(height, round_, bogus, victim, sig),
            Commit(height, round_, bogus, rng.randbytes(64), victim, sig),
            Proposal(height, round_, block, (), (), victim, sig),
            RoundChange(height, round_ + 1, NO_ROUND, None, (), victim, sig),
        ]
        if self.byzantine_key is not None:  # valid message signature, seal over another block
            k = self.byzantine_key
            good = sign_commit(k, sim.chain_id, height, round_, bogus)
            other = sign_commit(k, sim.chain_id, height, round_, rng.randbytes(32))
            out.append(Commit(height, round_, bogus, other.seal, k.public_key, good.signature))
        return out

    def compute_far_future(self, sim, rng: random.Random, height: int, round_: int) -> list[Message]:
        """A flood of ROUND-CHANGEs for far-future rounds and PREPAREs for far-future heights."""
        key = self.byzantine_key or self.outsider
        cap = sim.config.round_cap
        out: list[Message] = []
        for _ in range(rng.randint(20, 120)):
            r = rng.choice((rng.randint(round_ + 2, cap), rng.randint(cap + 1, cap * 1000), 2**40))
            h = height if rng.random() < 0.7 else height + rng.randint(1, 50)
            if rng.random() < 0.6:
                out.append(sign_round_change(key, sim.chain_id, h, r, NO_ROUND, None, ()))
            else:
                out.append(sign_prepare(key, sim.chain_id, h, rng.randint(0, 3), rng.randbytes(32)))
        return out

    def process_oversize(self, sim, target, height: int, round_: int) -> None:
        """Encode a too-large PROPOSAL with the wire codec; decoding it must raise ConsensusError."""
        from consensus import wire
        from consensus.errors import ConsensusError
        limit = self.max_wire_bytes or wire.MAX_MESSAGE_BYTES
        count = limit // OVERSIZE_TX_BYTES + 2
        txs = tuple(bytes([i % 256]) * OVERSIZE_TX_BYTES for i in range(count))
        key = self.byzantine_key or self.outsider
        block = Block(Header(sim.chain_id, height, bytes(32), sim.now + 1, key.public_key, len(txs), bytes(32),
                             bytes(32), bytes(32)), txs)
        msg = sign_proposal(key, sim.chain_id, height, round_, block)
        try:
            raw = wire.encode_message(msg)
        except ConsensusError:
            self.oversize_refused += 1  # refusing to even encode it is fine too
            return
        try:
            decoded = wire.decode_message(raw, max_bytes=limit)
        except ConsensusError:
            self.oversize_refused += 1
            return
        sim.checker.record(WIRE, target.idx, sim.now, f"oversized frame of {len(raw)} bytes (limit {limit}) "
                           "was decoded instead of refused")
        sim.feed(target, MessageReceived(decoded))
