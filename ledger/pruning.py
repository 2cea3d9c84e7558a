"""State pruning: the journal of replaced sparse-Merkle nodes and the deletion of old heights' trees.

Theory of operation
-------------------
The node serves state only at the head, so a pruned store keeps the sparse-Merkle trees of heights
``head - K .. head`` and deletes every node none of them references. Each block's ``SmtUpdate.replaced`` (the
parent-tree nodes its tree no longer references) is journaled under the block's height (one ``J`` row) in the
block's own batch; committing height ``h`` deletes the journals of heights ``<= h - K`` with their nodes, in that
same batch (at most ``MAX_JOURNALS_PER_COMMIT`` journals a commit, oldest first, so shrinking K spreads the
work). A crash leaves the previous block or the new one with its journal and deletions, never half.

Revivals. A node replaced at height j can be written again later (a value goes A -> B -> A over the same
siblings: the same bytes, the same hash); it is then part of a kept tree again and its journal must not take it.
Journals are never rewritten; instead a block that *revives* a stored node records it in a marker row ``A`` +
hash -> the revival's height (overwritten by a later revival: it always holds the latest). A revival is a node
the block writes that the parent's tree does not hold (not in ``reused``) and that is stored already (an ``N``
lookup; LevelDB's bloom filter makes the usual miss cheap). Deleting journal j then takes each of its nodes x
unless x's marker says it was revived at a height > j. A node this very block writes is never deleted.

Why that is exact (``tests/ledger/test_pruning.py`` checks it against LevelDB after every block, over random
update sequences with frequent A -> B -> A, deletions, restarts and K 1..4): x in journal j means x is not in
tree(j); a later tree holds x only if some block r > j wrote it back while its parent's tree did not hold it, a
revival. While journal j is pending, x is stored, so that revival is found and marked (marker >= r > j). So "no
marker above j" is exactly "no tree of heights j..head holds x", and x may go. A skipped x is in the head's tree
or in a later journal (it was replaced again after its revival), which decides again with the same rule.

Marker lifetime: only a journal below a marker's height consults it, and journals are created in height order, so
a marker at or below the lowest pending journal can serve no decision any more: each commit deletes those (and
writes markers only while a journal below its height stays pending). The markers kept are thus the revivals of
the pending window at most, few (reverts), and the store mirrors them in memory (``Revivals``, read at open), so
deleting a journal consults them without a LevelDB lookup.

Lookups: a node the parent's tree held (``reused``) is skipped; an internal node over a child that was not stored
before this block cannot be in a pending journal (every node of a pending journal was in a tree that is still
fully stored, children included), so it needs no lookup either: in practice one ``N`` lookup per changed leaf at
commit, and none when a journal is deleted.

Per replaced node that is one ``J`` entry (32 bytes) and, K blocks later, one ``N`` delete.
Format 1 (before markers) also kept a ``P`` + hash -> height8 index per journaled node and took a revived node
out of its journal instead; its journals are valid here unchanged (they hold no revived node, and later revivals
get markers). Its ``P`` rows are never read: a store that still has some deletes those of each journal the
store held at open along with that journal (``legacy_until``), and its first commit that journals or marks
writes format 2, which the older code refuses to open (it would not see the markers and could delete a revived node).

Mode changes: archive -> pruned journals from the next commit on; the history an archive store already holds is
kept (it is never journaled; a node of it revived and replaced again while pruned is journaled like any other).
Pruned -> archive stops journaling and forgets the pending journals (``J`` rows deleted, their nodes kept), still
at most ``MAX_JOURNALS_PER_COMMIT`` a commit and marking revivals against the rest meanwhile; the heights pruned
before stay unreadable. A larger K grows the window from the next commits, a smaller K shrinks it as above.
Opening a store does not change it: only commits do.

Key layout (``ledger.storage``'s table): ``b"J" + height8`` -> the 32-byte hashes of the nodes block ``height``
replaced, concatenated; ``b"A" + node_hash32`` -> ``height8``, the latest height that wrote the stored node
again (kept while a pending journal is below it). The functions here only add to the block's write batch and
read the database; ``ledger.storage`` owns both (no plyvel here).
"""

from __future__ import annotations

from typing import AbstractSet as Set, Iterable, Mapping, Sequence

from ledger.errors import StorageError

P_NODE = b"N"  # sparse-Merkle node rows (``ledger.storage``)
P_JOURNAL = b"J"
P_REVIVED = b"A"
P_LEGACY_PENDING = b"P"  # format 1's node -> journal index: only deleted, never written or read
MAX_JOURNALS_PER_COMMIT = 4  # journals deleted (or forgotten) per commit at most: a smaller K converges gradually


def _h8(height: int) -> bytes:
    return height.to_bytes(8, "big")


