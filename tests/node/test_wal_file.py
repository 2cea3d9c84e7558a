"""The consensus WAL record kept in its own file beside LevelDB (``node.wal_file``) and what a restart takes.

A torn LevelDB log loses its newest writes without an error; these tests prove that the file keeps the
votes the node sent, that the restarted node restores the newer record, never votes below it, and refuses
to start on a damaged file.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest

from consensus.events import Broadcast, Persist, WalRecord
from consensus.messages import NO_ROUND, Commit, Prepare, Proposal
from consensus.wal import decode_record, encode_record
from ledger.storage import Store
from node.errors import NodeError
from node.service import NodeService
from node.wal_file import (
    MAGIC,
    WAL_FILE_NAME,
    ConsensusWal,
    WalFile,
    WalFileDamaged,
    choose_newer,
    decode_wal_file,
    encode_wal_file,
)
from tests.node.test_service import FAST, keys, make_genesis, open_service, wait_height  # noqa: F401

pytestmark = [pytest.mark.timeout(60)]

X = b"\x77" * 32  # the block this node voted for before the crash (only its hash matters to the record)


def record(height: int, round_: int, *, voted: bytes | None = None) -> WalRecord:
    """A record with a PROPOSAL and a PREPARE for ``voted`` in ``round_`` (none when ``voted`` is None)."""
    votes = ((round_, voted),) if voted is not None else ()
    return WalRecord(height, round_, NO_ROUND, None, (), votes, (), votes)


# ---- the file format ------------------------------------------------------------------------------------

def test_a_written_record_reads_back_and_replaces_the_previous_one(tmp_path):
    wal = WalFile(tmp_path / WAL_FILE_NAME)
    assert wal.read() is None
    first, second = encode_record(record(5, 0)), encode_record(record(5, 1, voted=X))
    wal.write(first)
    wal.write(second)
    assert wal.read() == second and decode_record(wal.read()) == record(5, 1, voted=X)
    assert not (tmp_path / (WAL_FILE_NAME + ".tmp")).exists()  # the temp file was renamed over the file
    assert (tmp_path / WAL_FILE_NAME).read_bytes().startswith(MAGIC)


def test_a_torn_wal_file_is_refused_at_every_cut():
    data = encode_wal_file(encode_record(record(7, 3, voted=X)))
    for cut in range(1, len(data)):
        with pytest.raises(WalFileDamaged, match=f"{WAL_FILE_NAME} is damaged") as info:
            decode_wal_file(data[:-cut], WAL_FILE_NAME)
        assert "will not start" in info.value.message and "move the file aside" in info.value.message


def test_a_garbled_wal_file_is_refused_whichever_byte_flipped():
    data = encode_wal_file(encode_record(record(7, 3, voted=X)))
    for i in range(len(data)):
        garbled = bytearray(data)
        garbled[i] ^= 0x01
        with pytest.raises(WalFileDamaged, match="damaged"):
            decode_wal_file(bytes(garbled), "somewhere/consensus.wal")


def test_a_wal_file_whose_record_does_not_decode_is_refused_by_name(tmp_path):
    store = Store.open(tmp_path / "db")
    try:
        wal = ConsensusWal(store)
        wal.file.write(b"\x93\x01\x02\x03")  # a checksummed record that is not a WAL record
        with pytest.raises(WalFileDamaged, match=r"db/consensus\.wal is damaged: its record does not decode"):
            wal.load()
    finally:
        store.close()


def test_load_takes_the_newer_record_of_the_file_and_leveldb(tmp_path):
    store = Store.open(tmp_path / "db")
    try:
        wal = ConsensusWal(store)
        assert wal.load() is None
        store.put_wal(encode_record(record(4, 1)))  # a data dir from before the file existed
        assert wal.load() == record(4, 1)
        wal.put_wal(encode_record(record(4, 2, voted=X)))
        assert wal.load() == record(4, 2, voted=X) and decode_record(store.get_wal()) == record(4, 2, voted=X)
        store.put_wal(encode_record(record(3, 9)))  # LevelDB's record went back (a torn log)
        assert wal.load() == record(4, 2, voted=X)
    finally:
        store.close()


def test_the_newer_record_is_chosen_by_height_then_round_then_votes():
    assert choose_newer(record(5, 0), record(4, 9)) == record(5, 0)
    assert choose_newer(record(5, 0), record(5, 1)) == record(5, 1)
    assert choose_newer(record(5, 1), record(5, 1, voted=X)) == record(5, 1, voted=X)
    assert choose_newer(None, record(2, 0)) == record(2, 0) and choose_newer(None, None) is None


# ---- restarts -------------------------------------------------------------------------------------------

class Spy:
    """Stands in for the driver's ports: records every persisted record and every message sent."""

    def __init__(self, wal, net) -> None:
        self.wal, self.net = wal, net
        self.records: list[WalRecord] = []
        self.sent: list = []

    def put_wal(self, raw: bytes) -> None:
        self.wal.put_wal(raw)
        self.records.append(decode_record(raw))

    async def broadcast(self, channel: str, payload: bytes) -> None:
        from consensus.wire import decode_message
        self.sent.append(decode_message(payload))

    async def send(self, peer: bytes, channel: str, payload: bytes) -> None:
        await self.broadcast(channel, payload)


