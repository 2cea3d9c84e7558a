"""A small in-memory world for the customer-service flow tests: roles, branches, customers, a clock, and
signed transactions run through the executor's ``process_tx`` (so a refusal is a committed failed result).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ledger import codec, lots
from ledger.customers import Customer, set_branch_of, set_customer
from ledger.chain import process_tx
from ledger.orders import Order, get_order
from ledger.process import get_kind
from ledger.process.common import TxContext
from ledger.results import TxResult
from ledger.state import MemoryState, Overlay, get_balance, policy_key, set_role
from ledger.tickets import Ticket, get_ticket
from ledger.tx import make_tx
from tests.strategies import ALICE, BOB, CAROL, CHAIN_ID, GENESIS_TIME_MS, key

STAFF = key(30)
STAFF2 = key(31)
ADMIN = key(32)
SECOND = key(33)  # ALICE's second-factor key
STRANGER = key(34)  # holds no role and is no customer
CUSTOMERS = (ALICE, BOB, CAROL)


def h(text: str) -> bytes:
    """A 32-byte content hash for payloads."""
    return hashlib.sha256(text.encode()).digest()


class World:
    """State with staff (branch "north"/"south"), a branch admin, registered customers and a block clock."""

    def __init__(self, policy: dict[str, int] | None = None, customers=CUSTOMERS) -> None:
        self.base = MemoryState()
        self.state = Overlay(self.base)
        self.now = GENESIS_TIME_MS + 1_000
        self.height = 1
        self.nonces: dict[bytes, int] = {}
        for name, value in (policy or {}).items():
            self.state.set_state(policy_key(name), codec.encode(value))
        set_role(self.state, "staff", STAFF.public_key, True)
        set_role(self.state, "staff", STAFF2.public_key, True)
        set_role(self.state, "branch-admin", ADMIN.public_key, True)
        set_branch_of(self.state, STAFF.public_key, "north")
        set_branch_of(self.state, STAFF2.public_key, "south")
        for c in customers:
            set_customer(self.state, Customer(c.public_key, 1, h("pii"), STAFF.public_key, "north", self.now))

    # --- clock and direct state helpers ---------------------------------------------------------------

    def tick(self, ms: int = 1_000) -> int:
        """Advance the block clock (and height)."""
        self.now += ms
        self.height += 1
        return self.now

    def ctx(self, sender=STAFF) -> TxContext:
        return TxContext(self.state, sender.public_key, (sender.public_key,), b"\x00" * 32, self.height, self.now)

    def fund(self, who, amount: int) -> None:
        """Credit coins (as if minted) to ``who``."""
        lots.credit(self.ctx(), who.public_key, amount, "mint")

    def balance(self, who) -> int:
        return get_balance(self.state, who.public_key)

    def order(self, order_id: str) -> Order:
        order = get_order(self.state, order_id)
        if order is None:
            raise KeyError(order_id)
        return order

    def ticket(self, ticket_id: str) -> Ticket:
        ticket = get_ticket(self.state, ticket_id)
        if ticket is None:
            raise KeyError(ticket_id)
        return ticket

    # --- transactions ---------------------------------------------------------------------------------

    def run(self, kind: str, sender, payload: list[Any], *extra) -> TxResult:
        """Sign and process one transaction at the current block time; return its result."""
        nonce = self.nonces.get(sender.public_key, 0) + 1
        self.nonces[sender.public_key] = nonce
        tx = make_tx(CHAIN_ID, kind, sender, nonce, payload, *extra)
        spec = get_kind(kind)
        return process_tx(self.state, tx, spec, spec.compute_payload(list(tx.body.payload)), self.height, self.now)

    def ok(self, kind: str, sender, payload: list[Any], *extra) -> tuple:
        """Run a transaction that must apply; return its events."""
        result = self.run(kind, sender, payload, *extra)
        if not result.applied:
            raise AssertionError(f"{kind} failed: {result.reason}")
        return result.events

    def refused(self, kind: str, sender, payload: list[Any], *extra) -> str:
        """Run a transaction that must fail; return its reason name (its writes were rolled back)."""
        before = self.state.get_changes()
        result = self.run(kind, sender, payload, *extra)
        if result.applied:
            raise AssertionError(f"{kind} was applied; expected a refusal")
        after = {k: v for k, v in self.state.get_changes().items() if k[:1] != b"a"}
        if after != {k: v for k, v in before.items() if k[:1] != b"a"}:
            raise AssertionError(f"refused {kind} left writes behind")
        return result.reason

    # --- scripted paths -------------------------------------------------------------------------------

    def new_order(self, order_id: str = "o-1", customer=ALICE, amount: int = 10_000, staff=STAFF) -> None:
        self.ok("create-order", staff, [order_id, customer.public_key, amount, "EUR", h("items")])

    def paid_order(self, order_id: str = "o-1", customer=ALICE, amount: int = 10_000, coins: int = 0) -> None:
        self.new_order(order_id, customer, amount)
        self.ok("pay-order", customer, [order_id, coins])

    def confirmed_order(self, order_id: str = "o-1", customer=ALICE, amount: int = 10_000, coins: int = 0) -> None:
        self.paid_order(order_id, customer, amount, coins)
        self.ok("confirm-order", STAFF, [order_id])

    def open_ticket(self, ticket_id: str = "t-1", category: str = "complaint", customer=ALICE,
                    order_id: str = "") -> None:
        self.ok("open-ticket", customer, [ticket_id, category, 2, order_id, h("help")])

    def resolved_ticket(self, ticket_id: str = "t-1", category: str = "complaint", customer=ALICE) -> None:
        self.open_ticket(ticket_id, category, customer)
        self.ok("resolve-ticket", STAFF, [ticket_id, h("fixed")])


__all__ = ["ADMIN", "ALICE", "BOB", "CAROL", "SECOND", "STAFF", "STAFF2", "STRANGER", "World", "h"]