class Revivals:
    """The revival markers (``A`` rows), mirrored in memory by the store: deleting a journal consults one per
    node, and a dict answers that without a LevelDB lookup. Only markers a pending journal can consult are kept
    (height above the lowest pending journal), so they are few: the revivals of the last K blocks at most."""

    def __init__(self) -> None:
        self.height_of: dict[bytes, int] = {}  # node hash -> the latest height that revived it
        self._by_height: dict[int, list[bytes]] = {}  # height -> nodes marked then, heights ascending

    @classmethod
    def load(cls, rows: Iterable[tuple[bytes, bytes]]) -> "Revivals":
        """From the ``A`` rows (key, value); ``StorageError`` naming a row that is not ``A`` + hash32 -> height8."""
        marks = cls()
        found: list[tuple[int, bytes]] = []
        for key, raw in rows:
            if len(key) != 33 or len(raw) != 8:
                raise StorageError(f"pruning marker {key.hex()[:20]}… is corrupt: a {len(key)}-byte key and a "
                                   f"{len(raw)}-byte value; expected 33 (A + node hash) and 8 (height)")
            found.append((int.from_bytes(raw, "big"), key[1:]))
        for height, node_hash in sorted(found):
            marks.height_of[node_hash] = height
            marks._by_height.setdefault(height, []).append(node_hash)
        return marks

    def useless(self, low: int | None) -> list[bytes]:
        """The marked nodes whose marker is at most ``low`` (the lowest pending journal; None: none pending):
        only a journal below a marker consults it, so these can go."""
        out = []
        for height, nodes in self._by_height.items():
            if low is not None and height > low:
                break
            out.extend(x for x in nodes if self.height_of.get(x) == height)
        return out

    def apply(self, height: int, marked: Sequence[bytes], unmarked: Sequence[bytes], low: int | None) -> None:
        """What a commit at ``height`` wrote: ``unmarked`` (``useless(low)``) deleted, then ``marked`` put."""
        for node_hash in unmarked:
            del self.height_of[node_hash]
        for old in [h for h in self._by_height if low is None or h <= low]:
            del self._by_height[old]
        if marked:
            self._by_height[height] = list(marked)
            for node_hash in marked:
                self.height_of[node_hash] = height


def add_journal_and_prune(db, wb, journals: Sequence[int], history: int | None, height: int,
                          smt_nodes: Mapping[bytes, bytes], replaced: Sequence[bytes], reused: Set[bytes],
                          revivals: Revivals, legacy_until: int = -1
                          ) -> tuple[list[int], list[bytes], list[bytes], list[bytes], int | None]:
    """Add to ``wb`` (block ``height``'s batch): this block's journal (``history`` K set: a pruned store), the
    deletion of the oldest due journals (pruned: with their nodes not revived since; archive, ``history`` None:
    the journals only, their nodes kept), the markers no pending journal can consult any more, and the markers of
    the stored nodes this block writes again (when a journal below this height stays pending). ``legacy_until``:
    journals up to this height may have format 1 ``P`` rows (deleted with them). Reads nothing but ``db``.

    ``journals``: the heights with a journal, ascending. Returns (journal heights dropped, nodes deleted, nodes
    marked, nodes unmarked, the lowest pending journal afterwards or None) for the store's mirrors
    (``Revivals.apply``)."""
    h8 = _h8(height)
    journaled = history is not None and bool(replaced)
    if journaled:
        wb.put(P_JOURNAL + h8, b"".join(replaced))
    if history is None:
        dropped = list(journals[:MAX_JOURNALS_PER_COMMIT])  # archive: forget pending journals, keep their nodes
    else:
        dropped = [j for j in journals[:MAX_JOURNALS_PER_COMMIT] if j <= height - history]
    pruned: list[bytes] = []
    marker_of, delete = revivals.height_of.get, wb.delete
    for j in dropped:
        nodes = read_journal(db, j)
        if j <= legacy_until:
            for node_hash in nodes:
                delete(P_LEGACY_PENDING + node_hash)
        if history is not None:
            for node_hash in nodes:
                if node_hash in smt_nodes or marker_of(node_hash, -1) > j:
                    continue  # written again by this block, or revived after journal j: a kept tree holds it
                delete(P_NODE + node_hash)
                pruned.append(node_hash)
        delete(P_JOURNAL + _h8(j))
    rest = journals[len(dropped):]  # dropped is a prefix of journals
    low = rest[0] if rest else (height if journaled else None)
    unmarked = revivals.useless(low)
    for node_hash in unmarked:
        delete(P_REVIVED + node_hash)
    marked = find_revived(db, smt_nodes, reused) if rest else []  # only a journal below ``height`` consults one
    for node_hash in marked:
        wb.put(P_REVIVED + node_hash, h8)
    return dropped, pruned, marked, unmarked, low


def find_revived(db, smt_nodes: Mapping[bytes, bytes], reused: Set[bytes]) -> list[bytes]:
    """The written nodes that are stored already though the parent's tree does not hold them (revivals).

    ``smt_nodes`` lists children before parents. A node of the parent's tree (``reused``) is no revival. A node
    not stored before this block is none either, and an internal node over such a child ("fresh", transitively)
    cannot be in a pending journal (their nodes' subtrees are stored), so it needs no lookup: if it is stored at
    all, it is old history that no pending journal holds, and a marker would change no decision. Everything
    else costs one ``N`` lookup.
    """
    get = db.get
    fresh: set[bytes] = set()  # written here, not in the parent's tree, and not stored (or over such a child)
    found: list[bytes] = []
    for node_hash, raw in smt_nodes.items():
        if node_hash in reused:
            continue
        if raw[1] == 1 and (raw[4:36] in fresh or raw[38:70] in fresh):  # internal node over a fresh child
            fresh.add(node_hash)
            continue
        if get(P_NODE + node_hash) is None:
            fresh.add(node_hash)
        else:
            found.append(node_hash)
    return found


def read_journal(db, height: int) -> list[bytes]:
    """The node hashes of height ``height``'s journal ([] if none); ``StorageError`` if the row is corrupt."""
    raw = db.get(P_JOURNAL + _h8(height))
    if raw is None:
        return []
    if len(raw) % 32:
        raise StorageError(f"pruning journal of height {height} is corrupt: {len(raw)} bytes; expected a multiple "
                           f"of 32 (node hashes)")
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]
