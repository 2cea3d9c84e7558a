"""Typed errors of the ledger core.

Every class has a stable ``code`` (machine-readable, never renamed) and messages that name what was seen
and what was expected. ``LedgerError`` is the root: callers above the ledger catch it and map ``code`` to
their own surface (HTTP status, CLI exit code).
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error raised by the ledger package."""

    code = "ledger_error"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class DecodeError(LedgerError):
    """Bytes that are not the canonical encoding of the expected structure."""

    code = "decode_error"


class EncodeError(LedgerError):
    """A value that has no canonical encoding (float, map, bool, None, ...)."""

    code = "encode_error"


class SchemaError(LedgerError):
    """A decoded structure whose fields have the wrong count, type or size."""

    code = "schema_error"


class SignatureError(LedgerError):
    """A signature that does not verify, or a signer that is not allowed."""

    code = "bad_signature"


class KeyFileError(LedgerError):
    """A key file that is missing, malformed, or readable by others."""

    code = "key_file"


class ProofError(LedgerError):
    """A Merkle proof that does not lead to the expected root."""

    code = "bad_proof"


class InvalidTransaction(LedgerError):
    """A transaction that can never enter a block (wrong chain, nonce, malformed payload)."""

    code = "invalid_tx"


class InvalidBlock(LedgerError):
    """A block that does not follow the chain rules (parent, height, timestamp, roots)."""

    code = "invalid_block"


class ReceiptError(LedgerError):
    """A receipt that fails verification; ``check`` names the failing check."""

    code = "bad_receipt"

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check


class GenesisError(LedgerError):
    """A genesis file that is malformed or inconsistent."""

    code = "bad_genesis"


class StorageError(LedgerError):
    """The store is locked, corrupt, or was asked for something it does not hold."""

    code = "storage"
    http_status = 500


class NotFound(StorageError):
    """The store does not hold the requested block, transaction or key."""

    code = "not_found"
    http_status = 404
