"""The registry of transaction kinds: KIND -> (payload check, process step).

Adding a kind = one module ``ledger/process/<kind>.py`` with ``compute_<kind>(payload)`` (shape check,
raises ``InvalidTransaction``) and ``process_<kind>(ctx, tx) -> events`` (rules, raise ``TxFailure``), one
line in ``KINDS`` below, and ``tests/ledger/test_process_<kind>.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ledger import reasons
from ledger.process import mint, transfer
from ledger.process.common import TxContext
from ledger.reasons import invalid_tx


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One transaction kind: its name, its payload shape check and its state-transition step."""

    name: str
    compute_payload: Callable[[Any], Any]  # shape check: payload -> typed tx, raises InvalidTransaction
    process: Callable[[TxContext, Any], list[list]]  # rules and writes: raises TxFailure


KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        KindSpec(mint.KIND, mint.compute_mint, mint.process_mint),
        KindSpec(transfer.KIND, transfer.compute_transfer, transfer.process_transfer),
    )
}


def get_kind(kind: str) -> KindSpec:
    """Return the spec of ``kind``; raise ``InvalidTransaction(unknown_kind)`` if there is none."""
    spec = KINDS.get(kind)
    if spec is None:
        raise invalid_tx(reasons.UNKNOWN_KIND, f"kind {kind!r} is not known; expected one of {', '.join(KINDS)}")
    return spec


def compute_payload(kind: str, payload: Any) -> Any:
    """Check the payload shape of a ``kind`` transaction and return its typed form."""
    return get_kind(kind).compute_payload(payload)
