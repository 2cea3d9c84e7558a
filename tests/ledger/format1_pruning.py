"""Format 1's pruning writer (``ledger/pruning.py`` as of fd5ce17, before revival markers), kept only to build
format 1 stores in tests: a ``J`` journal per height plus a ``P`` + node_hash -> height8 row per journaled node,
and a node written again taken out of its journal. ``tests/ledger/test_pruning.py`` commits with it, then opens the
store with the current code and checks that it prunes exactly and drops the ``P`` rows.
"""

from __future__ import annotations

from typing import AbstractSet as Set, Mapping, Sequence

from ledger.pruning import MAX_JOURNALS_PER_COMMIT, P_JOURNAL, P_LEGACY_PENDING as P_PENDING, P_NODE, read_journal


def _h8(height: int) -> bytes:
    return height.to_bytes(8, "big")


def format1_hook(db, wb, journals, history, height, smt_nodes, replaced, reused, revivals, legacy_until=-1):
    """``ledger.pruning.add_journal_and_prune``'s signature and result over format 1's writer (no markers; the
    store's in-memory journal list may keep an emptied journal: harmless, its row reads as empty)."""
    dropped, _emptied, pruned = add_journal_and_prune(db, wb, journals, history, height, smt_nodes, replaced, reused)
    return dropped, pruned, [], [], None


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


