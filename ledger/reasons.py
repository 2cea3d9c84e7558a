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
EXECUTION_ERROR = Reason(7, "execution_error",
                         "The transaction could not be executed (a value outside the 64-bit range, or another "
                         "execution error); nothing but its nonce was applied.")

# --- issue 6: coin core, governance, customers, compliance, tiers, privileges, coupons: statuses 10..39 ---
# (coin-core engineer appends here)
ACCOUNT_FROZEN = Reason(10, "account_frozen",
                        "This account is frozen by compliance: it cannot send, pay with or redeem coins.")
DAILY_LIMIT_EXCEEDED = Reason(11, "daily_limit_exceeded",
                              "This would exceed the customer's daily outflow limit for their KYC level.")
UNKNOWN_CUSTOMER = Reason(12, "unknown_customer", "The account is not a registered customer.")
SECOND_FACTOR_REQUIRED = Reason(13, "second_factor_required",
                                "This amount needs a second signature by the account's registered second key.")
CUSTOMER_EXISTS = Reason(14, "customer_exists", "The account is already registered as a customer.")
INVALID_KYC_LEVEL = Reason(15, "invalid_kyc_level", "The KYC level must be 0, 1 or 2.")
CUSTOMER_ERASED = Reason(16, "customer_erased", "The customer's personal data has already been erased.")
UNKNOWN_POLICY = Reason(17, "unknown_policy", "There is no policy parameter with this name.")
POLICY_VALUE_INVALID = Reason(18, "policy_value_invalid",
                              "The policy value has the wrong type or is outside the allowed range.")
UNKNOWN_ROLE = Reason(19, "unknown_role",
                      "The role must be one of branch-admin, staff, issuer, compliance, auditor or treasury.")
ROLE_ALREADY_HELD = Reason(20, "role_already_held", "The account already holds this role.")
ROLE_NOT_HELD = Reason(21, "role_not_held", "The account does not hold this role, so it cannot be revoked.")
LAST_BRANCH_ADMIN = Reason(22, "last_branch_admin",
                           "The last admin of a branch cannot be revoked: the branch could no longer govern.")
INVALID_NAME = Reason(23, "invalid_name", "A branch, reason code or campaign name is empty or too long.")
INVALID_SECOND_KEY = Reason(24, "invalid_second_key", "The second key must differ from the account's own key.")
UNKNOWN_PRIVILEGE = Reason(25, "unknown_privilege", "The privilege must be 'priority' or 'vip'.")
ALREADY_FROZEN = Reason(26, "already_frozen", "The account is already frozen.")
NOT_FROZEN = Reason(27, "not_frozen", "The account is not frozen, so it cannot be unfrozen.")
COUPON_EXISTS = Reason(28, "coupon_exists", "A coupon with this id has already been issued.")
INVALID_COUPON = Reason(29, "invalid_coupon",
                        "The coupon's value, limits or expiry are not valid (positive, and expiring later).")
UNKNOWN_COUPON = Reason(30, "unknown_coupon", "No coupon with this id has been issued.")
COUPON_EXPIRED = Reason(31, "coupon_expired", "The coupon has expired.")
COUPON_EXHAUSTED = Reason(32, "coupon_exhausted", "Every copy of this coupon has already been redeemed.")
COUPON_LIMIT_REACHED = Reason(33, "coupon_limit_reached",
                              "The customer has already redeemed this coupon as many times as allowed.")

# --- issue 6: orders, refunds, tickets, feedback, compensation, training: statuses 40..79 ---
# (customer-service-flows engineer appends here)
# orders and refunds
ORDER_EXISTS = Reason(40, "order_exists", "An order with this id already exists; order ids are never reused.")
ORDER_NOT_FOUND = Reason(41, "order_not_found", "No order with this id exists.")
NOT_ORDER_CUSTOMER = Reason(42, "not_order_customer", "The order belongs to another customer.")
ALREADY_PAID = Reason(43, "already_paid", "The order has already been paid.")
NOT_PAID = Reason(44, "not_paid", "The order has not been paid yet.")
ALREADY_CONFIRMED = Reason(45, "already_confirmed", "The order has already been confirmed; coins were earned once.")
NOT_CONFIRMED = Reason(46, "not_confirmed", "The order has not been confirmed yet.")
REDEEM_SHARE_EXCEEDED = Reason(47, "redeem_share_exceeded",
                               "More coins were offered than the policy allows for this order's amount.")