def spy_on(svc: NodeService) -> Spy:
    driver = svc.consensus.driver
    spy = Spy(driver.wal, driver.net)
    driver.wal, driver.net = spy, spy
    return spy


async def run_to(path, keys_, height: int) -> int:
    """Run a lone validator on ``path`` until ``height`` is committed; return the head when it stopped."""
    svc = open_service(path, *keys_)
    try:
        await svc.start()
        await wait_height(svc, height)
        await svc.stop()
        return svc.store.head().height
    finally:
        svc.close()


def assert_no_vote_conflicts(spy: Spy, held: WalRecord) -> None:
    """Nothing sent or persisted after the restart contradicts ``held`` (the votes sent before the crash)."""
    for rec in spy.records:
        if rec.height == held.height:
            assert rec.round >= held.round, rec  # rounds never go back; a later round supersedes its votes
            if rec.round == held.round:
                assert set(held.prepare_votes) <= set(rec.prepare_votes), rec
                assert set(held.proposal_votes) <= set(rec.proposal_votes), rec
    voted = dict(held.prepare_votes)
    for msg in spy.sent:
        if msg.height != held.height:
            continue
        assert msg.round >= held.round, msg
        if isinstance(msg, (Prepare, Commit)) and msg.round in voted:
            assert msg.block_hash == voted[msg.round], msg
        if isinstance(msg, Proposal) and msg.round in voted:
            assert msg.block.hash == voted[msg.round], msg


@pytest.mark.asyncio
async def test_torn_leveldb_log_never_lets_a_node_sign_a_conflicting_vote(tmp_path, keys):  # noqa: F811
    path = tmp_path / "db"
    await run_to(path, keys, 2)
    store = Store.open(path)
    h = store.head().height + 1
    # Before the "crash" the node proposed and prepared block X in round 2 of height h; the file kept that
    # record, while LevelDB's log lost it and holds an older record of the same height.
    held = record(h, 2, voted=X)
    store.put_wal(encode_record(record(h, 0)))
    WalFile(path / WAL_FILE_NAME).write(encode_record(held))
    svc = NodeService(key=keys[0], genesis=make_genesis(*keys), store=store, options=FAST)
    spy = spy_on(svc)
    try:
        await svc.start()
        replica = svc.consensus.replica
        assert replica.height == h and replica.round == 2  # the newer record was restored, not LevelDB's
        assert replica.safety.record.prepare_votes == ((2, X),)
        await wait_height(svc, h)
        await svc.stop()
        decided = svc.store.get_block(h)
        assert decided.hash != X  # X never existed: the block came from a later round...
        assert_no_vote_conflicts(spy, held)  # ...and nothing the node signed contradicts round 2's votes
        assert any(isinstance(m, Prepare) and (m.round, m.block_hash) == (2, X) for m in spy.sent)  # re-sent
    finally:
        svc.close()


