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
from typing import Any

from ledger.events import Event, CustomerRegistered, SecondFactorSet, CustomerDataErased
from ledger import reasons
from ledger.coin import (
    KYC_LEVELS, Customer, get_branch_of, get_customer, get_second_key, set_customer, verify_second_factor,
)
from ledger.process.common import (
    KindSpec, TxContext, expect_account, expect_bytes32, expect_int, expect_payload, verify_role, verify_rule,
)
from ledger.reasons import TxFailure
from ledger.state import PREFIX_SECOND_KEY, account_record_key, has_role, set_record


@dataclass(frozen=True, slots=True)
class RegisterCustomer:
    """A register-customer payload, shape-checked."""

    customer: bytes
    kyc_level: int
    commitment: bytes


@dataclass(frozen=True, slots=True)
class SetSecondFactor:
    """A set-second-factor payload, shape-checked."""

    second_key: bytes


@dataclass(frozen=True, slots=True)
class EraseCustomerData:
    """An erase-customer-data payload, shape-checked."""

    customer: bytes


# --- register-customer -----------------------------------------------------------------------------------


def compute_register_customer(payload: Any) -> RegisterCustomer:
    """Check the payload's shape and return a ``RegisterCustomer``; raise ``InvalidTransaction(bad_payload)``."""
    kind = "register-customer"
    customer, kyc, commitment = expect_payload(kind, payload, "[customer: bin32, kyc_level: int, commitment: bin32]",
                                               3)
    return RegisterCustomer(expect_account(kind, "customer", customer), expect_int(kind, "kyc_level", kyc),
                            expect_bytes32(kind, "commitment", commitment))


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
                f"customer {tx.customer.hex()[:16]}… was registered at {existing.registered_at_ms if existing else 0}")

    branch = get_branch_of(ctx.state, ctx.sender)
    set_customer(ctx.state, Customer(tx.customer, tx.kyc_level, tx.commitment, ctx.sender, branch, ctx.timestamp_ms))
    return [CustomerRegistered(tx.customer, tx.kyc_level, tx.commitment, branch)]


# --- set-second-factor -----------------------------------------------------------------------------------


def compute_set_second_factor(payload: Any) -> SetSecondFactor:
    """Check the payload's shape and return a ``SetSecondFactor``; raise ``InvalidTransaction(bad_payload)``."""
    (second_key,) = expect_payload("set-second-factor", payload, "[second_key: bin32]", 1)
    return SetSecondFactor(expect_bytes32("set-second-factor", "second_key", second_key))


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


def compute_erase_customer_data(payload: Any) -> EraseCustomerData:
    """Check the payload's shape and return an ``EraseCustomerData``; raise ``InvalidTransaction(bad_payload)``."""
    (customer,) = expect_payload("erase-customer-data", payload, "[customer: bin32]", 1)
    return EraseCustomerData(expect_account("erase-customer-data", "customer", customer))


def process_erase_customer_data(ctx: TxContext, tx: EraseCustomerData) -> list[Event]:
    """Mark the customer's personal data erased; the node's vault deletes its key on the event."""
    # Staff, or the customer themself, may ask for erasure
    verify_rule(ctx.sender == tx.customer or has_role(ctx.state, "staff", ctx.sender), reasons.UNAUTHORIZED,
                f"sender {ctx.sender.hex()[:16]}… is neither staff nor the customer {tx.customer.hex()[:16]}…")
    # The customer is registered
    customer = get_customer(ctx.state, tx.customer)
    if customer is None:
        raise TxFailure(reasons.UNKNOWN_CUSTOMER, f"account {tx.customer.hex()[:16]}… is not a registered customer")
    # Erasure happens once
    verify_rule(not customer.erased, reasons.CUSTOMER_ERASED,
                f"customer data was erased at {customer.erased_at_ms}")

    set_customer(ctx.state, replace(customer, erased_at_ms=ctx.timestamp_ms))
    return [CustomerDataErased(tx.customer, customer.commitment)]


SPECS = (
    KindSpec("register-customer", compute_register_customer, process_register_customer),
    KindSpec("set-second-factor", compute_set_second_factor, process_set_second_factor),
    KindSpec("erase-customer-data", compute_erase_customer_data, process_erase_customer_data),
)
