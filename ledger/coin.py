"""An account's coin view, read by the node's API (lots, limits and customer data in one document).

The coin's rules live by concern: ``ledger.lots`` (lots, expiry, supply, credit/spend/clawback/move),
``ledger.limits`` (freezes, daily outflow, second factor) and ``ledger.customers`` (customers, branches,
earnings, tiers, privileges). ``get_customer`` and ``get_branch_of`` are re-exported for node readers.
"""

from __future__ import annotations

from ledger.context import DAY_MS
from ledger.customers import (  # noqa: F401  (get_customer, get_branch_of: node readers use them from here)
    PRIVILEGE_CODES, get_branch_of, get_customer, get_earned, get_privilege_expiry, get_tier, has_privilege,
)
from ledger.limits import get_freeze, get_second_key
from ledger.lots import get_expiring, get_spendable
from ledger.state import StateReader, get_account

EXPIRING_WINDOW_MS = 30 * DAY_MS  # "lots expiring in the next 30 days" in an account view


def get_account_view(state: StateReader, account: bytes, now_ms: int) -> dict[str, object]:
    """Return what a customer or agent sees of an account at ``now_ms`` (use the head block's time).

    ``balance`` is the spendable balance: lots dead at ``now_ms`` are never shown, swept or not.
    """
    customer = get_customer(state, account)
    freeze = get_freeze(state, account)
    return {
        "balance": get_spendable(state, account, now_ms),
        "nonce": get_account(state, account).nonce,
        "expiring": [[e, a] for e, a in get_expiring(state, account, now_ms, EXPIRING_WINDOW_MS)],
        "tier": get_tier(state, account),
        "lifetime_earned": get_earned(state, account),
        "privileges": {p: get_privilege_expiry(state, account, p) for p in PRIVILEGE_CODES
                       if has_privilege(state, account, p, now_ms)},
        "customer": None if customer is None else {
            "kyc_level": customer.kyc_level, "commitment": customer.commitment.hex(), "branch": customer.branch,
            "registered_at_ms": customer.registered_at_ms, "erased_at_ms": customer.erased_at_ms},
        "frozen": None if freeze is None else {"reason_code": freeze.reason_code, "height": freeze.height},
        "branch": get_branch_of(state, account),
        "has_second_factor": get_second_key(state, account) is not None,
    }
