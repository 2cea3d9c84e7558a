"""Every read of a node, in one place: status, tx status, receipt, the account document, history, blocks,
tickets, orders, policy, customers and the account state proof (the report lives in ``node.analytics``).

Theory of operation. Reads answer from the committed state in the store through the ledger's own typed
getters, at the head: every answer is what the head block's ``state_root`` commits to. They run on the
event-loop thread between consensus steps, so a commit never lands halfway through one answer (a proof's
values and its header are from the same height). Store-only reads are functions of the store; ``NodeReads``
binds the few that also need the mempool, the consensus loop or the peer links (given as small ports).

The account document (``get_account``) is the one answer of both ``/v1/accounts/{id}`` and
``/v1/accounts/{id}/coin``: the coin view at the head block's time (expired lots never shown), nonce and
the next nonce counting pending txs, roles, tier, privileges, freeze, KYC.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Callable, Iterable

from ledger import customers, debt, limits, lots
from ledger.context import DAY_MS
from ledger.errors import NotFound
from ledger.events import events_mention
from ledger.genesis import ROLES, Genesis
from ledger.orders import get_order, is_valid_id
from ledger.reasons import BY_NAME
from ledger.process.governance import compute_policy_at, get_policy_change, get_policy_version
from ledger.receipt import build_receipt
from ledger.block import encode_certificate
from ledger.smt import SparseMerkleTree
from ledger.state import get_account as get_account_record, has_role
from ledger.state_proof import STATE_PROOF_VERSION, compute_account_keys
from ledger.tickets import get_ticket
from ledger.tx import decode_tx
from ledger.validator_sets import get_validator_info, get_validator_set_changes, get_validators_at
from node.mempool import Mempool

MAX_POLICY_HISTORY = 1000
EXPIRING_WINDOW_MS = 30 * DAY_MS  # "lots expiring in the next 30 days" in the account document
HISTORY_BUDGET_S = 0.025  # event-loop time one history page may take (checked per block; then it continues)


def jsonable(value: Any) -> Any:
    """Bytes as lowercase hex, tuples as lists, recursively."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def is_id(text: str) -> bool:
    """True iff ``text`` could be an order/ticket/coupon id (1..64 bytes printable, no surrounding spaces)."""
    return is_valid_id(text)


# --- the account document -------------------------------------------------------------------------------------


def compute_next_nonce(state_nonce: int, pending_nonces: Iterable[int]) -> int:
    """The nonce a new tx should use: after the run of pending nonces that follows ``state_nonce``."""
    nxt = state_nonce + 1
    for n in pending_nonces:
        if n == nxt:
            nxt += 1
        elif n > nxt:
            break
    return nxt


def compute_account_document(state: Any, account: bytes, now_ms: int) -> dict[str, Any]:
    """What anyone entitled sees of an account at ``now_ms`` (the head block's time): spendable balance (lots
    dead at ``now_ms`` are never shown, swept or not), nonce, lots expiring within 30 days, tier, privileges,
    customer record, freeze, branch, second factor, roles. Bytes stay bytes (``jsonable`` makes them hex)."""
    customer = customers.get_customer(state, account)
    freeze = limits.get_freeze(state, account)
    record = get_account_record(state, account)
    return {
        "balance": lots.get_spendable(state, account, now_ms),
        "nonce": record.nonce,
        "expiring": [[e, a] for e, a in lots.get_expiring(state, account, now_ms, EXPIRING_WINDOW_MS)],
        "tier": customers.get_tier(state, account, now_ms),
        "tier_earned": customers.get_window_earned(state, account, now_ms),
        "lifetime_earned": customers.get_earned(state, account),
        "debt": debt.get_debt(state, account),  # coins owed after a refund (ledger.debt); spending waits for 0
        "privileges": {p: customers.get_privilege_expiry(state, account, p) for p in customers.PRIVILEGE_CODES
                       if customers.has_privilege(state, account, p, now_ms)},
        "customer": None if customer is None else {
            "kyc_level": customer.kyc_level, "commitment": customer.commitment.hex(), "branch": customer.branch,
            "registered_at_ms": customer.registered_at_ms, "erased_at_ms": customer.erased_at_ms},
        "frozen": None if freeze is None else {"reason_code": freeze.reason_code, "height": freeze.height},
        "branch": customers.get_branch_of(state, account),
        "has_second_factor": limits.get_second_key(state, account) is not None,
        "account": account.hex(), "stored_balance": record.balance,
        "roles": [r for r in ROLES if has_role(state, r, account)],
        "kyc_level": customer.kyc_level if customer else None,
    }


