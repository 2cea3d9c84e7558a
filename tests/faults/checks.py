"""The invariants checked after each scenario, on the honest nodes.

- **forks**: every height any two honest nodes both hold has one block hash (``GET /v1/blocks/{h}``). Checked
  incrementally (blocks are immutable once committed), against one canonical height -> hash map per network.
- **exactly once**: every acknowledged tx is committed on every honest node (``GET /v1/tx/{hash}``), at a
  (height, index) whose block lists it there, and no tx hash appears twice in the chain (counted over every
  block's tx list while checking forks). A tx a node has shown committed is not asked of that node again until
  the node restarts (a crash, a truncated or restored store): then every acknowledged tx is asked again. (Every
  read is signed, and a node allows one signer a bounded number of signed requests per replay window: asking
  every node for every tx after every scenario ran the harness's auditor into that quota, 429.)
- **supply (API)**: on every honest node, the report's coin flows over all branches — created (minted +
  earned + rewarded + compensated + refunded) − redeemed − expired − clawed back — equal the sum of the
  spendable balances (``/v1/accounts/{id}``) of every account the workload used (only those accounts ever
  hold coins; the coin lifetime is a year, so no lot dies during a run).
- **supply (store)**, when the network is shut down: each honest node's LevelDB opened read-only by the
  harness: supply == minted − expired − burned (the ledger's own counters) == the sum of every stored
  balance (every ``a`` row), and the same supply on every node.
- **votes**: no honest validator signed two block hashes for one (kind, height, round), as seen on the wire.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.cluster import Cluster

CREATED = ("minted", "earned", "rewarded", "compensated", "refunded")
DESTROYED = ("redeemed", "expired", "clawed_back")
PARALLEL = 16


@dataclass
class ChainView:
    """What the harness has already verified of the chain: canonical hashes and tx occurrences."""

    hashes: dict[int, str] = field(default_factory=dict)
    checked: dict[int, int] = field(default_factory=dict)  # node -> highest height checked on it
    tx_seen: Counter = field(default_factory=Counter)
    tx_where: dict[str, tuple[int, int]] = field(default_factory=dict)
    tx_ok: dict[int, set[str]] = field(default_factory=dict)  # node -> txs it showed committed at their place

    def forget_node(self, i: int) -> None:
        """Node ``i`` restarted: ask it for every acknowledged tx again (its blocks are checked again from
        wherever its head went back to, ``check_forks``)."""
        self.tx_ok.pop(i, None)


async def _gather_bounded(coros, limit: int = PARALLEL):
    sem = asyncio.Semaphore(limit)

    async def run(c):
        async with sem:
            return await c

    return await asyncio.gather(*(run(c) for c in coros))


async def check_forks(c: Cluster, view: ChainView, honest: list[int]) -> list[dict]:
    """Compare every new block of every honest node with the canonical map; return the forks found."""
    forks = []
    for i in honest:
        top = await c.height(i)
        if 0 <= top < view.checked.get(i, 0):  # the node went back (a truncated store): check again from there
            view.checked[i] = top
        lo = view.checked.get(i, 0) + 1
        if top < lo:
            continue
        docs = await _gather_bounded([c.get(i, f"/v1/blocks/{h}") for h in range(lo, top + 1)])
        done = lo - 1
        for h, (code, doc) in zip(range(lo, top + 1), docs):
            if code != 200:
                break
            bh = doc["block_hash"]
            known = view.hashes.get(h)
            if known is None:
                view.hashes[h] = bh
                for index, tx in enumerate(doc.get("txs", [])):
                    view.tx_seen[tx] += 1
                    view.tx_where[tx] = (h, index)
            elif known != bh:
                forks.append({"height": h, "node": c.names[i], "hash": bh[:16], "canonical": known[:16]})
            done = h
        view.checked[i] = done
    return forks


async def check_txs(c: Cluster, view: ChainView, honest: list[int], acked: list[bytes]) -> dict:
    """Every acknowledged tx committed once, at the same place, on every honest node."""
    lost, misplaced = [], []
    for i in honest:
        ok = view.tx_ok.setdefault(i, set())
        ask = [h for h in acked if h.hex() not in ok]
        docs = await _gather_bounded([c.get(i, f"/v1/tx/{h.hex()}") for h in ask])
        for h, (code, doc) in zip(ask, docs):
            if code != 200 or doc.get("status") != "committed":
                lost.append({"tx": h.hex()[:16], "node": c.names[i], "status": doc.get("status", code)})
            elif view.tx_where.get(h.hex()) not in (None, (doc["height"], doc["index"])):
                misplaced.append({"tx": h.hex()[:16], "node": c.names[i]})
            elif h.hex() in view.tx_where:  # placed by the canonical chain: settled for this node
                ok.add(h.hex())
    dup = [h[:16] for h, n in view.tx_seen.items() if n > 1]
    return {"lost": lost, "misplaced": misplaced, "duplicated": dup}


async def check_supply_api(c: Cluster, honest: list[int], accounts: list[bytes]) -> list[dict]:
    """Report flows vs the sum of balances, per honest node, and the same figure on every node."""
    errors, totals = [], {}
    for i in honest:
        code, rep = await c.get(i, "/v1/report")
        if code != 200:
            errors.append({"node": c.names[i], "error": f"report answered {code}"})
            continue
        coins = rep["coins"]
        flows = sum(coins[k] for k in CREATED) - sum(coins[k] for k in DESTROYED)
        docs = await _gather_bounded([c.get(i, f"/v1/accounts/{a.hex()}") for a in accounts])
        if any(code != 200 for code, _ in docs):
            errors.append({"node": c.names[i], "error": "an account read failed"})
            continue
        balances = sum(doc["balance"] for _, doc in docs)
        totals[c.names[i]] = balances
        if balances != flows:
            errors.append({"node": c.names[i], "balances": balances, "report_flows": flows, "coins": coins})
    if len(set(totals.values())) > 1:
        errors.append({"error": "nodes disagree on the total balance", "totals": totals})
    return errors


def check_supply_store(data_dirs: dict[str, Path]) -> tuple[list[dict], dict[str, int]]:
    """Open each stopped node's store: supply == minted - expired - burned == sum of stored balances."""
    from ledger.lots import get_coin_totals
    from ledger.state import PREFIX_ACCOUNT, get_account
    from ledger.storage import Store

    errors, supplies = [], {}
    for name, path in data_dirs.items():
        try:
            store = Store.open(str(path), create=False)
        except Exception as exc:  # a store the node itself could not open is reported, not hidden
            errors.append({"node": name, "error": f"store does not open: {exc}"})
            continue
        try:
            totals = get_coin_totals(store)
            stored = sum(get_account(store, key[1:]).balance
                         for key, _ in store.iter_state(PREFIX_ACCOUNT) if len(key) == 33)
        finally:
            store.close()
        supplies[name] = totals["supply"]
        expected = totals["minted"] - totals["expired"] - totals["burned"]
        if not totals["supply"] == expected == stored:
            errors.append({"node": name, "supply": totals["supply"], "minted-expired-burned": expected,
                           "sum_of_balances": stored})
    if len(set(supplies.values())) > 1:
        errors.append({"error": "nodes disagree on the supply", "supplies": supplies})
    return errors, supplies
