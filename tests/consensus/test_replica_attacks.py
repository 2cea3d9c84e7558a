"""Attacks on one replica through its peer door (MessageReceived): altered block bodies under an honest
header, future-buffer floods, and headers that lie about their proposer."""

from consensus.events import TIMER_PROPOSE, TIMER_ROUND, BlockValidated, Decide, TimerExpired, ValidateBlock
from consensus.messages import Prepare, Proposal, RoundChange, sign_proposal
from consensus.sim.app import compute_body_root, compute_txs, corrupt_body
from ledger.block import Block, Header, validator_set_hash
from tests.consensus.fakenet import CHAIN, Solo, broadcasts, of

MIB = 1024 * 1024
BUFFER_BYTES_PER_SIGNER = 16 * MIB  # ReplicaConfig's default byte bound of one signer's future buffer
COPIES_PER_SUPPLIER = 2             # ReplicaConfig's default distinct bodies of one hash taken from one signer


def _block_with_body(s: Solo, proposer: int, salt: bytes = b"honest") -> Block:
    """A block carrying two signed envelopes whose header binds every body byte (as wire format v2 does)."""
    txs = compute_txs(CHAIN, s.height, salt)
    header = Header(CHAIN, s.height, s.prev_hash, 1_000, s.validators[proposer], len(txs), compute_body_root(txs),
                    b"\x22" * 32, validator_set_hash(s.validators))
    return Block(header, txs)


def _with_body(prop: Proposal, block: Block) -> Proposal:
    """The same signed PROPOSAL carrying another body (its signature covers only the header hash)."""
    return Proposal(prop.height, prop.round, block, prop.round_changes, prop.prepares, prop.signer, prop.signature)


def _deliver(s: Solo, msg, honest: Block) -> list:
    """Deliver ``msg`` and answer each ValidateBlock as a node would: valid iff the body is the honest one."""
    out = s.recv(msg)
    pending = list(of(out, ValidateBlock))
    while pending:
        ask = pending.pop(0)
        more = s.handle(BlockValidated(ask.height, ask.block.hash, ask.block.txs == honest.txs))
        pending += of(more, ValidateBlock)
        out += more
    return out


def _decide_round(s: Solo, round_: int, block: Block, voters=(1, 2, 3)) -> list:
    out = []
    for i in voters:
        out += s.recv(s.prepare(i, round_, block.hash))
    for i in voters:
        out += s.recv(s.commit(i, round_, block.hash))
    return out


# ---- altered bodies under an honest header -------------------------------------------------------------

def test_byzantine_proposer_corrupt_copy_then_honest_copy_is_still_voted_and_decided():
    s = Solo(4)
    s.start()
    honest = _block_with_body(s, s.proposer_index(0))
    prop = s.proposal(0, block=honest)
    out = _deliver(s, _with_body(prop, corrupt_body(honest)), honest)
    assert broadcasts(out, Prepare) == [] and s.r.fault_counts["invalid_block"] == 1
    out = _deliver(s, prop, honest)
    assert [p.block_hash for p in broadcasts(out, Prepare)] == [honest.hash]
    decides = of(_decide_round(s, 0, honest), Decide)
    assert len(decides) == 1 and decides[0].block.txs == honest.txs and s.r.height == 2


def test_byzantine_proposer_corrupt_copy_does_not_stall_height():
    """The issue: a replica saw a bad copy in round 0, the others prepared the block, and the honest new
    proposer re-proposes it in round 1 with its honest body: the replica must validate it and vote."""
    s = Solo(4, me=0)
    s.start()
    s.handle(TimerExpired(1, 0, TIMER_PROPOSE))
    honest = _block_with_body(s, s.proposer_index(0))
    prop = s.proposal(0, block=honest)
    _deliver(s, _with_body(prop, corrupt_body(honest)), honest)
    s.handle(TimerExpired(1, 0, TIMER_ROUND))  # round 0 times out: nothing prepared here
    rcs = [s.prepared_rc(i, 1, honest, 0, (1, 2, 3)) for i in (1, 2)] + [s.rc(3, 1)]
    reproposal = s.proposal(1, block=honest, rcs=rcs, prepares=rcs[0].prepares)
    out = _deliver(s, reproposal, honest)
    assert [p.block_hash for p in broadcasts(out, Prepare)] == [honest.hash]
    decides = of(_decide_round(s, 1, honest), Decide)
    assert len(decides) == 1 and decides[0].block.txs == honest.txs


def test_bad_copy_is_not_validated_twice_but_each_new_copy_is():
    s = Solo(4)
    s.start()
    honest = _block_with_body(s, s.proposer_index(0))
    prop = s.proposal(0, block=honest)
    bad = _with_body(prop, corrupt_body(honest, 3))
    assert len(of(_deliver(s, bad, honest), ValidateBlock)) == 1
    assert of(_deliver(s, bad, honest), ValidateBlock) == []  # the same bad copy: judged already
    assert s.r.fault_counts["invalid_block_copy"] == 1
    assert len(of(_deliver(s, prop, honest), ValidateBlock)) == 1


