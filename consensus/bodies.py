"""Block bodies and their validity verdicts, keyed by what a verdict was computed from.

Theory of operation
-------------------
A PROPOSAL's signature covers only the block hash (the header), and a ROUND-CHANGE carries its prepared block
the same way, so one header can arrive with several bodies: the honest one, and copies a byzantine proposer
(or relay) altered, e.g. a flipped signature bit in one transaction. With wire format v2 the header binds every
envelope byte, so at most one body validates for a hash; a body that does not match its header condemns that
copy, never the hash (QBFT.md "One block hash, one body").

``BlockBodies`` keeps, for one height:

- candidate bodies per block hash, keyed by ``compute_body_digest`` (a hash over the encoded tx list);
- verdicts keyed by ``(block_hash, body_digest)``: a bad copy is remembered as bad, the hash is not;
- at most one validation in flight per block hash (the node answers ``BlockValidated`` by hash; keeping one
  in flight makes the answer unambiguous and never executes two copies of one header at once);
- at most ``max_per_supplier`` distinct bodies per (hash, supplier), the supplier being the signer of the
  message that carried the body, so a byzantine supplier cannot make this replica execute copies without end
  nor crowd out the honest supplier's body.

Once one body of a hash validated, other copies of that hash are ignored: that body is what this replica
votes on, prepares, re-proposes and commits.
"""

from __future__ import annotations

from collections import Counter

from consensus.messages import Commit, Message, Prepare, Proposal, RoundChange
from ledger import codec
from ledger.block import Block
from ledger.hashing import TAG_CONSENSUS, H

# Upper bounds on the wire size of a message's fixed parts (signatures, keys, hashes, framing).
_VOTE_BYTES = 256
_HEADER_BYTES = 512
_TX_OVERHEAD_BYTES = 5


def compute_body_digest(block: Block) -> bytes:
    """The digest of a block's body: H("carecoin/v1/consensus", P(["body", [tx, ...]])) (local; never sent)."""
    return H(TAG_CONSENSUS, codec.encode(["body", list(block.txs)]))


def compute_block_bytes(block: Block | None) -> int:
    """An upper bound on the encoded size of ``block`` (0 for None)."""
    if block is None:
        return 0
    return _HEADER_BYTES + sum(len(tx) + _TX_OVERHEAD_BYTES for tx in block.txs)


def compute_message_bytes(msg: Message) -> int:
    """An upper bound on the wire size of ``msg`` including the blocks and votes it carries."""
    if isinstance(msg, (Prepare, Commit)):
        return _VOTE_BYTES
    if isinstance(msg, RoundChange):
        return _VOTE_BYTES * (1 + len(msg.prepares)) + compute_block_bytes(msg.prepared_block)
    if isinstance(msg, Proposal):
        return (_VOTE_BYTES * (1 + len(msg.prepares)) + compute_block_bytes(msg.block)
                + sum(compute_message_bytes(rc) for rc in msg.round_changes))
    return _VOTE_BYTES


class BlockBodies:
    """Candidate bodies, validation in flight and verdicts of one height (see the module docstring)."""

    def __init__(self, max_per_supplier: int = 2) -> None:
        self.max_per_supplier = max_per_supplier
        self._valid: dict[bytes, Block] = {}                     # hash -> the body that validated
        self._verdicts: dict[tuple[bytes, bytes], bool] = {}     # (hash, body digest) -> valid
        self._queued: dict[bytes, dict[bytes, Block]] = {}       # hash -> digest -> body awaiting validation
        self._in_flight: dict[bytes, bytes] = {}                 # hash -> digest being validated
        self._supplied: Counter[tuple[bytes, bytes]] = Counter()  # (hash, supplier) -> distinct bodies taken

    def get_valid(self, block_hash: bytes) -> Block | None:
        """The body of ``block_hash`` that validated here, or None."""
        return self._valid.get(block_hash)

    def is_bad_copy(self, block: Block) -> bool:
        """True iff this exact body of this header was judged invalid."""
        return self._verdicts.get((block.hash, compute_body_digest(block))) is False

    def trust(self, block: Block) -> None:
        """Record ``block`` as valid without validating it (this replica's own prepared block after restart)."""
        self._valid[block.hash] = block
        self._verdicts[(block.hash, compute_body_digest(block))] = True
        self._queued.pop(block.hash, None)
        self._in_flight.pop(block.hash, None)

    def offer(self, block: Block, supplier: bytes) -> tuple[str, Block | None]:
        """Take a body seen in a message signed by ``supplier``; return (outcome, block to validate now).

        Outcomes: "known" (a body of this hash is already valid, or this copy is queued/in flight),
        "bad_copy" (this copy was judged invalid before), "limit" (the supplier's copies of this hash are
        used up), "queued" (validation requested now when the second item is a block, else later).
        """
        h = block.hash
        if h in self._valid:
            return "known", None
        digest = compute_body_digest(block)
        verdict = self._verdicts.get((h, digest))
        if verdict is False:
            return "bad_copy", None
        queued = self._queued.setdefault(h, {})
        if digest in queued:
            return "known", None
        if self._supplied[(h, supplier)] >= self.max_per_supplier:
            return "limit", None
        self._supplied[(h, supplier)] += 1
        queued[digest] = block
        return "queued", self._next(h)

    def _next(self, block_hash: bytes) -> Block | None:
        if block_hash in self._in_flight:
            return None
        queued = self._queued.get(block_hash)
        if not queued:
            return None
        digest, block = next(iter(queued.items()))
        self._in_flight[block_hash] = digest
        return block

    def settle(self, block_hash: bytes, body_digest: bytes, valid: bool) -> tuple[bool, Block | None]:
        """Apply a validation answer; return (applied, next body of that hash to validate or None).

        An answer is applied to the body in flight for ``block_hash``; ``body_digest`` (when the node echoes
        it) must name that body, otherwise the answer is stale and ignored.
        """
        digest = self._in_flight.get(block_hash)
        if digest is None or (body_digest and body_digest != digest):
            return False, None
        del self._in_flight[block_hash]
        block = self._queued[block_hash].pop(digest)
        self._verdicts[(block_hash, digest)] = valid
        if valid:
            self._valid[block_hash] = block
            self._queued.pop(block_hash, None)
            return True, None
        return True, self._next(block_hash)
