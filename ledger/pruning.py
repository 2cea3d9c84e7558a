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
unless x's marker says it was revived at a height > j; a marker <= j goes with x (that revival was replaced
again, by journal j or earlier). A node this very block writes is never deleted.

Why that is exact (``tests/ledger/test_pruning.py`` checks it against LevelDB after every block, over random
update sequences with frequent A -> B -> A, deletions, restarts and K 1..4): x in journal j means x is not in
tree(j); a later tree holds x only if some block r > j wrote it back while its parent's tree did not hold it, a
revival. While journal j is pending, x is stored, so that revival is found and marked (marker >= r > j). So "no
marker above j" is exactly "no tree of heights j..head holds x", and x may go. A skipped x is in the head's tree
or in a later journal (it was replaced again after its revival), which decides again with the same rule. Markers
are rare (reverts); one whose node stays in the head's tree stays too (a few bytes): it is true and harmless,
since only journals below its height consult it, and those are gone or will skip correctly.

Lookups: a node the parent's tree held (``reused``) is skipped; an internal node over a child that was not stored
before this block cannot be in a pending journal (every node of a pending journal was in a tree that is still
fully stored, children included), so it needs no lookup either: in practice one ``N`` lookup per changed leaf at
commit, and one ``A`` lookup per node when its journal is deleted. Markers are only written while journals are
pending: a revival matters only to a journal below it, and later journals are all above it.

Per replaced node that is one ``J`` entry (32 bytes) and, K blocks later, one ``N`` delete and one ``A`` lookup.
Format 1 (before markers) also kept a ``P`` + hash -> height8 index per journaled node and took a revived node
out of its journal instead; its journals are valid here unchanged (they hold no revived node, and later revivals
get markers). Its ``P`` rows are never read: a store that still has some deletes those of each journal the
store held at open along with that journal (``legacy_until``), and the first commit writes format 2, which the
older code refuses to open (it would not see the markers and could delete a revived node).

Mode changes: archive -> pruned journals from the next commit on; the history an archive store already holds is
kept (it is never journaled; a node of it revived and replaced again while pruned is journaled like any other).
Pruned -> archive stops journaling and forgets the pending journals (``J`` rows deleted, their nodes kept), still
at most ``MAX_JOURNALS_PER_COMMIT`` a commit and marking revivals against the rest meanwhile; the heights pruned
before stay unreadable. A larger K grows the window from the next commits, a smaller K shrinks it as above.
Opening a store does not change it: only commits do.

Key layout (``ledger.storage``'s table): ``b"J" + height8`` -> the 32-byte hashes of the nodes block ``height``
replaced, concatenated; ``b"A" + node_hash32`` -> ``height8``, the latest height that wrote the stored node
again. The functions here only add to the block's write batch and read the database; ``ledger.storage`` owns both
(no plyvel here).
"""

from __future__ import annotations

from typing import AbstractSet as Set, Mapping, Sequence

from ledger.errors import StorageError

P_NODE = b"N"  # sparse-Merkle node rows (``ledger.storage``)
P_JOURNAL = b"J"
P_REVIVED = b"A"
P_LEGACY_PENDING = b"P"  # format 1's node -> journal index: only deleted, never written or read
MAX_JOURNALS_PER_COMMIT = 4  # journals deleted (or forgotten) per commit at most: a smaller K converges gradually


def _h8(height: int) -> bytes:
    return height.to_bytes(8, "big")


def add_journal_and_prune(db, wb, journals: Sequence[int], history: int | None, height: int,
                          smt_nodes: Mapping[bytes, bytes], replaced: Sequence[bytes], reused: Set[bytes],
                          legacy_until: int = -1) -> tuple[list[int], list[bytes]]:
    """Add to ``wb`` (block ``height``'s batch): the markers of the stored nodes this block writes again (while
    journals are pending), this block's journal (``history`` K set: a pruned store), and the deletion of the
    oldest due journals (pruned: with their nodes not revived since; archive, ``history`` None: the journals
    only, their nodes kept). ``legacy_until``: journals up to this height may have format 1 ``P`` rows (deleted
    with them).

    ``journals``: the heights with a journal, ascending. Returns (journal heights dropped, nodes deleted)."""
    h8 = _h8(height)
    if journals:
        for node_hash in find_revived(db, smt_nodes, reused):
            wb.put(P_REVIVED + node_hash, h8)
    if history is not None and replaced:
        wb.put(P_JOURNAL + h8, b"".join(replaced))
    if history is None:
        dropped = list(journals[:MAX_JOURNALS_PER_COMMIT])  # archive: forget pending journals, keep their nodes
    else:
        dropped = [j for j in journals[:MAX_JOURNALS_PER_COMMIT] if j <= height - history]
    pruned: list[bytes] = []
    get, delete = db.get, wb.delete
    for j in dropped:
        nodes = read_journal(db, j)
        if j <= legacy_until:
            for node_hash in nodes:
                delete(P_LEGACY_PENDING + node_hash)
        if history is not None:
            for node_hash in nodes:
                if node_hash in smt_nodes:
                    continue  # written by this block: in the head's tree (a revival is marked above)
                at = get(P_REVIVED + node_hash)
                if at is not None:
                    if len(at) != 8:
                        raise StorageError(f"pruning marker of node {node_hash.hex()[:16]}… is corrupt: {len(at)} "
                                           f"bytes; expected 8 (the height that wrote the node again)")
                    if int.from_bytes(at, "big") > j:
                        continue  # revived after journal j: a kept tree (or a later journal) holds it
                    delete(P_REVIVED + node_hash)  # that revival was replaced again, by journal j at the latest
                delete(P_NODE + node_hash)
                pruned.append(node_hash)
        delete(P_JOURNAL + _h8(j))
    return dropped, pruned


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