def get_account(store: Any, account: bytes, pending_nonces: Iterable[int] = ()) -> dict[str, Any]:
    """The account document (``compute_account_document``) at the head block's time, with the head and the next
    nonce a new tx should use (after ``pending_nonces``)."""
    head = store.get_header(store.head().height)
    doc = compute_account_document(store, account, head.timestamp_ms)
    doc.update({"height": head.height, "timestamp_ms": head.timestamp_ms,
                "next_nonce": compute_next_nonce(doc["nonce"], pending_nonces)})
    return jsonable(doc)


def build_account_proof(store: Any, chain_id: str, account: bytes) -> dict[str, Any]:
    """The state proof document of ``account`` at the head (see ``ledger.state_proof``)."""
    head = store.head()
    header = store.get_header(head.height)
    tree = SparseMerkleTree(store, cache_nodes=0)
    values = []
    for key in compute_account_keys(account):
        value = store.get_state(key)
        values.append({"key": key.hex(), "value": None if value is None else value.hex(),
                       "proof": tree.prove(header.state_root, key).encode().hex()})
    view = get_account(store, account)
    return {"version": STATE_PROOF_VERSION, "chain_id": chain_id, "account": account.hex(),
            "height": header.height, "header": header.encode().hex(), "block_hash": head.block_hash.hex(),
            "commit": [{"validator": s.validator.hex(), "signature": s.signature.hex()}
                       for s in store.get_certificate(header.height)],
            "validator_set_changes": [c.to_json() for c in get_validator_set_changes(store, header.height)],
            "values": values,
            "decoded": {"balance": view["balance"], "stored_balance": view["stored_balance"],
                        "nonce": view["nonce"], "state_root": header.state_root.hex(),
                        "timestamp_ms": header.timestamp_ms}}


# --- domain records -------------------------------------------------------------------------------------------


def get_ticket_view(store: Any, ticket_id: str) -> dict[str, Any]:
    """A ticket record with its SLA figures; ``NotFound`` when there is no such ticket."""
    ticket = get_ticket(store, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id[:80]!r} does not exist")
    doc = jsonable(asdict(ticket))
    doc.update({"ticket_id": ticket_id, "first_response_ms": ticket.first_response_ms,
                "resolution_ms": ticket.resolution_ms})
    return doc


def get_order_view(store: Any, order_id: str) -> dict[str, Any]:
    """An order record with its status and amount due; ``NotFound`` when there is no such order."""
    order = get_order(store, order_id)
    if order is None:
        raise NotFound(f"order {order_id[:80]!r} does not exist")
    doc = jsonable(asdict(order))
    doc.update({"order_id": order_id, "status": order.status, "amount_due": order.amount_due})
    return doc


def get_customer_view(store: Any, account: bytes) -> dict[str, Any]:
    """The on-chain customer record (KYC, commitment, branch, erasure); never personal data."""
    customer = customers.get_customer(store, account)
    if customer is None:
        raise NotFound(f"account {account.hex()} is not a registered customer")
    doc = jsonable(asdict(customer))
    doc["erased"] = customer.erased
    return doc


def get_policy_view(store: Any, version: int | None) -> dict[str, Any]:
    """Every policy parameter at ``version`` (default: current) and the change history; ``NotFound`` past it."""
    current = get_policy_version(store)
    wanted = current if version is None else version
    if wanted > current:
        raise NotFound(f"policy version {wanted} does not exist; the current version is {current}")
    changes = []
    for v in range(max(1, current - MAX_POLICY_HISTORY + 1), current + 1):
        change = get_policy_change(store, v)
        if change is not None:
            changes.append(jsonable(asdict(change)))
    return {"version": wanted, "current_version": current, "policy": compute_policy_at(store, wanted),
            "changes": changes}