REFUND_WINDOW_CLOSED = Reason(48, "refund_window_closed", "The refund window for this order has closed.")
ALREADY_REFUNDED = Reason(49, "already_refunded", "The order has already been refunded.")
COUPON_ALREADY_APPLIED = Reason(50, "coupon_already_applied", "The order already has a coupon applied.")
INVALID_ID = Reason(51, "invalid_id", "The id must be 1 to 64 bytes of printable text.")
INVALID_CURRENCY = Reason(52, "invalid_currency", "The currency must be an ISO 4217 code of three capital letters.")
TEXT_TOO_LONG = Reason(53, "text_too_long", "The reason text is longer than the allowed number of characters.")
# tickets, compensation and feedback
TICKET_EXISTS = Reason(60, "ticket_exists", "A ticket with this id already exists; ticket ids are never reused.")
TICKET_NOT_FOUND = Reason(61, "ticket_not_found", "No ticket with this id exists.")
TICKET_STATE = Reason(62, "ticket_state", "The ticket is not in a state that allows this action.")
NOT_TICKET_CUSTOMER = Reason(63, "not_ticket_customer", "The ticket belongs to another customer.")
INVALID_CATEGORY = Reason(64, "invalid_category", "The category must be complaint, inquiry or suggestion.")
INVALID_PRIORITY = Reason(65, "invalid_priority", "The priority must be 1, 2 or 3.")
ORDER_REQUIRED = Reason(66, "order_required",
                        "Staff opening a ticket for a customer must link it to that customer's order.")
NOT_A_COMPLAINT = Reason(67, "not_a_complaint", "Compensation is only paid on complaint tickets.")
COMPENSATION_CAP_EXCEEDED = Reason(68, "compensation_cap_exceeded",
                                   "This compensation would take the ticket above the policy's cap per ticket.")
INVALID_RATING = Reason(69, "invalid_rating", "The rating must be a whole number from 1 to 5.")
INVALID_TARGET = Reason(70, "invalid_target", "Feedback can only be given on a ticket or an order.")
ALREADY_REWARDED = Reason(71, "already_rewarded", "This reward has already been paid once and is never paid twice.")
NOT_STAFF = Reason(72, "not_staff", "The account does not hold the staff role.")

# --- issue 11: governance by a quorum of branches, separation of duties: statuses 80..99 ---
UNKNOWN_BRANCH = Reason(80, "unknown_branch", "There is no branch (validator) with this name.")
SELF_DEALING = Reason(81, "self_dealing",
                      "Nobody confirms, compensates, rewards or records training for their own account.")
WRONG_BRANCH = Reason(82, "wrong_branch", "Staff and branch admins act only inside their own branch.")
UNKNOWN_COURSE = Reason(83, "unknown_course",
                        "The course is not in the training catalogue that governance decided.")
PROPOSAL_EXISTS = Reason(84, "proposal_exists", "A proposal with this id already exists; ids are never reused.")
PROPOSAL_NOT_FOUND = Reason(85, "proposal_not_found", "No proposal with this id exists.")
PROPOSAL_EXPIRED = Reason(86, "proposal_expired", "The proposal expired before it reached its quorum.")
PROPOSAL_DECIDED = Reason(87, "proposal_decided", "The proposal has already been decided; a proposal is decided once.")
ALREADY_APPROVED = Reason(88, "already_approved",
                          "This branch has already approved the proposal; one branch counts once.")
VALIDATOR_CHANGE_PENDING = Reason(89, "validator_change_pending",
                                  "A validator-set change is already scheduled; one change at a time.")
VALIDATOR_EXISTS = Reason(90, "validator_exists", "This node key or branch name is already a validator.")
UNKNOWN_VALIDATOR = Reason(91, "unknown_validator", "This node key is not a validator.")
LAST_VALIDATOR = Reason(92, "last_validator", "The last validator cannot be removed: the network would stop.")
INVALID_QUORUM = Reason(93, "invalid_quorum",
                        "The governance quorum must be a strict majority of the branches and at most their number.")
INVALID_ADDRESS = Reason(94, "invalid_address", "The peer address is not a ws:// or wss:// URL with a host and port.")
INVALID_NODE_KEY = Reason(95, "invalid_node_key", "The node key is not a valid Ed25519 public key.")
BRANCH_NAME_RETIRED = Reason(96, "branch_name_retired",
                             "This branch name was used before; its old roles would come back with it.")

# --- issue 12, orders (FX, refunds, debt): statuses 120..139 ---
CURRENCY_NOT_ACCEPTED = Reason(120, "currency_not_accepted",
                               "The currency is not the base currency or on the policy's list of currencies.")
