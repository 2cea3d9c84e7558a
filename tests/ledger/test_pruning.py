"""State pruning (``ledger.storage`` "State pruning"): a pruned store keeps exactly the trees of heights
head - K .. head, whatever the update sequence (reverts that re-create a replaced node, deletions, restarts).

The invariants are checked against LevelDB itself (not the store's caches): every node reachable from a kept
root is stored, no other node is, and each pending journal's decision is already right: a node of journal j has a
revival marker above j exactly when a tree of heights j + 1 .. head holds it (so its deletion keeps exactly the
nodes a kept tree needs). A proof at the head verifies against the model's values; a pruned root is a clear
error. A store written by format 1 (``P`` rows, ``tests/ledger/format1_pruning.py``) upgrades in place.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ledger import codec, pruning
from ledger.block import Block, CommitSeal, Header
from ledger.errors import StorageError
from ledger.smt import EMPTY_ROOT, NODE_INTERNAL, SparseMerkleTree, decode_node, value_hash, verify_proof
from ledger.storage import P_JOURNAL, P_LEGACY_PENDING, P_NODE, P_REVIVED, P_VERSION, Store
from tests.ledger import format1_pruning

CHAIN = "test-chain"
SEALS = (CommitSeal(b"\x07" * 32, b"\x08" * 64),)
KEYS = [b"k%d" % i for i in range(10)]
VALUES = [b"A", b"B", b"C"]  # few values: a key often goes back to a value it had (A -> B -> A)


class Chain:
    """A store and the state root of every height committed to it, with the model state at the head."""

    def __init__(self, path, history: int | None) -> None:
        self.path, self.history = path, history
        self.store = Store.open(path, state_history_blocks=history)
        self.roots: list[bytes] = []
        self.hashes: list[bytes] = []
        self.state: dict[bytes, bytes] = {}

    def commit(self, changes: dict[bytes, bytes | None]) -> None:
        parent = self.roots[-1] if self.roots else EMPTY_ROOT
        done = SparseMerkleTree(self.store).update_tracked(parent, changes)
        height = len(self.roots)
        prev = self.hashes[-1] if self.hashes else b"\x00" * 32
        header = Header(CHAIN, height, prev, 1_000 + height, b"\x01" * 32, 0, b"\x02" * 32, done.root, b"\x03" * 32)
        block = Block(header, ())
        self.store.commit_block(block, SEALS, [], changes, done.nodes, done.replaced, done.reused)
        self.roots.append(done.root)
        self.hashes.append(block.hash)
        for key, value in changes.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value

    def reopen(self, history: int | None) -> None:
        self.store.close()
        self.history = history
        self.store = Store.open(self.path, state_history_blocks=history)

    def close(self) -> None:
        self.store.close()


def disk_node(store: Store, node_hash: bytes) -> bytes | None:
    return store._db.get(P_NODE + node_hash)


def reachable(store: Store, root: bytes) -> set[bytes]:
    """Every node of the tree at ``root``, read from LevelDB; AssertionError if one is missing."""
    out: set[bytes] = set()
    todo = [root] if root != EMPTY_ROOT else []
    while todo:
        h = todo.pop()
        raw = disk_node(store, h)
        assert raw is not None, f"node {h.hex()[:12]} of a kept tree is missing"
        out.add(h)
        kind, a, b = decode_node(raw)
        if kind == NODE_INTERNAL:
            todo.extend(x for x in (a, b) if x != EMPTY_ROOT)
    return out


def stored(store: Store) -> set[bytes]:
    return {key[1:] for key in store._db.iterator(prefix=P_NODE, include_value=False)}


def journals(store: Store) -> dict[int, list[bytes]]:
    return {int.from_bytes(key[1:], "big"): [raw[i:i + 32] for i in range(0, len(raw), 32)]
            for key, raw in store._db.iterator(prefix=P_JOURNAL)}


def markers(store: Store) -> dict[bytes, int]:
    return {key[1:]: int.from_bytes(raw, "big") for key, raw in store._db.iterator(prefix=P_REVIVED)}


def legacy_rows(store: Store) -> dict[bytes, int]:
    return {key[1:]: int.from_bytes(raw, "big") for key, raw in store._db.iterator(prefix=P_LEGACY_PENDING)}


def in_journal(store: Store) -> dict[bytes, int]:
    """node -> the lowest pending journal holding it."""
    out: dict[bytes, int] = {}
    for j, xs in sorted(journals(store).items(), reverse=True):
        out.update(dict.fromkeys(xs, j))
    return out


def check(chain: Chain, *, exact: bool = True, low: int | None = None) -> None:
    """The pruning invariants after a commit (``exact``: the store was pruned since genesis with this K;
    ``low``: the lowest height whose tree must be readable, default head - K, 0 for an archive)."""
    store, k, head = chain.store, chain.history, len(chain.roots) - 1
    if low is None:
        low = 0 if k is None else max(0, head - k)
    kept: set[bytes] = set()
    for height in range(low, head + 1):
        kept |= reachable(store, chain.roots[height])
    if exact:
        assert stored(store) == kept, "a node no kept tree references is still stored"
    js = journals(store)
    marks = markers(store)
    assert all(len(set(xs)) == len(xs) and xs for xs in js.values())
    assert sorted(js) == list(store.journal_heights())
    if k is not None and exact:
        assert all(head - k < j <= head for j in js), f"journal heights {sorted(js)} outside ({head - k}, {head}]"
    assert set(marks) <= stored(store), "a revival marker of a node that is not stored"
    assert marks == store._revivals.height_of, "the store's mirror of the markers disagrees with LevelDB"
    # only markers a pending journal can consult are kept (a journal below the marker's height)
    assert all(min(js, default=head + 1) < h <= head for h in marks.values()), (sorted(js), sorted(marks.values()))
    # every pending journal decides right: x of journal j goes iff no tree of heights j + 1 .. head holds x
    trees = {t: reachable(store, chain.roots[t]) for t in range(min(js, default=head + 1), head + 1)}
    for j, xs in js.items():
        later = set().union(*(trees[t] for t in range(j + 1, head + 1)))
        for x in xs:
            assert x not in trees[j], f"journal {j} holds node {x.hex()[:12]} of its own height's tree"
            assert (marks.get(x, -1) > j) == (x in later), (
                f"node {x.hex()[:12]} of journal {j}: marker {marks.get(x)}, held by a later tree: {x in later}")
    # the head answers from the store (its caches included) as the model says
    tree = SparseMerkleTree(store)
    for key in KEYS:
        value = chain.state.get(key)
        assert tree.get(chain.roots[-1], key) == (None if value is None else value_hash(value))
        verify_proof(chain.roots[-1], key, value, tree.prove(chain.roots[-1], key))


batches = st.lists(st.dictionaries(st.sampled_from(KEYS), st.one_of(st.none(), st.sampled_from(VALUES)),
                                   max_size=4), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), batches, st.sets(st.integers(0, 24), max_size=3))
def test_random_updates_with_reverts_keep_exactly_the_last_k_trees(tmp_path_factory, k, steps, restarts):
    chain = Chain(tmp_path_factory.mktemp("db"), k)
    try:
        chain.commit({KEYS[0]: b"A"})
        check(chain)
        for i, changes in enumerate(steps):
            chain.commit(changes)
            check(chain)
            if i in restarts:  # journals persisted, their deletion due at the next commits
                chain.reopen(k)
                check(chain)
    finally:
        chain.close()


def test_a_node_replaced_then_written_again_survives_its_journal(tmp_path):
    """a: A -> B -> A with the same siblings re-creates A's leaf (same hash) that height 2 journaled; its deletion
    at height 2 + K must not take it while the head's tree holds it."""
    chain = Chain(tmp_path / "db", 2)
    try:
        chain.commit({b"a": b"A", b"b": b"x"})
        leaf = SparseMerkleTree(chain.store).update_tracked(EMPTY_ROOT, {b"a": b"A"}).root  # a's leaf hash
        chain.commit({b"a": b"B"})
        assert in_journal(chain.store).get(leaf) == 1 and leaf not in markers(chain.store)  # height 1 replaced it
        chain.commit({b"a": b"A"})
        assert in_journal(chain.store).get(leaf) == 1, "journals are never rewritten"
        # the leaf and the root over it (height 2's tree is height 0's again): both revived, both marked
        assert markers(chain.store) == {leaf: 2, chain.roots[0]: 2}, "a re-created node has no revival marker"
        for i in range(4):  # height 1's journal (holding the leaf) comes due and goes
            chain.commit({b"c": b"%d" % i})
            check(chain)
        assert disk_node(chain.store, leaf) is not None and not journals(chain.store).get(1)
        assert not markers(chain.store), "no journal below 2 is left to consult the markers: they go"
        assert disk_node(chain.store, chain.roots[0]) is None  # replaced again at 3 and pruned with journal 3
    finally:
        chain.close()


