"""Customer kinds: ``register-customer`` (staff), ``set-second-factor`` and ``erase-customer-data``.

Theory of operation
-------------------
The chain never holds personal data. Staff register a customer with a KYC level (0..2, it sets the daily
outflow limit) and a 32-byte commitment ``H(salt || personal data)``; the data and its salt sit in the
registering branch node's encrypted vault (node side). ``erase-customer-data`` marks the record erased at
the block time and emits ``["customer_data_erased", customer, commitment]``; the node's vault deletes the
customer's key when it sees that event. The commitment, the customer's coins and every receipt stay valid:
erasure removes the means to open the commitment, not the ledger's history.

A second-factor key (``b"x" + account``) co-signs large transfers and refunds. Any account may register
one; replacing an existing one needs the current second key's signature too, or a stolen primary key
could simply swap the second factor out.

register-customer   payload [customer: bin32, kyc_level: int, commitment: bin32]
                    event ["customer_registered", customer, kyc_level, commitment, branch]
set-second-factor   payload [second_key: bin32]   event ["second_factor_set", account, second_key]
erase-customer-data payload [customer: bin32]     event ["customer_data_erased", customer, commitment]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ledger import campaigns, reasons
from ledger.customers import Customer, get_branch_of, get_customer, set_customer
from ledger.limits import KYC_LEVELS, get_second_key, verify_second_factor
from ledger.events import CustomerDataErased, CustomerRegistered, Event, SecondFactorSet
from ledger.process.common import TxContext, verify_own_branch, verify_role, verify_rule
from ledger.process.payload import Account, Bytes32, Int, arg, declare_kind
from ledger.reasons import TxFailure
from ledger.state import PREFIX_SECOND_KEY, account_record_key, has_role, set_record


@dataclass(frozen=True, slots=True)
class RegisterCustomer:
    """A register-customer payload."""

    customer: Account = arg("The customer's account id (64 hex digits).")
    kyc_level: Int = arg("KYC level 0, 1 or 2 (sets the daily outflow limit).")
    commitment: Bytes32 = arg("H(salt || personal data) as 64 hex digits (see `carecoin customer register`).")


@dataclass(frozen=True, slots=True)
class SetSecondFactor:
    """A set-second-factor payload."""

    # ``--second-key`` is the co-signing key FILE of every tx command: this field is a public key
    second_key: Bytes32 = arg("The second-factor public key (64 hex digits).", option="--second-public-key")


@dataclass(frozen=True, slots=True)
class EraseCustomerData:
    """An erase-customer-data payload."""

    customer: Account = arg("The customer's account id (64 hex digits).")


# --- register-customer -----------------------------------------------------------------------------------


def process_register_customer(ctx: TxContext, tx: RegisterCustomer) -> list[Event]:
    """Register ``tx.customer`` with a KYC level and a commitment of their personal data, in the staff's branch."""
    # Only staff register customers
    verify_role(ctx, "staff")
    # The KYC level is one the policy has limits for
    verify_rule(tx.kyc_level in KYC_LEVELS, reasons.INVALID_KYC_LEVEL,
                f"KYC level is {tx.kyc_level}; expected one of {', '.join(map(str, KYC_LEVELS))}")
    # A customer is registered once (the commitment is never overwritten)
    existing = get_customer(ctx.state, tx.customer)
    verify_rule(existing is None, reasons.CUSTOMER_EXISTS,
                f"customer {tx.customer.hex()[:16]}… was registered at "
                f"{existing.registered_at_ms if existing else 0}")

    branch = get_branch_of(ctx.state, ctx.sender)
    set_customer(ctx.state, Customer(tx.customer, tx.kyc_level, tx.commitment, ctx.sender, branch, ctx.timestamp_ms))
    return [CustomerRegistered(tx.customer, tx.kyc_level, tx.commitment, branch),
            *campaigns.process_trigger(ctx, "registration", tx.customer, branch=branch)]


# --- set-second-factor -----------------------------------------------------------------------------------


def process_set_second_factor(ctx: TxContext, tx: SetSecondFactor) -> list[Event]:
    """Register (or replace) the sender's second-factor key."""
    # The second key is not the account's own key (that would be no second factor at all)
    verify_rule(tx.second_key != ctx.sender, reasons.INVALID_SECOND_KEY,
                "the second key is the account's own key; expected a different key")
    # Replacing a second key needs the current one's signature
    if get_second_key(ctx.state, ctx.sender) is not None:
        verify_second_factor(ctx, ctx.sender, "replacing the second key")

    set_record(ctx.state, account_record_key(PREFIX_SECOND_KEY, ctx.sender), tx.second_key)
    return [SecondFactorSet(ctx.sender, tx.second_key)]


# --- erase-customer-data ---------------------------------------------------------------------------------


def process_erase_customer_data(ctx: TxContext, tx: EraseCustomerData) -> list[Event]:
    """Mark the customer's personal data erased; the node's vault deletes its key on the event."""
    # Staff, or the customer themself, may ask for erasure
    verify_rule(ctx.sender == tx.customer or has_role(ctx.state, "staff", ctx.sender), reasons.UNAUTHORIZED,
                f"sender {ctx.sender.hex()[:16]}… is neither staff nor the customer {tx.customer.hex()[:16]}…")
    # The customer is registered
    customer = get_customer(ctx.state, tx.customer)
    if customer is None:
        raise TxFailure(reasons.UNKNOWN_CUSTOMER, f"account {tx.customer.hex()[:16]}… is not a registered customer")
    # Staff erase only customers registered in their own branch (the customer may always ask)
    if ctx.sender != tx.customer:
        verify_own_branch(ctx, customer.branch, f"customer {tx.customer.hex()[:16]}…")
    # Erasure happens once
    verify_rule(not customer.erased, reasons.CUSTOMER_ERASED,
                f"customer data was erased at {customer.erased_at_ms}")

    set_customer(ctx.state, replace(customer, erased_at_ms=ctx.timestamp_ms))
    return [CustomerDataErased(tx.customer, customer.commitment)]


SPECS = (
    declare_kind("register-customer", RegisterCustomer, process_register_customer, senders="staff",
                 help="Register a customer with a KYC level and the commitment of their personal data (staff). "
                      "See `carecoin customer register` to store the data in the vault first."),
    declare_kind("set-second-factor", SetSecondFactor, process_set_second_factor, senders="any account",
                 help="Register (or replace) the sender's second-factor public key."),
    declare_kind("erase-customer-data", EraseCustomerData, process_erase_customer_data,
                 senders="staff or the customer",
                 help="Erase a customer's personal data: the branch vaults delete its key (staff or the customer)."),
)