# --- chain reads ----------------------------------------------------------------------------------------------


def get_receipt(store: Any, tx_hash: bytes) -> dict[str, Any]:
    """The receipt of a committed tx (``NotFound`` when it is not on chain)."""
    loc = store.get_tx_location(tx_hash)
    if loc is None:
        raise NotFound(f"tx {tx_hash.hex()} is not committed here; no receipt")
    height, index = loc
    return build_receipt(store.get_block(height), store.get_results(height), index, store.get_certificate(height),
                         get_validator_set_changes(store, height))


def get_block_height(store: Any, text: str, parse_height: Callable[[str], int]) -> int:
    """The committed height named by ``text`` ('latest' or a number); ``NotFound`` above the head."""
    head = store.head().height
    height = head if text == "latest" else parse_height(text)
    if height > head:
        raise NotFound(f"block {height} is not committed here; the head is {head}")
    return height


def get_block(store: Any, height: int, tx_hashes: list[bytes]) -> dict[str, Any]:
    """Header fields, tx hashes and certificate of the block at ``height``."""
    block = store.get_block(height)
    seals = store.get_certificate(height)
    h = block.header
    return {
        "height": h.height, "block_hash": block.hash.hex(), "chain_id": h.chain_id,
        "prev_hash": h.prev_hash.hex(), "timestamp_ms": h.timestamp_ms, "proposer": h.proposer.hex(),
        "tx_count": h.tx_count, "results_root": h.results_root.hex(), "state_root": h.state_root.hex(),
        "validator_set_hash": h.validator_set_hash.hex(), "next_validator_set_hash": h.next_validator_set_hash.hex(),
        "txs": [h.hex() for h in tx_hashes],
        "certificate": [{"validator": s.validator.hex(), "signature": s.signature.hex()} for s in seals],
    }


def get_raw_block(store: Any, height: int) -> dict[str, Any]:
    """The encoded block and certificate (hex) at ``height``: what catch-up verifies and commits."""
    block = store.get_block(height)
    return {"height": height, "block_hash": block.hash.hex(), "block": block.encode().hex(),
            "certificate": encode_certificate(store.get_certificate(height)).hex()}


def get_history(store: Any, account: bytes, limit: int, before: int | None, scan: int, *,
                budget_s: float | None = None, clock: Callable[[], float] = time.perf_counter,
                ) -> dict[str, Any]:
    """Txs sent by or touching ``account``, newest first, scanning at most ``scan`` blocks below ``before``.

    The read runs on the event loop, so one request's work is bounded: the page also ends once ``budget_s``
    (default ``HISTORY_BUDGET_S``; ``clock`` time) is spent, checked after each block (at least one block is
    read per page). Pages end at
    block boundaries; ``next_before`` is the height to pass as ``before`` for the next page (None once the
    scan reached height 1) and ``scanned_to`` the lowest height read.
    """
    start = clock()
    budget_s = HISTORY_BUDGET_S if budget_s is None else budget_s
    head = store.head().height
    top = head if before is None else min(before - 1, head)
    items: list[dict[str, Any]] = []
    h = top
    while h >= 1 and h > top - scan and len(items) < limit:
        if h < top and clock() - start >= budget_s:
            break  # a block boundary: the client continues at next_before, no tx is skipped
        # Most blocks of an idle chain are empty: the header says so without reading the block.
        if store.get_header(h).tx_count == 0:
            h -= 1
            continue
        block = store.get_block(h)
        if block.txs:
            results = store.get_results(h)
            for index in range(len(block.txs) - 1, -1, -1):
                tx = decode_tx(block.txs[index])
                res = results[index]
                if tx.body.sender == account or events_mention(res.events, account):
                    items.append({"height": h, "index": index, "tx_hash": tx.tx_hash.hex(),
                                  "kind": tx.body.kind, "sender": tx.body.sender.hex(),
                                  "nonce": tx.body.nonce,
                                  "result": "applied" if res.status == 0 else "failed",
                                  "status_code": res.status, "reason": res.reason,
                                  "events": [jsonable(e) for e in res.events],
                                  "timestamp_ms": block.header.timestamp_ms})
            # A page ends at a block boundary (it may exceed ``limit`` by the rest of that block), so
            # paging with ``before=next_before`` never skips a tx.
        h -= 1
    return {"account": account.hex(), "items": items, "scanned_to": max(h + 1, 1),
            "next_before": h + 1 if h >= 1 else None}