def test_without_revival_markers_the_checks_catch_the_loss(tmp_path, monkeypatch):
    """The adversary: a store that journals but never marks a revival loses the re-created leaf; the invariant
    and the head's proof both fail, so the tests above can fail."""
    monkeypatch.setattr(pruning, "find_revived", lambda db, nodes, reused: [])
    chain = Chain(tmp_path / "db", 2)
    try:
        chain.commit({b"a": b"A", b"b": b"x"})
        chain.commit({b"a": b"B"})
        chain.commit({b"a": b"A"})
        with pytest.raises((AssertionError, StorageError)):
            for i in range(4):
                chain.commit({b"c": b"%d" % i})
                check(chain)
    finally:
        chain.close()


def test_reading_a_pruned_root_is_a_clear_error_and_the_kept_ones_read(tmp_path):
    chain = Chain(tmp_path / "db", 2)
    try:
        for i in range(8):
            chain.commit({b"a": b"%d" % i, b"b": b"x"})
        tree = SparseMerkleTree(chain.store)
        for height in range(5, 8):
            assert tree.get(chain.roots[height], b"a") == value_hash(b"%d" % height)
        with pytest.raises(StorageError, match=r"state root [0-9a-f]+… is missing from the node store: the tree "
                                               r"of that height was pruned"):
            tree.prove(chain.roots[3], b"a")
    finally:
        chain.close()


