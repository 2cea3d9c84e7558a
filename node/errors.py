"""Typed errors of the node package.

``NodeError`` is the root. Each class has a stable ``code`` (machine-readable, never renamed) and an
``http_status`` the HTTP API answers with; messages name what was seen and what was expected. The API turns
any of them into ``{"error": {"code", "message"}}``; the CLI turns them into ``click.ClickException``.
"""

from __future__ import annotations


class NodeError(Exception):
    """Root of every error raised by the node package."""

    code = "node_error"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """Return the JSON error body ``{"code", "message"}``."""
        return {"code": self.code, "message": self.message}


class ConfigError(NodeError):
    """A node.toml or network directory that is missing, malformed or inconsistent."""

    code = "bad_config"
    http_status = 500


class MempoolError(NodeError):
    """Root of the mempool's refusals."""

    code = "mempool_error"


class MempoolFull(MempoolError):
    """The mempool is at its count or byte bound; the client should retry after ``retry_after`` seconds."""

    code = "mempool_full"
    http_status = 503

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SenderLimit(MempoolFull):
    """One sender already holds its share of the mempool; the others keep their room."""

    code = "sender_limit"
    http_status = 429


class DuplicateTx(MempoolError):
    """The same transaction (same hash) is already pending."""

    code = "duplicate_tx"
    http_status = 409


class NonceConflict(MempoolError):
    """A different transaction with the same sender and nonce is pending; replace-by-nonce is refused."""

    code = "nonce_conflict"
    http_status = 409


class TxRejected(MempoolError):
    """The ledger's admission check refused the transaction; ``reason`` is the ledger error code."""

    code = "tx_rejected"
    http_status = 400

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class TxTooLarge(MempoolError):
    """A single transaction larger than the mempool's byte bound could never be admitted."""

    code = "tx_too_large"
    http_status = 413


class PeerError(NodeError):
    """A peer link failed: handshake refused, bad frame, unknown channel (a remote fault: count, close)."""

    code = "peer_error"
    http_status = 502

    def __init__(self, message: str, reason: str = "peer_error") -> None:
        super().__init__(message)
        self.reason = reason


class NonceGapTooLarge(MempoolError):
    """The tx's nonce is too far past its sender's next runnable nonce: it could not run for a long time.

    ``observed`` is the tx's nonce, ``expected`` the highest nonce the mempool takes from that sender now.
    """

    code = "nonce_gap_too_large"
    http_status = 400

    def __init__(self, message: str, observed: int, expected: int) -> None:
        super().__init__(message)
        self.observed = observed
        self.expected = expected