# --- reads that need more than the store ----------------------------------------------------------------------


class NodeReads:
    """The reads that also need the mempool, consensus or the peer links, each given as a small port.

    ``consensus()`` answers (height, round, fatal) of the consensus loop; ``peers()`` the keys of the
    authenticated peer links; ``recent_block_hashes(height)`` a recent block's tx hashes from memory or None.
    """

    def __init__(self, store: Any, genesis: Genesis, mempool: Mempool, *, name: str, validator: bytes,
                 consensus: Callable[[], tuple[int, int, BaseException | None]],
                 peers: Callable[[], list[bytes]] = list,
                 recent_block_hashes: Callable[[int], list[bytes] | None] = lambda height: None) -> None:
        self.store, self.genesis, self.mempool, self.name, self.validator = store, genesis, mempool, name, validator
        self.consensus, self.peers, self.recent_block_hashes = consensus, peers, recent_block_hashes

    def get_status(self) -> dict[str, Any]:
        """Chain id, node name, head, round, peers, mempool size and validator key."""
        head = self.store.head()
        height, round_, fatal = self.consensus()
        # The set in force for the next height and the branch names on chain (governance changes both)
        names = {key: name for name, key, _ in get_validator_info(self.store)}
        validators = get_validators_at(self.store, head.height + 1)
        connected = self.peers()
        return {
            "chain_id": self.genesis.chain_id, "node": self.name, "height": head.height,
            "last_block_hash": head.block_hash.hex(), "state_root": head.state_root.hex(),
            "round": round_, "consensus_height": height, "peers": len(connected),
            "peer_names": sorted(names.get(k, k.hex()[:16]) for k in connected),
            "validators": len(validators), "mempool": len(self.mempool),
            "validator": self.validator.hex(), "healthy": fatal is None,
        }

    def get_tx_status(self, tx_hash: bytes) -> dict[str, Any]:
        """pending / committed (applied or failed with a reason) / evicted / unknown, with height and index."""
        loc = self.store.get_tx_location(tx_hash)
        if loc is not None:
            height, index = loc
            result = self.store.get_result(height, index)
            doc = {"tx_hash": tx_hash.hex(), "status": "committed", "height": height, "index": index,
                   "outcome": "applied" if result.status == 0 else "failed",
                   "status_code": result.status, "reason": result.reason}
            if result.status != 0:  # the rule's own message (node-local), else what the reason code means
                known = BY_NAME.get(result.reason)
                doc["detail"] = self.store.get_detail(height, index) or (known.message if known else result.reason)
            return doc
        st = self.mempool.status(tx_hash)
        doc: dict[str, Any] = {"tx_hash": tx_hash.hex(), "status": st.state, "height": None}
        if st.reason:
            doc["reason"] = st.reason
        if st.detail:
            doc["detail"] = st.detail
        return doc

    def get_account(self, account: bytes) -> dict[str, Any]:
        """The account document (``get_account``) with the next nonce counting this node's pending txs."""
        return get_account(self.store, account, self.mempool.get_pending_nonces(account))

    def get_block_tx_hashes(self, height: int) -> list[bytes]:
        """The tx hashes of the committed block at ``height`` (recent blocks from memory, else from its results)."""
        hashes = self.recent_block_hashes(height)
        if hashes is None:
            hashes = [r.tx_hash for r in self.store.get_results(height)]
        return hashes

    def get_block(self, height: int) -> dict[str, Any]:
        """The block document at ``height`` (``get_block``)."""
        return get_block(self.store, height, self.get_block_tx_hashes(height))