def test_the_store_cache_does_not_keep_a_pruned_node(tmp_path):
    chain = Chain(tmp_path / "db", 1)
    try:
        chain.commit({b"a": b"0", b"b": b"x"})
        old_root = chain.roots[-1]
        assert chain.store.get_node(old_root) is not None  # cached now
        chain.commit({b"a": b"1"})
        chain.commit({b"a": b"2"})  # height 0's tree goes
        assert disk_node(chain.store, old_root) is None
        assert chain.store.get_node(old_root) is None, "the node cache served a pruned node"
    finally:
        chain.close()


def test_a_pruned_store_refuses_a_commit_without_the_replaced_nodes(tmp_path):
    with Store.open(tmp_path / "db", state_history_blocks=3) as store:
        done = SparseMerkleTree(store).update_tracked(EMPTY_ROOT, {b"a": b"1"})
        header = Header(CHAIN, 0, b"\x00" * 32, 1_000, b"\x01" * 32, 0, b"\x02" * 32, done.root, b"\x03" * 32)
        with pytest.raises(StorageError, match="needs the block's replaced sparse-Merkle nodes .*got None"):
            store.commit_block(Block(header, ()), SEALS, [], {b"a": b"1"}, done.nodes)
        assert store.head() is None


@pytest.mark.parametrize("bad", [0, -1, True, "256", 2.5])
def test_store_refuses_a_bad_history(tmp_path, bad):
    with pytest.raises(StorageError, match=r"state_history_blocks is .*; expected None \(archive\) or an integer"):
        Store.open(tmp_path / "db", state_history_blocks=bad)


