"""The documents a node answers, as ``TypedDict``s (plain JSON dicts: ``--json`` prints them as they are).

Only the fields a client relies on are declared; a node may add more. Amounts are integers: coins, or minor
units of a currency (``currency``/``base_currency`` name it); times are ms since the epoch (``*_ms``).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class Submitted(TypedDict, total=False):
    """What a submission answers (plus, from ``Client.submit``, the kind and nonce used)."""

    tx_hash: str
    status: str  # "pending"
    kind: str
    nonce: int


class BatchResult(TypedDict, total=False):
    """One tx of a batch: admitted (``tx_hash``, ``status``) or refused (``error``: {code, message})."""

    tx_hash: str
    status: str
    error: dict[str, str]
    retry_after: float


class TxStatus(TypedDict, total=False):
    """pending / committed / evicted / unknown. A committed tx has ``outcome`` applied or failed; a failed one
    has ``reason`` (the rule's code, on chain) and ``detail`` (the rule's message, kept by the node)."""

    tx_hash: str
    status: Literal["pending", "committed", "evicted", "unknown"]
    height: int | None
    index: int
    outcome: Literal["applied", "failed"]
    status_code: int
    reason: str
    detail: str


class Account(TypedDict, total=False):
    account: str
    balance: int
    nonce: int
    next_nonce: int
    tier: str
    height: int
    timestamp_ms: int


class HistoryItem(TypedDict, total=False):
    height: int
    index: int
    tx_hash: str
    kind: str
    sender: str
    nonce: int
    result: Literal["applied", "failed"]
    status_code: int
    reason: str
    events: list[list[Any]]
    timestamp_ms: int


class HistoryPage(TypedDict, total=False):
    """Newest first; continue with ``before=next_before`` until it is None (then the page reached genesis)."""

    account: str
    items: list[HistoryItem]
    scanned_to: int
    next_before: int | None


class Status(TypedDict, total=False):
    chain_id: str
    node: str
    height: int
    last_block_hash: str
    state_root: str
    round: int
    consensus_height: int
    peers: int
    peer_names: list[str]
    validators: int
    mempool: int
    validator: str
    healthy: bool


class Block(TypedDict, total=False):
    height: int
    hash: str
    timestamp_ms: int
    tx_hashes: list[str]


class Policy(TypedDict, total=False):
    version: int
    current_version: int
    policy: dict[str, Any]
    changes: list[dict[str, Any]]


class ProposalPage(TypedDict, total=False):
    proposals: list[dict[str, Any]]


class AuditPage(TypedDict, total=False):
    """Records of personal-data reads; continue with ``since=next`` until it is None."""

    records: list[dict[str, Any]]
    next: int | None


class ListPage(TypedDict, total=False):
    """A page of a list route, newest first; continue with ``cursor=next_cursor`` until it is None."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class StoredData(TypedDict, total=False):
    """A vault write: the salt and commitment for the on-chain record."""

    customer: str
    salt: str
    commitment: str


class TextRecord(TypedDict, total=False):
    kind: str
    text: str
    salt: str
    commitment: str


Document = dict[str, Any]  # a document whose shape the client does not fix (report, ticket, order, proof, ...)
