"""What every state-transition step sees: the execution context, the policy defaults, and the rule check.

Kept apart from ``ledger.process`` (whose package import loads every kind) so that shared rule modules such
as ``ledger.lots`` can use it while the kinds import them: ``ledger.process.common`` re-exports all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ledger.reasons import Reason, TxFailure
from ledger.state import Overlay, get_policy_int
from ledger.types import AccountId, Hash32, Height, TimestampMs

# Policy parameters with their code defaults; a genesis file (and later, governance) may override them.
# Every parameter of issue 6 is declared here once (names are on-chain: never rename, only add).
DAY_MS = 86_400_000
DEFAULT_POLICY: dict[str, int | str] = {
    "mint_cap": 10**15,                      # total supply ceiling, smallest units
    # coin lots
    "coin_lifetime_ms": 365 * DAY_MS,        # a credited lot expires this long after its block time
    # earning on confirmed orders: floor(fiat_minor * earn_rate_bp / 10_000 * tier_multiplier_pct / 100)
    "earn_rate_bp": 100,                     # 1 coin per 100 fiat minor units at the base tier
    "tier_silver_threshold": 10_000,         # coins earned inside tier_window_ms to reach each tier
    "tier_gold_threshold": 50_000,
    "tier_platinum_threshold": 200_000,
    "tier_base_multiplier_pct": 100,
    "tier_silver_multiplier_pct": 125,
    "tier_gold_multiplier_pct": 150,
    "tier_platinum_multiplier_pct": 200,
    # rewards
    "feedback_reward": 50,                   # coins for feedback on a resolved ticket or confirmed order (once)
    "training_reward": 500,                  # coins for a completed training course (once per course)
    "compensation_cap_per_ticket": 2_000,    # total coins compensated on one complaint ticket
    # orders and refunds
    "max_redeem_share_bp": 5_000,            # at most this share of an order's fiat amount paid in coins
    "coin_value_minor": 1,                   # fiat minor units one coin is worth when redeemed on an order
    "refund_window_ms": 30 * DAY_MS,         # a paid order can be refunded this long after payment
    "refund_second_factor_threshold": 100_000,  # refunds above this fiat amount need the second factor
    # KYC and transfers
    "daily_outflow_kyc0": 1_000,             # coins a customer may send/redeem per UTC day, by KYC level
    "daily_outflow_kyc1": 20_000,
    "daily_outflow_kyc2": 500_000,
    "second_factor_threshold": 10_000,       # transfers above this amount need the second-factor signature
    # privileges
    "privilege_priority_price": 1_000,
    "privilege_vip_price": 5_000,
    "privilege_lifetime_ms": 90 * DAY_MS,
    # limits (issue 12): rolling tiers, compensation per customer, privilege effects
    "tier_window_ms": 365 * DAY_MS,          # tiers count the earnings of this rolling window (they go down)
    "compensation_cap_per_customer": 4_000,  # total coins compensated to one customer per period
    "compensation_period_ms": 30 * DAY_MS,   # the period of that cap (periods are block time // this)
    "privilege_vip_earn_bonus_pct": 10,      # a VIP earns this many percentage points more on its tier multiplier
    # governance (issue 11)
    "proposal_lifetime_ms": 7 * DAY_MS,      # a proposal not decided this long after it was opened expires
    # issue 12, orders: currencies and FX rates (ledger.fx)
    "base_currency": "EUR",                  # coin values, earnings and reports are in this currency
    "currencies": "EUR",                     # comma list of the other currencies orders may use
    "fx_max_age_ms": DAY_MS,                 # an FX rate older than this at the block time is stale
    "fx_max_step_pct": 20,                   # one set-fx-rate moves a currency's rate at most this far (percent)
}

# --- issue 12, sla: SLA targets per category and priority (1 low .. 3 high), in ms; 0 = no target ----------
HOUR_MS = 3_600_000
_SLA_TARGETS_H = {  # category: ((first response p1, p2, p3), (resolution p1, p2, p3)), in hours
    "complaint": ((24, 8, 2), (7 * 24, 3 * 24, 24)),
    "inquiry": ((48, 24, 8), (14 * 24, 7 * 24, 3 * 24)),
    "suggestion": ((7 * 24, 7 * 24, 3 * 24), (0, 0, 0)),
}
for _category, _by_target in _SLA_TARGETS_H.items():
    for _target, _hours in zip(("first_response", "resolution"), _by_target):
        for _priority, _h in enumerate(_hours, start=1):
            DEFAULT_POLICY[f"sla_{_target}_ms_{_category}_p{_priority}"] = _h * HOUR_MS
DEFAULT_POLICY.update({
    "privilege_priority_sla_factor_pct": 50,        # a priority privilege at opening: targets x 50 / 100
    "sla_breach_compensation_first_response": 100,  # coins credited to the customer when a target breaches
    "sla_breach_compensation_resolution": 300,
    "sla_max_wait_ms": 3 * DAY_MS,                  # a wait on the customer credits at most this to the deadlines
})


@dataclass(frozen=True, slots=True)
class TxContext:
    """What a step may see: the state overlay, who sent and signed the tx, and the block it is in."""

    state: Overlay
    sender: AccountId
    signers: tuple[AccountId, ...]
    tx_hash: Hash32
    height: Height
    timestamp_ms: TimestampMs


def verify_rule(ok: bool, reason: Reason, detail: str | Callable[[], str]) -> None:
    """Raise ``TxFailure(reason, detail)`` unless ``ok``; ``detail`` names what was seen and expected.

    ``detail`` may be a function returning the text, so hot paths only format it when the rule is broken.
    """
    if not ok:
        raise TxFailure(reason, detail if type(detail) is str else detail())  # type: ignore[operator]


def get_policy_value(ctx: TxContext, name: str) -> int:
    """Return the integer policy parameter ``name`` in force (chain value, else the code default)."""
    default = DEFAULT_POLICY[name]
    if type(default) is not int:
        raise TypeError(f"policy {name} default is not an int")
    return get_policy_int(ctx.state, name, default)