def test_archive_to_pruned_keeps_old_history_and_prunes_from_then_on(tmp_path):
    chain = Chain(tmp_path / "db", None)
    try:
        for i in range(6):
            chain.commit({b"a": b"%d" % i, b"b": b"x"})
        history = stored(chain.store) - reachable(chain.store, chain.roots[-1])
        chain.reopen(2)
        for i in range(6, 14):
            chain.commit({b"a": b"%d" % i, b"c": b"%d" % (i % 2)})
            check(chain, exact=False)
        # the archive's history (heights 0..4) stays: it was never journaled; the head's tree at the switch is
        # journaled as blocks replace it, and whatever leaves the window goes
        window = set().union(*(reachable(chain.store, r) for r in chain.roots[-3:]))
        assert history and stored(chain.store) == history | window
    finally:
        chain.close()


def test_pruned_to_archive_forgets_the_journals_and_keeps_every_tree_from_then_on(tmp_path):
    chain = Chain(tmp_path / "db", 3)
    try:
        for i in range(10):
            chain.commit({KEYS[i % 3]: VALUES[i % 2], b"b": b"x"})
        assert chain.store.journal_heights()
        chain.reopen(None)
        assert chain.store.journal_heights(), "opening must not change the store"
        for i in range(10, 16):
            chain.commit({KEYS[i % 3]: VALUES[i % 2]})  # values go back and forth: revivals of journaled nodes
            check(chain, exact=False, low=9 - 3)
        assert not journals(chain.store)
        for height in range(10 - 3, 16):  # the window at the switch and everything after it stays readable
            reachable(chain.store, chain.roots[height])
    finally:
        chain.close()


def test_a_revival_while_archive_forgets_journals_is_marked_for_a_return_to_pruned(tmp_path):
    """Pruned -> archive -> pruned before the journals are all forgotten: a node revived by the archive commit
    sits in a journal the pruned store deletes later, so the archive commit must have marked it."""
    chain = Chain(tmp_path / "db", 12)
    try:
        chain.commit({b"a": b"0", b"b": b"x"})
        for i in range(1, 14):
            chain.commit({b"a": b"%d" % i})  # journal i: a's leaf with value i - 1 (and the root over it)
        leaf = SparseMerkleTree(chain.store).update_tracked(EMPTY_ROOT, {b"a": b"11"}).root
        assert in_journal(chain.store)[leaf] == 12
        chain.reopen(None)
        chain.commit({b"a": b"11"})  # archive, journals 1..4 forgotten; 12 still pending
        assert markers(chain.store).get(leaf) == 14 and 12 in chain.store.journal_heights()
        chain.reopen(2)
        for i in range(4):  # journals 5..8, then 9..12 (holding the leaf) are deleted, with their nodes
            chain.commit({b"c": b"%d" % i})
            check(chain, exact=False)
        assert 12 not in chain.store.journal_heights() and disk_node(chain.store, leaf) is not None
    finally:
        chain.close()


def test_a_smaller_k_shrinks_the_window_a_few_journals_a_commit(tmp_path):
    chain = Chain(tmp_path / "db", 12)
    try:
        for i in range(14):
            chain.commit({b"a": b"%d" % i})
        assert len(chain.store.journal_heights()) == 12
        chain.reopen(2)
        lengths = []
        for i in range(14, 20):
            chain.commit({b"a": b"%d" % i})
            lengths.append(len(chain.store.journal_heights()))
            check(chain, exact=False)
        assert lengths[0] == 12 + 1 - 4 and lengths[-1] == 2, lengths
        check(chain)  # converged: exactly the last 2 heights' trees
    finally:
        chain.close()


def test_a_tampered_journal_row_refuses_the_commit_that_needs_it_and_keeps_the_head(tmp_path):
    """Someone edits the data dir: a journal row that is not whole hashes is named, and nothing is deleted."""
    chain = Chain(tmp_path / "db", 2)
    try:
        for i in range(3):
            chain.commit({b"a": b"%d" % i, b"b": b"x"})
        due = chain.store.journal_heights()[0]
        chain.store._db.put(P_JOURNAL + due.to_bytes(8, "big"), b"\x01" * 33)
        before, rows = chain.store.head(), stored(chain.store)
        with pytest.raises(StorageError, match=rf"pruning journal of height {due} is corrupt: 33 bytes; expected a "
                                               r"multiple of 32"):
            chain.commit({b"a": b"9"})
        assert chain.store.head() == before and stored(chain.store) == rows
    finally:
        chain.close()