@pytest.mark.asyncio
async def test_a_wal_file_ahead_of_the_store_holds_every_vote_until_catch_up_reaches_its_height(tmp_path, keys):  # noqa: F811
    path, twin_path = tmp_path / "db", tmp_path / "twin"
    await run_to(path, keys, 2)
    shutil.copytree(path, twin_path)
    store = Store.open(path)
    head = store.head().height
    store.close()
    # The twin (same key, same chain) stands for the network that moved on while LevelDB lost blocks here.
    await run_to(twin_path, keys, head + 2)
    twin = Store.open(twin_path)
    synced = [(twin.get_block(n), twin.get_certificate(n)) for n in (head + 1, head + 2)]
    twin.close()
    held = record(head + 3, 1, voted=X)
    WalFile(path / WAL_FILE_NAME).write(encode_record(held))
    svc = open_service(path, *keys)
    spy = spy_on(svc)
    try:
        await svc.start()
        await asyncio.sleep(0.5)  # a lone validator at a 20 ms block interval would make blocks meanwhile
        assert svc.consensus.held == held and svc.store.head().height == head
        assert spy.records == [] and spy.sent == []  # no vote at all below the height it voted at

        async def apply(blocks):
            done.set_result(await svc.consensus.apply_synced(blocks))

        for blocks, want_held in ((synced[:1], True), (synced[1:], False)):
            done = asyncio.get_running_loop().create_future()
            svc.consensus.post(lambda b=blocks: apply(b))
            await asyncio.wait_for(done, 10)
            assert (svc.consensus.held is not None) == want_held
            if want_held:
                assert spy.records == [] and spy.sent == []
        replica = svc.consensus.replica
        assert (replica.height, replica.round) == (head + 3, 1)
        assert replica.safety.record.prepare_votes == ((1, X),)
        await wait_height(svc, head + 3)
        await svc.stop()
        assert_no_vote_conflicts(spy, held)
    finally:
        svc.close()


@pytest.mark.asyncio
async def test_a_really_torn_leveldb_log_leaves_the_node_voting_nothing_below_its_last_vote(tmp_path, keys):  # noqa: F811
    pristine = tmp_path / "pristine"
    head_before = await run_to(pristine, keys, 3)  # not reopened: its newest log holds this whole session
    voted = decode_record(decode_wal_file((pristine / WAL_FILE_NAME).read_bytes()))
    assert voted.height >= head_before
    log_file = max(pristine.glob("*.log"), key=lambda f: f.stat().st_size)
    size = log_file.stat().st_size
    # Cut the newest LevelDB log until the store opens (without a word) two blocks short.
    for cut in range(1, size, 97):
        path = tmp_path / f"cut-{cut}"
        shutil.copytree(pristine, path)
        with open(path / log_file.name, "r+b") as fh:
            fh.truncate(size - cut)
        store = Store.open(path)
        head = store.head().height
        store.close()
        if head <= head_before - 2:
            break
    else:
        raise AssertionError(f"no cut of {log_file.name} ({size} bytes) took the head below {head_before - 1}")
    svc = open_service(path, *keys)
    spy = spy_on(svc)
    try:
        await svc.start()
        await asyncio.sleep(0.5)
        assert svc.consensus.held == voted and svc.store.head().height == head
        assert spy.records == [] and spy.sent == []  # it waits for catch-up instead of voting at head + 1
    finally:
        await svc.stop()
        svc.close()


@pytest.mark.asyncio
async def test_a_node_with_a_damaged_wal_file_refuses_to_start_and_says_which_file(tmp_path, keys):  # noqa: F811
    path = tmp_path / "db"
    await run_to(path, keys, 1)
    wal_file = path / WAL_FILE_NAME
    assert decode_record(decode_wal_file(wal_file.read_bytes())).height >= 1  # the running node wrote it
    wal_file.write_bytes(wal_file.read_bytes()[:-1])  # torn
    svc = open_service(path, *keys)
    try:
        with pytest.raises(NodeError, match=r"consensus\.wal is damaged.*will not start"):
            await svc.start()
        assert svc.store.head().height >= 1 and svc.consensus.replica.height == svc.store.head().height + 1
    finally:
        await svc.stop()
        svc.close()


def test_the_driver_persists_to_the_file_and_leveldb_before_a_vote_leaves(tmp_path):
    from consensus.messages import sign_prepare
    from ledger.keys import KeyPair
    from node.driver import Driver

    store = Store.open(tmp_path / "db")
    order: list[str] = []

    class Net:
        async def broadcast(self, channel: str, payload: bytes) -> None:
            order.append("send")
            assert decode_wal_file((tmp_path / "db" / WAL_FILE_NAME).read_bytes()) == store.get_wal()

    try:
        wal = ConsensusWal(store)
        driver = Driver(wal=wal, net=Net(), post=lambda event: None)
        rec = record(1, 0, voted=X)
        asyncio.run(driver.execute([Persist(rec), Broadcast(sign_prepare(KeyPair.generate(), "c", 1, 0, X))]))
        assert order == ["send"] and wal.load() == rec and decode_record(store.get_wal()) == rec
    finally:
        store.close()
