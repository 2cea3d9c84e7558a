"""Random sequences of the customer-service kinds (with part A's mint, transfer, register-customer and
coupons) against a small model.

Rules queue signed transactions and predict each outcome with ``Model`` (a plain re-statement of the rules);
``seal`` builds a real block at a block time fixed in advance (so window rules are predictable), has a
validator re-execute it, commits it, and checks every result against the prediction. Invariants on the
committed state after every step: balances and supply equal the model's, no balance is negative, a refund,
a feedback reward, a training reward and a coupon on an order are each paid at most once, compensation never
exceeds the cap per ticket nor the cap per customer, and every ticket's state is the model's.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger.genesis import Genesis, Validator
from ledger.orders import get_order
from ledger.debt import get_debt
from ledger.state import PREFIX_ACCOUNT, PREFIX_DEBT, get_account, get_supply
from ledger.tickets import get_ticket
from tests.ledger.flows_world import h
from tests.ledger.memory_chain import MemoryChain
from tests.strategies import CHAIN_ID, GENESIS_TIME_MS, VALIDATORS, key

ISSUER, STAFF, STAFF2, ADMIN = key(40), key(41), key(42), key(43)
ALICE, BOB, STRANGER = key(44), key(45), key(46)  # ALICE and BOB get registered; STRANGER never does
CUSTOMERS = (ALICE, BOB)
SENDERS = (STAFF, STAFF2, ADMIN, ALICE, BOB, STRANGER)
ORDER_IDS = ("o0", "o1", "o2", "o3")
TICKET_IDS = ("t0", "t1", "t2")
COURSES = ("c0", "c1", "c9")  # c0 and c1 are in the training catalogue (decided in the setup block), c9 is not
CATALOGUE = ("c0", "c1")
BRANCH = "branch-0"  # the one branch: every staff member, the admin and every order are in it
CAP = 1_000  # compensation cap per ticket
CUSTOMER_CAP = 2_500  # compensation cap per customer per period (the run stays inside one period)
WINDOW = 3_000  # refund window, ms (a seal advances 1..10_000 ms, so windows often close)
MAX_PENDING = 12
POLICY = {"compensation_cap_per_ticket": CAP, "refund_window_ms": WINDOW, "feedback_reward": 50,
          "training_reward": 500, "compensation_cap_per_customer": CUSTOMER_CAP}
SECOND_FACTOR_THRESHOLD, KYC0_LIMIT, DAY_MS = 10_000, 1_000, 86_400_000  # code defaults; nobody has a second key
ACTIVE = ("open", "assigned", "in_progress", "waiting")
WAITABLE = ("open", "assigned", "in_progress")
# issued in the setup block, of a coupon campaign decided there (its trigger, registration, happens before it)
COUPON, COUPON_VALUE, COUPON_PER_CUSTOMER, COUPON_TOTAL = "k0", 3_000, 1, 3


@dataclass
class Model:
    balances: dict[bytes, int] = field(default_factory=dict)
    lifetime: dict[bytes, int] = field(default_factory=dict)  # earn + reward - clawbacks (tiers; no compensation)
    compensated: dict[bytes, int] = field(default_factory=dict)  # per customer (one period)
    outflow: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # account -> (utc day, amount)
    supply: int = 0
    orders: dict[str, dict] = field(default_factory=dict)
    tickets: dict[str, dict] = field(default_factory=dict)
    rewarded: set = field(default_factory=set)  # ("order"|"ticket", id) and ("course", staff, course)
    ts: int = 0  # the block time the queued transactions will execute at
    coupon_uses: dict[bytes, int] = field(default_factory=dict)
    debts: dict[bytes, int] = field(default_factory=dict)  # coins owed after a refund (issue 12)

    def credit(self, who: bytes, amount: int, earning: bool, repays_debt: bool = True) -> None:
        if earning:
            self.lifetime[who] = self.lifetime.get(who, 0) + amount  # the whole credit counts as earned
        if repays_debt:  # every credit but a refund return repays the debt first; that part is never minted
            repaid = min(self.debts.get(who, 0), amount)
            self.debts[who] = self.debts.get(who, 0) - repaid
            amount -= repaid
        self.balances[who] = self.balances.get(who, 0) + amount
        self.supply += amount

    def burn(self, who: bytes, amount: int) -> None:
        self.balances[who] -= amount
        self.supply -= amount

    def outflow_total(self, who: bytes, amount: int) -> int:
        day, used = self.outflow.get(who, (self.ts // DAY_MS, 0))
        return (used if day == self.ts // DAY_MS else 0) + amount

    def outflow_reason(self, who: bytes, amount: int) -> str:
        """KYC limit (customers are KYC 2: never reached; STRANGER is KYC 0; staff have none), then the second
        factor on the day's cumulative outflow (nobody has a second key). Recorded by ``add_outflow`` once the
        tx surely applies (a failed tx rolls its outflow back)."""
        total = self.outflow_total(who, amount)
        if who == STRANGER.public_key and total > KYC0_LIMIT:
            return "daily_limit_exceeded"
        return "second_factor_required" if total > SECOND_FACTOR_THRESHOLD else ""

    def add_outflow(self, who: bytes, amount: int) -> None:
        self.outflow[who] = (self.ts // DAY_MS, self.outflow_total(who, amount))

    def multiplier(self, who: bytes) -> int:
        earned = self.lifetime.get(who, 0)
        return 200 if earned >= 200_000 else 150 if earned >= 50_000 else 125 if earned >= 10_000 else 100

    # --- orders ------------------------------------------------------------------------------------------

    def create_order(self, s: bytes, oid: str, customer: bytes, amount: int) -> str:
        if s not in STAFF_KEYS:
            return "unauthorized"
        if oid in self.orders:
            return "order_exists"
        if amount <= 0:
            return "invalid_amount"
        if customer not in CUSTOMER_KEYS:
            return "unknown_customer"
        self.orders[oid] = dict(customer=customer, amount=amount, discount=0, paid_at=0, coins=0, fiat=0,
                                confirmed=False, earned=0, refunded=False)
        return ""

    def pay(self, s: bytes, oid: str, coins: int) -> str:
        o = self.orders.get(oid)
        if o is None:
            return "order_not_found"
        if o["customer"] != s:
            return "not_order_customer"
        if o["paid_at"]:
            return "already_paid"
        if coins < 0:
            return "invalid_amount"
        due = o["amount"] - o["discount"]
        if coins > due * 5_000 // 10_000:
            return "redeem_share_exceeded"
        if coins and self.debts.get(s, 0):
            return "in_debt"
        reason = self.outflow_reason(s, coins) if coins else ""
        if reason:
            return reason
        if self.balances.get(s, 0) < coins:
            return "insufficient_balance"
        if coins:
            self.add_outflow(s, coins)
            self.burn(s, coins)
        o.update(paid_at=self.ts, coins=coins, fiat=due - coins)
        return ""

    def confirm(self, s: bytes, oid: str) -> str:
        if s not in STAFF_KEYS:
            return "unauthorized"
        o = self.orders.get(oid)
        if o is None:
            return "order_not_found"
        if not o["paid_at"]:
            return "not_paid"
        if o["refunded"]:
            return "already_refunded"
        if o["confirmed"]:
            return "already_confirmed"
        earned = o["fiat"] * 100 * self.multiplier(o["customer"]) // 1_000_000
        self.credit(o["customer"], earned, True)
        o.update(confirmed=True, earned=earned)
        return ""

    def refund(self, s: bytes, oid: str) -> str:
        o = self.orders.get(oid)
        if o is None:
            return "order_not_found"
        if s not in STAFF_KEYS and o["customer"] != s:
            return "not_order_customer"
        if not o["paid_at"]:
            return "not_paid"
        if o["refunded"]:
            return "already_refunded"
        if self.ts > o["paid_at"] + WINDOW:
            return "refund_window_closed"
        c = o["customer"]
        self.credit(c, o["coins"], False, repays_debt=False)
        clawed = min(o["earned"], self.balances.get(c, 0))
        self.burn(c, clawed)
        self.lifetime[c] = max(0, self.lifetime.get(c, 0) - clawed)  # clawed-back earnings leave the tier
        self.debts[c] = self.debts.get(c, 0) + o["earned"] - clawed
        o["refunded"] = True
        return ""

    # --- tickets -----------------------------------------------------------------------------------------

    def open_ticket(self, s: bytes, tid: str, category: str, oid: str) -> str:
        if tid in self.tickets:
            return "ticket_exists"
        if category not in ("complaint", "inquiry", "suggestion"):
            return "invalid_category"
        staff = s in STAFF_KEYS
        if staff and not oid:
            return "order_required"
        if oid and oid not in self.orders:
            return "order_not_found"
        customer = self.orders[oid]["customer"] if staff else s
        if not staff:
            if s not in CUSTOMER_KEYS:
                return "unknown_customer"
            if oid and self.orders[oid]["customer"] != s:
                return "not_order_customer"
        branch = BRANCH  # the order's branch, else the customer's registered branch: every one is BRANCH here
        self.tickets[tid] = dict(customer=customer, category=category, state="open", compensated=0, branch=branch)
        return ""

    def _ticket(self, tid: str, s: bytes, roles: tuple, states: tuple, customer_only: bool = False,
                staff_or_customer: bool = False) -> tuple[str, dict | None]:
        if roles and s not in roles:
            return "unauthorized", None
        t = self.tickets.get(tid)
        if t is None:
            return "ticket_not_found", None
        if customer_only and t["customer"] != s:
            return "not_ticket_customer", None
        if staff_or_customer and s not in STAFF_KEYS and t["customer"] != s:
            return "not_ticket_customer", None
        if staff_or_customer and t["customer"] != s and t["branch"] != BRANCH:
            return "wrong_branch", None  # staff close only tickets of their branch
        if t["state"] not in states:
            return "ticket_state", None
        return "", t

    def assign(self, s: bytes, tid: str, to: bytes) -> str:
        reason, t = self._ticket(tid, s, STAFF_KEYS + (ADMIN.public_key,), ACTIVE)
        if t is None:
            return reason
        if to not in STAFF_KEYS:
            return "not_staff"
        t["state"] = t["state"] if t["state"] in ("in_progress", "waiting") else "assigned"
        t["branch"] = BRANCH
        return ""

    def move(self, s: bytes, tid: str, action: str) -> str:
        roles, states, new = {"respond": (STAFF_KEYS, ACTIVE, "in_progress"),
                              "resolve": (STAFF_KEYS, ACTIVE, "resolved"),
                              "wait": (STAFF_KEYS, WAITABLE, "waiting"),
                              "reply": ((), ("waiting",), "in_progress"),
                              "reopen": ((), ("resolved",), "open"),
                              "close": ((), ("resolved",), "closed")}[action]
        reason, t = self._ticket(tid, s, roles, states, customer_only=action in ("reopen", "reply"),
                                 staff_or_customer=action == "close")
        if t is None:
            return reason
        t["state"] = new
        return ""

    def compensate(self, s: bytes, tid: str, amount: int) -> str:
        if s not in STAFF_KEYS:
            return "unauthorized"
        t = self.tickets.get(tid)
        if t is None:
            return "ticket_not_found"
        if t["branch"] != BRANCH:
            return "wrong_branch"  # (never here: one branch)
        if t["category"] != "complaint":
            return "not_a_complaint"
        if t["state"] not in ACTIVE:
            return "ticket_state"
        if amount <= 0:
            return "invalid_amount"
        if t["compensated"] + amount > CAP:
            return "compensation_cap_exceeded"
        if self.compensated.get(t["customer"], 0) + amount > CUSTOMER_CAP:
            return "customer_compensation_cap_exceeded"
        t["compensated"] += amount
        self.compensated[t["customer"]] = self.compensated.get(t["customer"], 0) + amount
        self.credit(t["customer"], amount, False)  # compensation never raises a tier
        return ""

    def feedback(self, s: bytes, kind: str, target: str, rating: int) -> str:
        if kind not in ("ticket", "order"):
            return "invalid_target"
        if not 1 <= rating <= 5:
            return "invalid_rating"
        if kind == "ticket":
            t = self.tickets.get(target)
            if t is None:
                return "ticket_not_found"
            if t["customer"] != s:
                return "not_ticket_customer"
            if t["state"] not in ("resolved", "closed"):
                return "ticket_state"
        else:
            o = self.orders.get(target)
            if o is None:
                return "order_not_found"
            if o["customer"] != s:
                return "not_order_customer"
            if not o["confirmed"]:
                return "not_confirmed"
            if o["refunded"]:
                return "order_refunded"
        if (kind, target) in self.rewarded:
            return "already_rewarded"
        self.rewarded.add((kind, target))
        self.credit(s, 50, True)
        return ""

    def training(self, s: bytes, staff: bytes, course: str) -> str:
        if s not in STAFF_KEYS + (ADMIN.public_key,):
            return "unauthorized"
        if course not in CATALOGUE:
            return "unknown_course"
        if staff not in STAFF_KEYS:
            return "not_staff"
        if staff == s:
            return "self_dealing"
        if ("course", staff, course) in self.rewarded:
            return "already_rewarded"
        self.rewarded.add(("course", staff, course))
        self.credit(staff, 500, True)
        return ""

    def mint(self, to: bytes, amount: int) -> str:
        self.credit(to, amount, False)
        return ""

    def transfer(self, s: bytes, to: bytes, amount: int) -> str:
        if to == s:
            return "self_transfer"
        if self.debts.get(s, 0):
            return "in_debt"
        if self.balances.get(s, 0) < amount:
            return "insufficient_balance"
        reason = self.outflow_reason(s, amount)
        if reason:
            return reason
        self.add_outflow(s, amount)
        self.balances[s] -= amount
        self.balances[to] = self.balances.get(to, 0) + amount
        return ""

    def redeem_coupon(self, s: bytes, oid: str) -> str:
        if s not in CUSTOMER_KEYS:
            return "unknown_customer"
        if sum(self.coupon_uses.values()) >= COUPON_TOTAL:
            return "coupon_exhausted"
        if self.coupon_uses.get(s, 0) >= COUPON_PER_CUSTOMER:
            return "coupon_limit_reached"
        o = self.orders.get(oid)
        if o is None:
            return "order_not_found"
        if o["customer"] != s:
            return "not_order_customer"
        if o["paid_at"]:
            return "already_paid"
        if o["discount"]:
            return "coupon_already_applied"
        o["discount"] = min(COUPON_VALUE, o["amount"])
        self.coupon_uses[s] = self.coupon_uses.get(s, 0) + 1
        return ""


STAFF_KEYS = (STAFF.public_key, STAFF2.public_key)
CUSTOMER_KEYS = (ALICE.public_key, BOB.public_key)

# Senders are biased toward the role a kind needs, so sequences get deep (paid, confirmed, refunded, rewarded)
# while every wrong-sender refusal still shows up.
staff_mostly = st.sampled_from((STAFF, STAFF2, STAFF, ALICE, ADMIN))
customer_mostly = st.sampled_from((ALICE, BOB, ALICE, STAFF, STRANGER))
anyone = st.sampled_from(SENDERS)
customers = st.sampled_from(CUSTOMERS)
order_ids = st.sampled_from(ORDER_IDS)
ticket_ids = st.sampled_from(TICKET_IDS)


class FlowsMachine(MemoryChain, RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.start_chain(Genesis(
            chain_id=CHAIN_ID, genesis_time_ms=GENESIS_TIME_MS,
            # one branch: the admin's proposals decide at once (quorum 1 of 1), so the setup can fill the catalogue
            validators=(Validator(BRANCH, VALIDATORS[0].public_key),),
            roles={"issuer": (ISSUER.public_key,), "staff": STAFF_KEYS, "branch-admin": (ADMIN.public_key,)},
            policy=dict(POLICY)))
        self.expected: list[str] = []
        self.model = Model()
        self.model.ts = self.head.timestamp_ms + 1_000
        # ("refund", order) / ("feedback", kind, id) / ("course", staff, c) / ("coupon", order)
        self.paid_events: Counter = Counter()
        self.compensated_events: Counter = Counter()
        for c in CUSTOMERS:  # the setup block registers the customers (KYC 2: limits stay out of the way)
            self.submit(STAFF, "register-customer", [c.public_key, 2, h(c.public_key.hex())], "")
        self.submit(ADMIN, "propose-campaign", ["spring", "spring", "registration", "coupon", COUPON_VALUE,
                                                COUPON_VALUE * COUPON_TOTAL, 1, "", "", 0, "", 0, 0, "EUR", 10**11], "")
        self.submit(ADMIN, "issue-coupon", [COUPON, "spring", COUPON_VALUE, "EUR", GENESIS_TIME_MS + 10**11,
                                            b"\x00" * 32, COUPON_TOTAL], "")
        for course in CATALOGUE:
            self.submit(ADMIN, "propose-training-course", [f"course-{course}", course, 500], "")
        self.seal(1_000)
        self.committed = copy.deepcopy(self.model)

    def submit(self, sender, kind: str, payload: list, expected: str) -> None:
        self.queue_tx(sender, kind, payload)
        self.expected.append(expected)

    # --- rules ---------------------------------------------------------------------------------------------

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(to=st.sampled_from(CUSTOMERS + (STAFF,)), amount=st.integers(1, 3_000))
    def mint(self, to, amount):
        self.submit(ISSUER, "mint", [to.public_key, amount], self.model.mint(to.public_key, amount))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=customer_mostly, to=st.sampled_from((ALICE, BOB, STAFF)), amount=st.integers(1, 300))
    def transfer(self, s, to, amount):
        self.submit(s, "transfer", [to.public_key, amount, bytes(32)], self.model.transfer(s.public_key, to.public_key, amount))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=customer_mostly, oid=order_ids)
    def redeem_coupon(self, s, oid):
        self.submit(s, "redeem-coupon", [COUPON, oid], self.model.redeem_coupon(s.public_key, oid))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=staff_mostly, oid=order_ids, customer=st.sampled_from((ALICE, BOB, ALICE, STRANGER)),
          amount=st.one_of(st.integers(1, 20_000), st.just(0)))
    def create_order(self, s, oid, customer, amount):
        self.submit(s, "create-order", [oid, customer.public_key, amount, "EUR", h(oid)],
                    self.model.create_order(s.public_key, oid, customer.public_key, amount))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=customer_mostly, oid=order_ids, coins=st.one_of(st.integers(-1, 6_000), st.just(0)))
    def pay_order(self, s, oid, coins):
        self.submit(s, "pay-order", [oid, coins], self.model.pay(s.public_key, oid, coins))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=staff_mostly, oid=order_ids)
    def confirm_order(self, s, oid):
        self.submit(s, "confirm-order", [oid], self.model.confirm(s.public_key, oid))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=st.sampled_from((ALICE, BOB, ALICE, STAFF, STRANGER)), oid=order_ids)
    def request_refund(self, s, oid):
        self.submit(s, "request-refund", [oid, h("r")], self.model.refund(s.public_key, oid))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=customer_mostly, tid=ticket_ids, category=st.sampled_from(["complaint", "complaint", "inquiry", "praise"]),
          oid=st.sampled_from(("", "") + ORDER_IDS))
    def open_ticket(self, s, tid, category, oid):
        self.submit(s, "open-ticket", [tid, category, 2, oid, h(tid)],
                    self.model.open_ticket(s.public_key, tid, category, oid))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=st.sampled_from((ADMIN, STAFF, BOB)), tid=ticket_ids, to=st.sampled_from((STAFF, STAFF2, ALICE)))
    def assign_ticket(self, s, tid, to):
        self.submit(s, "assign-ticket", [tid, to.public_key], self.model.assign(s.public_key, tid, to.public_key))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=anyone, tid=ticket_ids, action=st.sampled_from(["respond", "resolve", "resolve", "reopen", "close", "wait",
                                                            "reply"]))
    def move_ticket(self, s, tid, action):
        payload = [tid] if action == "close" else [tid, h(action)]
        self.submit(s, f"{action}-ticket", payload, self.model.move(s.public_key, tid, action))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=staff_mostly, tid=ticket_ids, amount=st.one_of(st.integers(1, 700), st.just(0)))
    def compensate(self, s, tid, amount):
        self.submit(s, "compensate", [tid, amount], self.model.compensate(s.public_key, tid, amount))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=customer_mostly, goal=st.one_of(st.tuples(st.just("order"), order_ids),
                                            st.tuples(st.just("ticket"), ticket_ids),
                                            st.tuples(st.just("coupon"), order_ids)),
          rating=st.one_of(st.integers(1, 5), st.integers(0, 6)))
    def submit_feedback(self, s, goal, rating):
        kind, tid = goal
        self.submit(s, "submit-feedback", [kind, tid, rating, h("c")],
                    self.model.feedback(s.public_key, kind, tid, rating))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=st.sampled_from((ADMIN, ADMIN, STAFF)), staff=st.sampled_from((STAFF, STAFF2, BOB)),
          course=st.sampled_from(COURSES))
    def record_training(self, s, staff, course):
        self.submit(s, "record-training", [staff.public_key, course],
                    self.model.training(s.public_key, staff.public_key, course))

    # Stories queue a whole flow at once, so random runs reach deep states; each step is still predicted.
    @precondition(lambda self: len(self.queue) <= MAX_PENDING - 8)
    @rule(oid=order_ids, customer=customers, amount=st.integers(1, 20_000),
          coins=st.sampled_from([0, 0, 50, 1_000, 4_000]), fund=st.booleans(), depth=st.integers(2, 3),
          feedback=st.booleans(), refund=st.booleans(), coupons=st.sampled_from([0, 1, 2]),
          spend_away=st.booleans())
    def order_story(self, oid, customer, amount, coins, fund, depth, feedback, refund, coupons, spend_away):
        if fund:
            self.mint(customer, max(coins, 1))
        self.create_order(STAFF, oid, customer, amount)
        for _ in range(coupons):  # a second coupon on the same order must be refused
            self.redeem_coupon(customer, oid)
        self.pay_order(customer, oid, coins)
        if depth > 2:
            self.confirm_order(STAFF2, oid)
        if feedback:
            self.submit_feedback(customer, ("order", oid), 4)
        held = self.model.balances.get(customer.public_key, 0)
        if spend_away and held > 1:  # send the earned coins away first: the refund then leaves a debt
            self.transfer(customer, STAFF, min(held - 1, 300))
        if refund:
            self.request_refund(customer, oid)
            if spend_away:  # in debt: sending is refused, and the next earning repays the debt first
                self.transfer(customer, BOB if customer is ALICE else ALICE, 1)

    @precondition(lambda self: len(self.queue) < MAX_PENDING and any(
        o["paid_at"] for o in self.model.orders.values()))
    @rule(data=st.data(), twice=st.booleans(), wait=st.sampled_from([0, WINDOW, WINDOW + 1, 3 * WINDOW]))
    def refund_a_paid_order(self, data, twice, wait):
        """Refund a paid order by its customer, maybe after sealing and waiting (at/over the window's end)."""
        if wait:
            self.seal(wait)  # the refund lands in the next block, ``wait`` ms after the one just sealed
        paid = sorted(k for k, o in self.model.orders.items() if o["paid_at"])
        open_ = [k for k in paid if not self.model.orders[k]["refunded"]]
        oid = data.draw(st.sampled_from(open_ or paid))
        customer = next(c for c in CUSTOMERS if c.public_key == self.model.orders[oid]["customer"])
        for _ in range(1 + (twice and len(self.queue) < MAX_PENDING - 1)):
            self.request_refund(customer, oid)

    @precondition(lambda self: len(self.queue) < MAX_PENDING and self.model.tickets)
    @rule(data=st.data(), action=st.sampled_from(["assign", "respond", "resolve", "reopen", "close", "wait", "reply"]))
    def move_a_known_ticket(self, data, action):
        """Any transition on an existing ticket by the right kind of sender: (state, action) pairs all get tried."""
        tid = data.draw(st.sampled_from(sorted(self.model.tickets)))
        if action == "assign":
            self.assign_ticket(ADMIN, tid, STAFF)
        elif action in ("reopen", "close", "reply"):
            owner = self.model.tickets[tid]["customer"]
            self.move_ticket(next(c for c in CUSTOMERS if c.public_key == owner), tid, action)
        else:
            self.move_ticket(STAFF2, tid, action)

    @precondition(lambda self: len(self.queue) < MAX_PENDING and any(
        t["category"] == "complaint" for t in self.model.tickets.values()))
    @rule(data=st.data(), over=st.sampled_from([0, 1, 1]))
    def compensate_up_to_the_cap(self, data, over):
        """Compensate a complaint ticket exactly up to the cap (applied) or one coin over it (refused)."""
        complaints = sorted(k for k, t in self.model.tickets.items() if t["category"] == "complaint")
        tid = data.draw(st.sampled_from(complaints))
        self.compensate(STAFF, tid, CAP - self.model.tickets[tid]["compensated"] + over)

    @precondition(lambda self: len(self.queue) < MAX_PENDING - 1 and (
        self.model.tickets or any(o["confirmed"] for o in self.model.orders.values())))
    @rule(data=st.data(), rating=st.integers(1, 5))
    def feedback_on_a_known_target_twice(self, data, rating):
        """Feedback by the target's customer, sent twice: the second is refused, the reward paid once."""
        targets = [("ticket", k, t["customer"]) for k, t in self.model.tickets.items()] + [
            ("order", k, o["customer"]) for k, o in self.model.orders.items() if o["confirmed"]]
        kind, tid, owner = data.draw(st.sampled_from(sorted(targets)))
        customer = next(c for c in CUSTOMERS if c.public_key == owner)
        self.submit_feedback(customer, (kind, tid), rating)
        self.submit_feedback(customer, (kind, tid), rating)

    @precondition(lambda self: len(self.queue) <= MAX_PENDING - 5)
    @rule(tid=ticket_ids, customer=customers, category=st.sampled_from(["complaint", "complaint", "suggestion"]),
          amount=st.integers(1, 700), end=st.sampled_from(["resolve", "reopen", "close", "feedback"]))
    def ticket_story(self, tid, customer, category, amount, end):
        self.open_ticket(customer, tid, category, "")
        self.assign_ticket(ADMIN, tid, STAFF2)
        self.compensate(STAFF, tid, amount)
        self.move_ticket(STAFF2, tid, "resolve")
        if end == "feedback":
            self.submit_feedback(customer, ("ticket", tid), 5)
        elif end != "resolve":
            self.move_ticket(customer, tid, end)

    @rule(advance_ms=st.integers(min_value=1, max_value=10_000))
    def seal(self, advance_ms):
        ts = self.model.ts
        checked, _, _ = self.seal_queue(ts)
        assert [r.reason for r in checked.results] == self.expected
        for result in checked.results:
            for event in result.events:
                if event[0] == "order_refunded":
                    self.paid_events[("refund", event[1])] += 1
                elif event[0] == "feedback":
                    self.paid_events[("feedback", event[1], event[2])] += 1
                elif event[0] == "trained":
                    self.paid_events[("course", event[1], event[2])] += 1
                elif event[0] == "coupon_applied":
                    self.paid_events[("coupon", event[1])] += 1
                elif event[0] == "compensated":
                    self.compensated_events[event[1]] += event[3]
        self.expected = []
        self.model.ts = ts + advance_ms
        self.committed = copy.deepcopy(self.model)

    # --- invariants on the committed state ----------------------------------------------------------------

    def balances(self) -> dict[bytes, int]:
        return {k[1:]: get_account(self.state, k[1:]).balance for k in self.state.data if k[:1] == PREFIX_ACCOUNT}

    @invariant()
    def balances_and_supply_match_the_model_and_none_is_negative(self):
        balances = self.balances()
        assert all(v >= 0 for v in balances.values())
        assert get_supply(self.state) == sum(balances.values()) == self.committed.supply
        assert {k: v for k, v in balances.items() if v} == {k: v for k, v in self.committed.balances.items() if v}

    @invariant()
    def debts_match_the_model(self):
        stored = {k[1:]: get_debt(self.state, k[1:]) for k in self.state.data if k[:1] == PREFIX_DEBT}
        assert stored == {k: v for k, v in self.committed.debts.items() if v}

    @invariant()
    def refunds_coupons_feedback_and_training_rewards_never_pay_twice(self):
        assert all(n == 1 for n in self.paid_events.values()), self.paid_events
        for oid in ORDER_IDS:
            order = get_order(self.state, oid)
            model = self.committed.orders.get(oid)
            assert (order is None) == (model is None)
            if order is not None:
                assert bool(order.refunded_at) == model["refunded"]
                assert self.paid_events[("refund", oid)] == int(model["refunded"])
                assert order.discount == model["discount"]
                assert self.paid_events[("coupon", oid)] == int(order.discount > 0)
        assert sum(n for k, n in self.paid_events.items() if k[0] == "coupon") <= COUPON_TOTAL

    @invariant()
    def compensation_never_exceeds_the_cap_and_tickets_follow_the_model(self):
        for tid in TICKET_IDS:
            ticket = get_ticket(self.state, tid)
            model = self.committed.tickets.get(tid)
            assert (ticket is None) == (model is None)
            if ticket is not None:
                assert ticket.compensated == self.compensated_events[tid] == model["compensated"] <= CAP
                assert ticket.state == model["state"]
        for customer in CUSTOMER_KEYS:
            paid = sum(n for tid, n in self.compensated_events.items()
                       if self.committed.tickets[tid]["customer"] == customer)
            assert paid == self.committed.compensated.get(customer, 0) <= CUSTOMER_CAP


FlowsMachine.TestCase.settings = settings(FlowsMachine.TestCase.settings, stateful_step_count=80)
test_flows_state_machine = FlowsMachine.TestCase