def test_a_tampered_journal_key_refuses_the_open(tmp_path):
    with Store.open(tmp_path / "db", state_history_blocks=2) as store:
        store._db.put(P_JOURNAL + b"\x01\x02", b"")
    with pytest.raises(StorageError, match=r"is corrupt: pruning journal key 4a0102 has 3 bytes; expected 9"):
        Store.open(tmp_path / "db", state_history_blocks=2)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_revive_replace_revive_keeps_the_latest_revival_and_exactly_the_kept_trees(tmp_path, k):
    """a's leaf goes A -> B -> A -> B -> A ...: the same leaf (and root) sit in several journals at once, each
    revival overwrites the marker, and the deletion of every journal decides with the latest one (also when the
    due journal's node is written again by the very block that deletes the journal)."""
    chain = Chain(tmp_path / "db", k)
    try:
        chain.commit({b"a": b"A", b"b": b"x"})
        leaf_a = SparseMerkleTree(chain.store).update_tracked(EMPTY_ROOT, {b"a": b"A"}).root
        revivals, current = [], b"A"
        for step, value in enumerate([b"B", b"A", b"B", b"A", b"C", b"C", b"B", b"A", b"B", b"C", b"A", b"B"] * 2):
            was_stored = disk_node(chain.store, leaf_a) is not None  # journaled, not deleted yet: a revival
            chain.commit({b"a": value} if value != b"C" else {b"c": b"%d" % step})  # C: a stays, others move
            check(chain)
            head = len(chain.roots) - 1
            if value == b"A" and was_stored:
                if any(leaf_a in xs for j, xs in journals(chain.store).items() if j < head):
                    assert markers(chain.store).get(leaf_a) == head, "the marker must hold the latest revival"
                else:  # its journals were deleted by this very commit: a marker would decide nothing
                    assert markers(chain.store).get(leaf_a) in (None, head)
                revivals.append(head)
            elif value == b"A":  # its journal was deleted already: written afresh, nothing to mark
                assert markers(chain.store).get(leaf_a) is None
            current = current if value == b"C" else value
        assert len(revivals) >= 4 and current == b"B", revivals
        for i in range(k + 1):  # the last journals come due: exactly the last K trees are left
            chain.commit({b"c": b"end%d" % i})
            check(chain)
        assert disk_node(chain.store, leaf_a) is None, "the last B's journal takes the leaf and its marker"
        assert leaf_a not in markers(chain.store)
    finally:
        chain.close()


@pytest.mark.parametrize("key_tail, value, seen", [(b"", b"\x00\x01", "a 33-byte key and a 2-byte value"),
                                                    (b"\x00", b"\x00" * 8, "a 34-byte key and a 8-byte value")])
def test_a_tampered_marker_refuses_the_open_naming_it(tmp_path, key_tail, value, seen):
    """Someone edits the data dir: a revival marker that is not A + hash32 -> height8 is named at open (the
    store reads its markers then), before any commit could decide with it."""
    chain = Chain(tmp_path / "db", 3)
    try:
        chain.commit({b"a": b"A", b"b": b"x"})
        chain.commit({b"a": b"B"})
        chain.commit({b"a": b"A"})
        victim = next(iter(markers(chain.store)))
        chain.store._db.put(P_REVIVED + victim + key_tail, value)
        chain.store.close()
        with pytest.raises(StorageError, match=rf"is corrupt: pruning marker {(P_REVIVED + victim).hex()[:20]}… is "
                                               rf"corrupt: {seen}; expected 33 \(A \+ node hash\) and 8 \(height\)"):
            Store.open(chain.path, state_history_blocks=3)
    finally:
        chain.close()


# ---- format 1 (a ``P`` row per journaled node) upgraded in place -------------------------------------------------

def set_format(store: Store, version: int) -> None:
    store._db.put(P_VERSION, codec.encode([version]))