FX_RATE_MISSING = Reason(121, "fx_rate_missing", "Treasury has not set an FX rate for this currency.")
FX_RATE_STALE = Reason(122, "fx_rate_stale", "The currency's FX rate is older than the policy's maximum age.")
INVALID_FX_RATE = Reason(123, "invalid_fx_rate",
                         "The FX rate must be a positive number of base minor units per 1,000,000 minor units.")
BASE_CURRENCY_RATE = Reason(124, "base_currency_rate", "The base currency has no FX rate: it is worth itself.")
IN_DEBT = Reason(125, "in_debt",
                 "The account owes coins from a refund: it cannot spend or send coins until the debt is repaid.")
NO_DEBT = Reason(126, "no_debt", "The account owes no coins.")
FX_RATE_JUMP = Reason(128, "fx_rate_jump",
                      "The new FX rate moves further from the current one than the policy allows in one step.")
REPAY_EXCEEDS_DEBT = Reason(127, "repay_exceeds_debt", "The amount is more than the account owes.")

# --- issue 12, campaigns branch: statuses 160..179 ---
INVALID_CAMPAIGN = Reason(160, "invalid_campaign",
                          "A field of the campaign is not valid (trigger, effect, amount, conditions, dates, limits).")
CAMPAIGN_EXISTS = Reason(161, "campaign_exists",
                         "A campaign with this id already exists; campaign ids are never reused.")
UNKNOWN_CAMPAIGN = Reason(162, "unknown_campaign", "No campaign with this id was decided by governance.")
CAMPAIGN_NOT_ACTIVE = Reason(163, "campaign_not_active", "The campaign has ended or is outside its dates.")
TOO_MANY_CAMPAIGNS = Reason(164, "too_many_campaigns",
                            "As many campaigns as allowed are active; end one (governance) before adding another.")
CAMPAIGN_BUDGET_EXHAUSTED = Reason(165, "campaign_budget_exhausted",
                                   "What is left of the campaign's budget is too small for this.")
CAMPAIGN_WRONG_EFFECT = Reason(166, "campaign_wrong_effect", "Coupons are issued only by a campaign whose effect is "
                                                             "a coupon.")
COUPON_WRONG_CURRENCY = Reason(167, "coupon_wrong_currency",
                               "The coupon's currency is not the order's (or not the campaign's).")
NOT_COUPON_CUSTOMER = Reason(168, "not_coupon_customer", "The coupon was issued for another customer.")

# --- issue 12, limits branch: statuses 140..159 ---
CUSTOMER_COMPENSATION_CAP_EXCEEDED = Reason(
    140, "customer_compensation_cap_exceeded",
    "This compensation would take the customer above the policy's compensation cap per period.")
ORDER_REFUNDED = Reason(141, "order_refunded", "The order was refunded: feedback on it is not rewarded.")

# --- issue 12, slafix branch: statuses 110..119 ---
EMPTY_COMMITMENT = Reason(110, "empty_commitment", "A response or a question to the customer must commit to a "
                                                   "text; the empty commitment (32 zero bytes) says nothing.")

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
UNEXECUTABLE = "unexecutable_tx"  # execution raised what cannot be a committed failure (the builder drops it)
UNEXPECTED_SIGNER = "unexpected_signer"  # a further signature not by the sender's registered second-factor key

ADMISSION_CODES: tuple[str, ...] = (
    WRONG_CHAIN, UNKNOWN_KIND, BAD_PAYLOAD, BAD_SIGNATURE, MALFORMED, NONCE_TOO_LOW, NONCE_GAP, DUPLICATE_TX,
    UNEXECUTABLE, UNEXPECTED_SIGNER,
)


def invalid_tx(code: str, message: str) -> InvalidTransaction:
    """Build an ``InvalidTransaction`` whose ``code`` is the admission code (for ``raise``)."""
    if code not in ADMISSION_CODES:
        raise ValueError(f"unknown admission code {code!r}; expected one of {', '.join(ADMISSION_CODES)}")
    err = InvalidTransaction(f"{code}: {message}")
    err.code = code  # instance attribute shadows the class default "invalid_tx"
    return err


# --- sweep (issue 12): block-time sweeps -------------------------------------------------------------------
SYSTEM_TX = "system_tx"  # a system transaction (block-sweep): only a block's proposer makes it, never a client
ADMISSION_CODES += (SYSTEM_TX,)
