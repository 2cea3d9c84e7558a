"""Stable outcome codes of the state transition.

Two families, never mixed:

* **Failure reasons** (``Reason``): a transaction that is well formed and signed but breaks a rule. It is
  committed with ``status = reason.status`` and ``reason = reason.name`` in its result leaf, its events are
  empty and its nonce still advances. Status 0 means applied. A status number and its name are part of the
  wire format (receipts carry them): never renumber or rename one, only append.
* **Admission codes** (``ADMISSION_CODES``): why a transaction can *never* enter a block (malformed,
  badly signed, other chain, wrong nonce). They are raised as ``InvalidTransaction`` whose ``code`` is the
  admission code, so a mempool or API can map it without parsing the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import InvalidTransaction, LedgerError


@dataclass(frozen=True, slots=True)
class Reason:
    """A failure outcome: ``status`` (wire int), ``name`` (wire str) and a message for a support agent."""

    status: int
    name: str
    message: str


APPLIED_STATUS = 0
APPLIED_REASON = ""

UNAUTHORIZED = Reason(1, "unauthorized", "The sender does not hold the role this action requires.")
INSUFFICIENT_BALANCE = Reason(2, "insufficient_balance", "The sender's balance is lower than the amount.")
MINT_CAP_EXCEEDED = Reason(3, "mint_cap_exceeded",
                           "Minting this amount would take the total supply above the policy's mint cap.")
INVALID_AMOUNT = Reason(4, "invalid_amount", "The amount must be a positive whole number of coin units.")
SELF_TRANSFER = Reason(5, "self_transfer", "The sender and the recipient are the same account.")
MEMO_TOO_LONG = Reason(6, "memo_too_long", "The memo is longer than the allowed number of characters.")

# --- issue 6: coin core, governance, customers, compliance, tiers, privileges, coupons: statuses 10..39 ---
# (coin-core engineer appends here)

# --- issue 6: orders, refunds, tickets, feedback, compensation, training: statuses 40..79 ---
# (customer-service-flows engineer appends here)

# Every Reason defined above, collected (a status or name used twice is a bug caught at import).
ALL_REASONS: tuple[Reason, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Reason))
if len({r.status for r in ALL_REASONS}) != len(ALL_REASONS) or len({r.name for r in ALL_REASONS}) != len(ALL_REASONS):
    raise RuntimeError("ledger.reasons: a failure status or name is defined twice")
BY_STATUS: dict[int, Reason] = {r.status: r for r in ALL_REASONS}
BY_NAME: dict[str, Reason] = {r.name: r for r in ALL_REASONS}


class TxFailure(LedgerError):
    """Raised inside a ``process_*`` step when a rule is broken; the executor turns it into a failed result."""

    code = "tx_failure"

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.name}: {detail or reason.message}")
        self.reason = reason
        self.detail = detail


# --- admission codes: why a transaction can never enter a block -------------------------------------------
WRONG_CHAIN = "wrong_chain"
UNKNOWN_KIND = "unknown_kind"
BAD_PAYLOAD = "bad_payload"
BAD_SIGNATURE = "bad_signature"
MALFORMED = "malformed_tx"
NONCE_TOO_LOW = "nonce_too_low"  # already used: a replay or a stale duplicate
NONCE_GAP = "nonce_gap"  # a later nonce: may become valid once the gap is filled
DUPLICATE_TX = "duplicate_tx"

ADMISSION_CODES: tuple[str, ...] = (
    WRONG_CHAIN, UNKNOWN_KIND, BAD_PAYLOAD, BAD_SIGNATURE, MALFORMED, NONCE_TOO_LOW, NONCE_GAP, DUPLICATE_TX,
)


def invalid_tx(code: str, message: str) -> InvalidTransaction:
    """Build an ``InvalidTransaction`` whose ``code`` is the admission code (for ``raise``)."""
    if code not in ADMISSION_CODES:
        raise ValueError(f"unknown admission code {code!r}; expected one of {', '.join(ADMISSION_CODES)}")
    err = InvalidTransaction(f"{code}: {message}")
    err.code = code  # instance attribute shadows the class default "invalid_tx"
    return err