def format_of(store: Store) -> int:
    return codec.decode(store._db.get(P_VERSION))[0]


def commit_format1(chain: Chain, changes) -> None:
    """A commit as format 1 code made it (its journal, its ``P`` rows, its neutralisation; format stays 1)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(pruning, "add_journal_and_prune", format1_pruning.format1_hook)
        m.setattr(chain.store, "_format", 2)  # no upgrade: this is the old code committing
        chain.commit(changes)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), batches, st.integers(1, 12))
def test_a_format1_store_opens_prunes_exactly_and_drops_its_p_rows(tmp_path_factory, k, steps, upgrade_at):
    """Blocks committed by format 1 code, then the same data dir opened by this code: the old journals (and the
    nodes they neutralised) are honoured, revivals of their nodes get markers, every ``P`` row goes with its
    journal, and the store reads format 2 after the first commit."""
    chain = Chain(tmp_path_factory.mktemp("db"), k)
    try:
        set_format(chain.store, 1)
        commit_format1(chain, {KEYS[0]: b"A"})
        for changes in steps[:upgrade_at]:
            commit_format1(chain, changes)
        assert format_of(chain.store) == 1
        assert legacy_rows(chain.store) == in_journal(chain.store), "format 1: one P row per journaled node"
        chain.reopen(k)  # the upgrade is a restart on the new code
        assert format_of(chain.store) == 1, "opening must not change the store"
        for changes in steps[upgrade_at:] + [{KEYS[1]: b"end%d" % i} for i in range(k + 1)]:
            chain.commit(changes)
            assert format_of(chain.store) == 2
            check(chain)
            # what is left of format 1's index is exactly the nodes of its journals still pending
            legacy = legacy_rows(chain.store)
            assert set(legacy) <= set(in_journal(chain.store))
        assert not legacy_rows(chain.store), "a P row outlived its journal"
    finally:
        chain.close()


def test_a_format1_store_with_a_revival_across_the_upgrade_keeps_the_node(tmp_path):
    """a's leaf is journaled by format 1 code (with its ``P`` row); this code writes it back: the leaf gets a
    marker (format 1's index is not consulted), survives its old journal, and the ``P`` rows go with it."""
    chain = Chain(tmp_path / "db", 2)
    try:
        set_format(chain.store, 1)
        commit_format1(chain, {b"a": b"A", b"b": b"x"})
        leaf = SparseMerkleTree(chain.store).update_tracked(EMPTY_ROOT, {b"a": b"A"}).root
        commit_format1(chain, {b"a": b"B"})
        assert legacy_rows(chain.store).get(leaf) == 1
        chain.reopen(2)
        chain.commit({b"a": b"A"})
        assert markers(chain.store).get(leaf) == 2 and format_of(chain.store) == 2
        for i in range(3):
            chain.commit({b"c": b"%d" % i})
            check(chain)
        assert disk_node(chain.store, leaf) is not None and not legacy_rows(chain.store)
    finally:
        chain.close()


def test_an_archive_store_without_journals_keeps_format1_and_a_pruned_one_writes_format2(tmp_path):
    """Only a commit that journals or marks makes format 1 code unable to read the store, so only that one
    writes format 2 (an archive node can still go back to the older code)."""
    with Store.open(tmp_path / "db") as store:
        set_format(store, 1)
    chain = Chain(tmp_path / "db", None)
    try:
        for i in range(3):
            chain.commit({b"a": b"%d" % i})
        assert format_of(chain.store) == 1
        chain.reopen(2)
        assert format_of(chain.store) == 1
        chain.commit({b"a": b"x"})
        assert format_of(chain.store) == 2
    finally:
        chain.close()


@pytest.mark.parametrize("version", [0, 3])
def test_a_store_of_an_unknown_format_is_refused_naming_both(tmp_path, version):
    with Store.open(tmp_path / "db") as store:
        set_format(store, version)
    with pytest.raises(StorageError, match=rf"has store format 91{version:02x}; expected one of 9101, 9102 "
                                           r"\(versions 1, 2\)"):
        Store.open(tmp_path / "db")
