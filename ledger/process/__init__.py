"""The registry of transaction kinds: KIND -> ``KindSpec`` (payload class, shape check, step, CLI help).

Adding a kind = in the module of its group (``ledger/process/<group>.py``): a frozen payload dataclass
whose typed fields (``ledger.process.payload``: Account, Amount, Id, ...) are the wire format, in order,
with an ``arg(help, default)`` each; a step ``process_<kind>(ctx, tx) -> list[Event]`` (rules raise
``TxFailure``; events from ``ledger.events``); and ``declare_kind(...)`` in the module's ``SPECS``. Plus
``tests/ledger/test_process_<kind>.py``. The shape check is derived from the field types and the command
``carecoin tx <kind>`` is generated from the spec: nothing to add in ``cli/``. A new group module is one
more name in ``_MODULES`` below.
"""

from __future__ import annotations

import importlib
from typing import Any

from ledger import reasons
from ledger.process.common import KindSpec
from ledger.reasons import invalid_tx

# Modules of ledger/process/ that define kinds; each exports ``SPECS: tuple[KindSpec, ...]``.
_MODULES: tuple[str, ...] = (
    "mint", "transfer",
    # issue 6, coin core / governance / customers / compliance / tiers / privileges / coupons:
    "governance", "customers", "compliance", "privileges", "coupons",
    # issue 6, orders / refunds / tickets / feedback / compensation / training:
    "orders", "tickets", "training",
    # issue 12, orders: FX rates and debt
    "fx", "debt",
)

KINDS: dict[str, KindSpec] = {}
for _name in _MODULES:
    for _spec in importlib.import_module(f"ledger.process.{_name}").SPECS:
        if _spec.name in KINDS:
            raise RuntimeError(f"transaction kind {_spec.name!r} is defined twice")
        KINDS[_spec.name] = _spec


def get_kind(kind: str) -> KindSpec:
    """Return the spec of ``kind``; raise ``InvalidTransaction(unknown_kind)`` if there is none."""
    spec = KINDS.get(kind)
    if spec is None:
        raise invalid_tx(reasons.UNKNOWN_KIND, f"kind {kind!r} is not known; expected one of {', '.join(KINDS)}")
    return spec


def compute_payload(kind: str, payload: Any) -> Any:
    """Check the payload shape of a ``kind`` transaction and return its typed form."""
    return get_kind(kind).compute_payload(payload)