def test_byzantine_supplier_cannot_make_a_replica_validate_copies_without_end():
    s = Solo(4)
    s.start()
    honest = _block_with_body(s, s.proposer_index(0))
    prop = s.proposal(0, block=honest)
    asked = 0
    for bit in range(20):
        asked += len(of(_deliver(s, _with_body(prop, corrupt_body(honest, bit)), honest), ValidateBlock))
    assert asked == COPIES_PER_SUPPLIER and s.r.fault_counts["block_copies_exceeded"] == 20 - COPIES_PER_SUPPLIER


def test_byzantine_round_change_body_copy_is_not_what_the_new_proposer_reproposes():
    """The new proposer holds the validated body; a byzantine ROUND-CHANGE carrying the same prepared hash
    with an altered body must not make it propose the altered copy."""
    s = Solo(4, me=2)  # proposer(1, 1) = V[2]
    s.start()
    s.handle(TimerExpired(1, 0, TIMER_PROPOSE))
    honest = _block_with_body(s, s.proposer_index(0))
    _deliver(s, s.proposal(0, block=honest), honest)
    for i in (0, 1, 3):
        s.recv(s.prepare(i, 0, honest.hash))
    s.handle(TimerExpired(1, 0, TIMER_ROUND))
    good = s.prepared_rc(1, 1, honest, 0, (0, 1, 3))
    forged = RoundChange(good.height, good.round, good.prepared_round, corrupt_body(honest), good.prepares,
                         good.signer, good.signature)
    out = s.recv(forged) + s.recv(s.rc(0, 1))
    props = broadcasts(out, Proposal)
    assert len(props) == 1 and props[0].block.hash == honest.hash and props[0].block.txs == honest.txs


# ---- future-message buffers ----------------------------------------------------------------------------

def test_future_proposal_from_non_proposer_is_not_buffered():
    s = Solo(4)
    s.start()
    proposer = s.proposer_index(0, height=2)
    nxt = s.block(height=2, prev_hash=b"\x05" * 32)
    other = (proposer + 1) % 4
    assert s.recv(sign_proposal(s.keys[other], CHAIN, 2, 0, nxt)) == []
    assert s.r.buffered_count() == 0 and s.r.fault_counts["future_proposal_not_proposer"] == 1
    s.recv(sign_proposal(s.keys[proposer], CHAIN, 2, 0, nxt))
    assert s.r.buffered_count() == 1  # the slot's proposer is worth keeping


def test_future_buffer_bounded_in_bytes():
    """One validator floods 1 MiB future proposals for its own slots: memory stays within the byte bound."""
    s = Solo(4)
    s.start()
    signer = 2
    slots = [(h, r) for h in range(2, 2 + s.config.max_future_heights) for r in range(20)
             if s.proposer_index(r, height=h) == signer][:40]
    for h, r in slots:
        big = Block(Header(CHAIN, h, b"\x05" * 32, 1, s.validators[signer], 1, b"\x11" * 32, b"\x22" * 32,
                           b"\x33" * 32), (bytes([r]) * MIB,))
        s.recv(sign_proposal(s.keys[signer], CHAIN, h, r, big))
    assert len(slots) == 40 and 0 < s.r.buffered_count() <= BUFFER_BYTES_PER_SIGNER // MIB
    assert s.r.buffered_bytes() <= BUFFER_BYTES_PER_SIGNER == s.config.max_buffered_bytes_per_signer
    assert s.r.fault_counts["buffer_full"] == len(slots) - s.r.buffered_count()


# ---- the header's proposer (R1) ------------------------------------------------------------------------

def test_fresh_proposal_whose_header_names_another_validator_is_refused():
    s = Solo(4)
    s.start()
    liar = s.block(salt=1)
    liar = Block(Header(*[*liar.header.to_list()[:4], s.validators[3], *liar.header.to_list()[5:]]), ())
    out = s.recv(s.proposal(0, block=liar))
    assert of(out, ValidateBlock) == [] and s.r.fault_counts["invalid_proposal"] == 1


def test_reproposed_block_keeps_the_header_proposer_of_the_round_it_was_first_proposed_in():
    s = Solo(4, me=0)
    s.start()
    first = s.block(salt=4)  # header names proposer(1, 0) = V[1]; proposer(1, 2) = V[3] re-proposes it
    rcs = [s.prepared_rc(i, 2, first, 0, (1, 2, 3)) for i in (1, 2)] + [s.rc(3, 2)]
    out = s.accept(s.proposal(2, block=first, rcs=rcs, prepares=rcs[0].prepares))
    assert [p.block_hash for p in broadcasts(out, Prepare)] == [first.hash]


def test_reproposed_block_whose_header_names_a_non_validator_is_refused():
    s = Solo(4, me=0)
    s.start()
    base = s.block(salt=4).header.to_list()
    outsider = Block(Header(*base[:4], b"\x99" * 32, *base[5:]), ())
    rcs = [s.prepared_rc(i, 2, outsider, 0, (1, 2, 3)) for i in (1, 2)] + [s.rc(3, 2)]
    out = s.recv(s.proposal(2, block=outsider, rcs=rcs, prepares=rcs[0].prepares))
    assert of(out, ValidateBlock) == [] and s.r.fault_counts["invalid_proposal"] == 1
