"""State pruning: the journal of replaced sparse-Merkle nodes and the deletion of old heights' trees.

Theory of operation
-------------------
The node serves state only at the head, so a pruned store keeps the sparse-Merkle trees of heights
``head - K .. head`` and deletes every node none of them references. Each block's ``SmtUpdate.replaced`` (the
parent-tree nodes its tree no longer references) is journaled under the block's height (``J`` + one ``P`` per
node) in the block's own batch; committing height ``h`` deletes the journals of heights ``<= h - K`` with their
nodes, in that same batch (at most ``MAX_JOURNALS_PER_COMMIT`` journals a commit, oldest first, so shrinking K
spreads the work). A crash leaves the previous block or the new one with its journal and deletions, never half.

A node replaced at height j can be written again later (a value goes A -> B -> A over the same siblings: the
same bytes, the same hash). Before its journal is deleted the node is then part of a kept tree again, so every
commit first *neutralises* such writes: a written node found in a journal (``P`` row) leaves that journal (the
``J`` row is rewritten without it, the ``P`` row deleted). Invariants (tested in ``tests/ledger/test_pruning.py``):
no node of the head's tree is in a journal; a journal's nodes are exactly its ``P`` rows; the stored nodes are
the nodes of the kept trees. Checking a written node costs one ``P`` lookup only where it can be a revival: a
node the parent's tree held (``reused``) is skipped, and an internal node with a child that is new and in no
journal cannot be in one (a stored node's children are stored), so in practice one lookup per changed leaf.

Mode changes: archive -> pruned journals from the next commit on; the history an archive store already holds is
kept (it is never journaled). Pruned -> archive stops journaling and forgets the pending journals (``J``/``P``
rows deleted, their nodes kept), still at most ``MAX_JOURNALS_PER_COMMIT`` a commit and neutralising against the
rest meanwhile; the heights pruned before stay unreadable. A larger K grows the window from the next commits,
a smaller K shrinks it as above. Opening a store does not change it: only commits do.

Key layout (``ledger.storage``'s table): ``b"J" + height8`` -> the 32-byte hashes of the nodes block ``height``
replaced, concatenated; ``b"P" + node_hash32`` -> ``height8``, the journal the node sits in. The functions here
only add to the block's write batch and read the database; ``ledger.storage`` owns both (no plyvel here).
"""

from __future__ import annotations

from typing import AbstractSet as Set, Mapping, Sequence

from ledger.errors import StorageError

P_NODE = b"N"  # sparse-Merkle node rows (``ledger.storage``)
P_JOURNAL = b"J"
P_PENDING = b"P"
MAX_JOURNALS_PER_COMMIT = 4  # journals deleted (or forgotten) per commit at most: a smaller K converges gradually


def _h8(height: int) -> bytes:
    return height.to_bytes(8, "big")


def add_journal_and_prune(db, wb, journals: Sequence[int], history: int | None, height: int,
                          smt_nodes: Mapping[bytes, bytes], replaced: Sequence[bytes],
                          reused: Set[bytes]) -> tuple[list[int], set[int], list[bytes]]:
    """Add to ``wb`` (block ``height``'s batch): the neutralisation of journaled nodes this block writes again,
    this block's journal (``history`` K set: a pruned store), and the deletion of the oldest due journals
    (pruned: with their nodes; archive, ``history`` None: the journals only, their nodes kept).

    ``journals``: the heights with a journal, ascending. Returns (journal heights dropped, heights whose journal
    became empty, nodes deleted)."""
    revived = find_revived(db, smt_nodes, reused) if journals else {}
    for nodes in revived.values():
        for node_hash in nodes:
            wb.delete(P_PENDING + node_hash)
    h8 = _h8(height)
    if history is not None and replaced:
        wb.put(P_JOURNAL + h8, b"".join(replaced))
        for node_hash in replaced:
            wb.put(P_PENDING + node_hash, h8)
    if history is None:
        dropped = list(journals[:MAX_JOURNALS_PER_COMMIT])  # archive: forget pending journals, keep their nodes
    else:
        dropped = [j for j in journals[:MAX_JOURNALS_PER_COMMIT] if j <= height - history]
    pruned: list[bytes] = []
    for j in dropped:
        skip = revived.get(j, ())
        for node_hash in read_journal(db, j):
            if node_hash in skip:
                continue  # written again by this block: neutralised above
            wb.delete(P_PENDING + node_hash)
            if history is not None and node_hash not in smt_nodes:
                wb.delete(P_NODE + node_hash)
                pruned.append(node_hash)
        wb.delete(P_JOURNAL + _h8(j))
    emptied: set[int] = set()
    for j, nodes in revived.items():
        if j in dropped:
            continue
        rest = [x for x in read_journal(db, j) if x not in nodes]
        if rest:
            wb.put(P_JOURNAL + _h8(j), b"".join(rest))
        else:
            wb.delete(P_JOURNAL + _h8(j))
            emptied.add(j)
    return dropped, emptied, pruned


def find_revived(db, smt_nodes: Mapping[bytes, bytes], reused: Set[bytes]) -> dict[int, set[bytes]]:
    """The written nodes that sit in a pending journal, by journal height.

    ``smt_nodes`` lists children before parents. A node of the parent's tree (``reused``) is in no journal
    (invariant). A node not stored is in none either, and then no node above it is stored (a stored node's
    children are stored): an internal node with a child written here that is neither reused nor journaled
    is new, and needs no lookup. Everything else costs one ``P`` lookup.
    """
    get = db.get
    clear: set[bytes] = set()  # written here, not in the parent's tree, in no journal
    found: dict[int, set[bytes]] = {}
    for node_hash, raw in smt_nodes.items():
        if node_hash in reused:
            continue
        if raw[1] == 1 and (raw[4:36] in clear or raw[38:70] in clear):  # internal node over a new child
            clear.add(node_hash)
            continue
        at = get(P_PENDING + node_hash)
        if at is None:
            clear.add(node_hash)
        else:
            found.setdefault(int.from_bytes(at, "big"), set()).add(node_hash)
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
