"""The whole coin under random interleavings of every kind, checked against invariants after every block.

Unlike ``test_state_machine`` and ``test_flows_state_machine`` (which predict each result's reason), this machine
queues plausible and implausible transactions of every kind from every kind of sender, lets blocks advance the
clock in random steps (coins live ``LIFETIME`` ms and SLA targets are seconds, so block-time expiry sweeps and
SLA breaches fire on their own), builds each block with ``build_block``, has a validator re-execute it with
``validate_block`` on the same parent, and checks what must hold whatever happened, from the state and the
events against a small model:

* supply = minted − expired − burned = the sum of stored balances, and within the mint cap;
* every balance is the sum of its lots; a debt exists only as the ``debt_incurred``/``debt_repaid`` events
  recorded it, and while an account is in debt nothing but ``repay-debt`` spends or sends its coins;
* every lot change is explained by the block's events, replayed on the parent's lots by this file's own lot
  model: spends and transfers take the earliest-expiring lots, clawbacks the latest, sweeps the dead ones
  (so "every lot is spent oldest first" fails if the ledger takes any other lot);
* per account and UTC day of block time, outflows (transfers, coins paid on orders, privileges bought) stay
  within the daily limit of the account's KYC level (KYC 0 for an unregistered account), and every outflow
  that took the day's cumulative total past ``second_factor_threshold`` carried the second key's signature;
* no lot dead at the block time survives a block unless its sweep was carried over (entries still due).

``COIN_INVARIANT_EXAMPLES`` (env) raises the number of runs (default 30, ~20 s).
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from ledger import sweeps
from ledger.context import DAY_MS
from ledger.debt import get_debt
from ledger.genesis import Genesis, Validator
from ledger.customers import get_kyc_level
from ledger.limits import get_second_key
from ledger.lots import get_lots
from ledger.state import (
    PREFIX_ACCOUNT, PREFIX_DEBT, PREFIX_LOTS, MemoryState, get_account, get_counter, get_policy, get_supply,
)
from tests.ledger.flows_world import h
from tests.ledger.memory_chain import MemoryChain
from tests.strategies import CHAIN_ID, GENESIS_TIME_MS, VALIDATORS, key

ISSUER, STAFF, STAFF2, ADMIN, COMPLIANCE, TREASURY = (key(i) for i in range(60, 66))
ALICE, BOB, CAROL, STRANGER, SECOND = (key(i) for i in range(66, 71))  # SECOND: CAROL's second-factor key
KYC = {ALICE: 0, BOB: 1, CAROL: 2}  # STRANGER is registered (or not) by a rule
CUSTOMERS = tuple(KYC)
HOLDERS = CUSTOMERS + (STRANGER, STAFF)
STAFF_KEYS = (STAFF.public_key, STAFF2.public_key)
ROLE_HOLDERS = frozenset(k.public_key for k in (ISSUER, STAFF, STAFF2, ADMIN, COMPLIANCE, TREASURY))  # no KYC limit
BRANCH = "branch-0"
ORDER_IDS = tuple(f"o{i}" for i in range(8))
TICKET_IDS = ("t0", "t1", "t2", "t3")
COURSES = ("c0", "c1", "c9")  # c9 is not in the catalogue
COUPON = "k0"
CAMPAIGNS = (  # [campaign_id, trigger, effect, amount, budget, per_customer, branch, currency, min_amount, min_tier,
    #            starts_at_ms, ends_at_ms, coupon_currency, coupon_lifetime_ms]
    ["bonus", "order_confirmed", "bonus", 150, 3_000, 3, "", "", 0, "", 0, 0, "", 0],
    ["first", "first_order", "multiplier", 50, 2_000, 1, "", "USD", 0, "", 0, 0, "", 0],
    ["rated", "feedback", "bonus", 30, 600, 2, "", "", 0, "", 0, 0, "", 0],
    ["welcome", "registration", "bonus", 200, 400, 1, "", "", 0, "", 0, 0, "", 0],
)
LIFETIME = 40_000  # ms a coin lives: sweeps fire within a few blocks
THRESHOLD = 2_000  # second_factor_threshold
CAP = 30_000  # mint_cap: credits of every source hit it
MAX_PENDING = 16
POLICY: dict = {
    "mint_cap": CAP, "coin_lifetime_ms": LIFETIME, "second_factor_threshold": THRESHOLD,
    "daily_outflow_kyc0": 1_500, "daily_outflow_kyc1": 4_000, "daily_outflow_kyc2": 30_000,
    "refund_window_ms": 120_000, "compensation_cap_per_ticket": 800, "privilege_priority_price": 300,
    "privilege_vip_price": 900, "privilege_lifetime_ms": 60_000, "currencies": "EUR,USD", "fx_max_age_ms": 50_000,
    "sla_breach_compensation_first_response": 40, "sla_breach_compensation_resolution": 120,
}
for _category in ("complaint", "inquiry", "suggestion"):
    for _p in (1, 2, 3):
        POLICY[f"sla_first_response_ms_{_category}_p{_p}"] = 3_000 * _p
        POLICY[f"sla_resolution_ms_{_category}_p{_p}"] = 15_000 * _p
OUTFLOW_LIMIT = {level: POLICY[f"daily_outflow_kyc{level}"] for level in (0, 1, 2)}
# Block-time steps: mostly seconds, sometimes past a coin's life, sometimes into the next UTC day.
ADVANCE = st.one_of(st.integers(1, 5_000), st.integers(5_000, 2 * LIFETIME), st.just(DAY_MS // 2))

anyone = st.sampled_from(HOLDERS + (STAFF2, ADMIN))
customers = st.sampled_from(CUSTOMERS)
customer_mostly = st.sampled_from(CUSTOMERS + CUSTOMERS + (STRANGER, STAFF))
account = st.sampled_from(HOLDERS)


# --- the lot model: this file's own statement of how lots move --------------------------------------------


def take_oldest(lots: dict[int, int], amount: int) -> list[tuple[int, int]]:
    """Remove ``amount`` from ``lots`` (expiry -> amount), earliest expiry first; return what was taken."""
    taken = []
    for expires in sorted(lots):
        if amount == 0:
            break
        part = min(lots[expires], amount)
        taken.append((expires, part))
        amount -= part
        lots[expires] -= part
        if lots[expires] == 0:
            del lots[expires]
    assert amount == 0, f"the lot model has {amount} coins too few to take"
    return taken


def take_latest(lots: dict[int, int], amount: int) -> None:
    """Remove ``amount`` from ``lots``, latest expiry first (a refund's clawback)."""
    for expires in sorted(lots, reverse=True):
        part = min(lots[expires], amount)
        amount -= part
        lots[expires] -= part
        if lots[expires] == 0:
            del lots[expires]
    assert amount == 0, f"the lot model has {amount} coins too few to claw back"


def lots_of(state, who: bytes) -> dict[int, int]:
    return dict(get_lots(state, who))


def accounts_with(state: MemoryState, prefix: bytes) -> set[bytes]:
    return {k[1:] for k in state.data if k[:1] == prefix}


class CoinInvariants(MemoryChain, RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.start_chain(Genesis(
            chain_id=CHAIN_ID, genesis_time_ms=GENESIS_TIME_MS,
            validators=(Validator(BRANCH, VALIDATORS[0].public_key),),
            roles={"issuer": (ISSUER.public_key,), "staff": STAFF_KEYS, "branch-admin": (ADMIN.public_key,),
                   "compliance": (COMPLIANCE.public_key,), "treasury": (TREASURY.public_key,)},
            policy=dict(POLICY)))
        self.ts = self.head.timestamp_ms + 1_000
        self.outflow: Counter = Counter()  # (account, utc_day) -> coins sent, paid or spent on privileges
        self.debts: dict[bytes, int] = {}  # as the debt events recorded them
        self.blocks = 0
        self.stories = 0  # numbers fresh ids
        self.applied: Counter = Counter()  # kind -> applied count (to see the run reached deep states)
        for c, level in KYC.items():
            self.submit(STAFF, "register-customer", [c.public_key, level, h(c.public_key.hex())])
        self.submit(CAROL, "set-second-factor", [SECOND.public_key])
        # Campaigns (decided at once: one branch, quorum 1): a coupon campaign, bonuses on orders and feedback
        self.submit(ADMIN, "propose-campaign", ["spring", "spring", "registration", "coupon", 500, 5_000, 1, "", "",
                                                0, "", 0, 0, "EUR", 10**11])
        self.submit(ADMIN, "issue-coupon", [COUPON, "spring", 500, "EUR", GENESIS_TIME_MS + 10**11, b"\x00" * 32, 3])
        for campaign in CAMPAIGNS:
            self.submit(ADMIN, "propose-campaign", [campaign[0], *campaign])
        for course in ("c0", "c1"):
            self.submit(ADMIN, "propose-training-course", [f"course-{course}", course, 400])
        self.submit(TREASURY, "set-fx-rate", ["USD", 900_000])
        self.seal(1_000)

    def submit(self, sender, kind: str, payload: list, *extra) -> None:
        self.queue_tx(sender, kind, payload, *extra)

    # --- rules: coins ----------------------------------------------------------------------------------------

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(to=account, amount=st.one_of(st.integers(1, 8_000), st.just(CAP // 2)), by=st.sampled_from((ISSUER, ISSUER, STAFF)))
    def mint(self, to, amount, by):
        self.submit(by, "mint", [to.public_key, amount])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=customer_mostly, to=account, amount=st.integers(1, 3_000), second=st.booleans())
    def transfer(self, s, to, amount, second):
        extra = (SECOND,) if s is CAROL and second else ()  # only CAROL has a second key
        self.submit(s, "transfer", [to.public_key, amount, bytes(32)], *extra)

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=customer_mostly, privilege=st.sampled_from(("priority", "vip", "gold")))
    def buy_privilege(self, s, privilege):
        self.submit(s, "buy-privilege", [privilege])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=customer_mostly, amount=st.integers(1, 600))
    def repay_debt(self, s, amount):
        self.submit(s, "repay-debt", [amount])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(level=st.integers(0, 2), by=st.sampled_from((STAFF, STAFF, BOB)))
    def register_stranger(self, level, by):
        self.submit(by, "register-customer", [STRANGER.public_key, level, h("stranger")])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(who=account, freeze=st.sampled_from((True, False, False)), by=st.sampled_from((COMPLIANCE, COMPLIANCE, STAFF)))
    def freeze(self, who, freeze, by):
        self.submit(by, "freeze-account" if freeze else "unfreeze-account", [who.public_key, "aml"])

    # --- rules: orders and coupons ---------------------------------------------------------------------------

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(oid=st.sampled_from(ORDER_IDS), customer=st.sampled_from(CUSTOMERS + (STRANGER,)),
          amount=st.integers(1, 400_000), currency=st.sampled_from(("EUR", "EUR", "USD", "JPY")))
    def create_order(self, oid, customer, amount, currency):
        self.submit(STAFF, "create-order", [oid, customer.public_key, amount, currency, h(oid)])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(currency=st.sampled_from(("USD", "USD", "JPY", "EUR")), rate=st.integers(1, 3_000_000),
          by=st.sampled_from((TREASURY, TREASURY, STAFF)))
    def set_fx_rate(self, currency, rate, by):
        self.submit(by, "set-fx-rate", [currency, rate])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=customer_mostly, oid=st.sampled_from(ORDER_IDS), coins=st.one_of(st.just(0), st.integers(1, 6_000)))
    def pay_order(self, s, oid, coins):
        self.submit(s, "pay-order", [oid, coins])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(oid=st.sampled_from(ORDER_IDS), by=st.sampled_from((STAFF, STAFF2, ALICE)))
    def confirm_order(self, oid, by):
        self.submit(by, "confirm-order", [oid])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(oid=st.sampled_from(ORDER_IDS), by=st.sampled_from(CUSTOMERS + (STAFF,)))
    def request_refund(self, oid, by):
        self.submit(by, "request-refund", [oid, h("why")])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=customer_mostly, oid=st.sampled_from(ORDER_IDS))
    def redeem_coupon(self, s, oid):
        self.submit(s, "redeem-coupon", [COUPON, oid])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(campaign=st.sampled_from([c[0] for c in CAMPAIGNS]), by=st.sampled_from((ADMIN, ADMIN, STAFF)))
    def end_campaign(self, campaign, by):
        self.stories += 1
        self.submit(by, "propose-end-campaign", [f"end-{campaign}-{self.stories}", campaign])

    # --- rules: tickets, feedback, training ------------------------------------------------------------------

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=customer_mostly, tid=st.sampled_from(TICKET_IDS),
          category=st.sampled_from(("complaint", "complaint", "inquiry", "suggestion")), priority=st.integers(1, 3),
          oid=st.sampled_from(("",) + ORDER_IDS))
    def open_ticket(self, s, tid, category, priority, oid):
        self.submit(s, "open-ticket", [tid, category, priority, oid, h(tid)])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(tid=st.sampled_from(TICKET_IDS), to=st.sampled_from((STAFF, STAFF2)), by=st.sampled_from((ADMIN, STAFF)))
    def assign_ticket(self, tid, to, by):
        self.submit(by, "assign-ticket", [tid, to.public_key])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(tid=st.sampled_from(TICKET_IDS), action=st.sampled_from(("respond", "resolve", "wait", "reopen", "close",
                                                                     "reply")),
          s=st.sampled_from((STAFF, STAFF2) + CUSTOMERS))
    def move_ticket(self, tid, action, s):
        self.submit(s, f"{action}-ticket", [tid] if action == "close" else [tid, h(action)])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(tid=st.sampled_from(TICKET_IDS), amount=st.integers(1, 900), by=st.sampled_from((STAFF, STAFF2, ALICE)))
    def compensate(self, tid, amount, by):
        self.submit(by, "compensate", [tid, amount])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(s=customer_mostly, goal=st.one_of(st.tuples(st.just("order"), st.sampled_from(ORDER_IDS)),
                                              st.tuples(st.just("ticket"), st.sampled_from(TICKET_IDS))),
          rating=st.integers(1, 5))
    def feedback(self, s, goal, rating):
        self.submit(s, "submit-feedback", [goal[0], goal[1], rating, h("c")])

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(trainee=st.sampled_from((STAFF, STAFF2, ALICE)), course=st.sampled_from(COURSES),
          by=st.sampled_from((ADMIN, ADMIN, STAFF)))
    def record_training(self, trainee, course, by):
        self.submit(by, "record-training", [trainee.public_key, course])

    # --- stories: a whole flow queued at once, so random runs reach deep states (debts, breaches, expiry) -----

    @precondition(lambda self: len(self.queue) <= MAX_PENDING - 4)
    @rule(amounts=st.lists(st.integers(100, 6_000), min_size=3, max_size=3))
    def fund_everyone(self, amounts):
        for who, amount in zip(CUSTOMERS, amounts):
            self.mint(who, amount, ISSUER)

    @precondition(lambda self: len(self.queue) <= MAX_PENDING - 8)
    @rule(oid=st.sampled_from(ORDER_IDS), customer=customers, amount=st.integers(1_000, 300_000),
          currency=st.sampled_from(("EUR", "USD")), coins=st.sampled_from((0, 0, 200, 1_400)),
          spend_away=st.integers(0, 2_500), refund=st.sampled_from((True, True, False)), gap=st.sampled_from((0, 2_000, LIFETIME, LIFETIME)))
    def order_story(self, oid, customer, amount, currency, coins, spend_away, refund, gap):
        self.stories += 1
        self.mint(STAFF, 300, ISSUER)
        oid = f"{oid}-{self.stories}"  # a fresh order (the plain rules reuse ids, and are refused for it)
        if currency != "EUR":
            self.set_fx_rate(currency, 1_100_000, TREASURY)
        self.create_order(oid, customer, amount, currency)
        self.pay_order(customer, oid, coins)
        self.confirm_order(oid, STAFF)
        if spend_away:  # send the earned coins away first: a refund then leaves a debt
            self.transfer(customer, STRANGER, spend_away, True)
        if gap:
            self.seal(gap)
        if refund:
            self.request_refund(oid, customer)
            self.transfer(STAFF, customer, 300, False)  # a transfer in repays no debt: coins held while in debt
            self.transfer(customer, BOB if customer is not BOB else ALICE, 5, False)  # refused while in debt
            self.repay_debt(customer, 50)

    @precondition(lambda self: len(self.queue) <= MAX_PENDING - 6)
    @rule(tid=st.sampled_from(TICKET_IDS), customer=customers, priority=st.integers(1, 3),
          compensation=st.integers(1, 900), steps=st.lists(
              st.sampled_from(("respond", "wait", "reply", "resolve", "reopen", "close", "seal")), max_size=4))
    def ticket_story(self, tid, customer, priority, compensation, steps):
        self.open_ticket(customer, tid, "complaint", priority, "")
        self.assign_ticket(tid, STAFF, ADMIN)
        self.compensate(tid, compensation, STAFF)
        for step in steps:
            if step == "seal":
                self.seal(4_000)  # past a first-response target: the sweep compensates the breach
            else:
                self.move_ticket(tid, step, customer if step in ("reply", "reopen", "close") else STAFF)
        self.feedback(customer, ("ticket", tid), 5)

    @precondition(lambda self: len(self.queue) <= MAX_PENDING - 4)
    @rule(s=st.sampled_from(CUSTOMERS + (STRANGER,)), amounts=st.lists(st.integers(1, 2_500), min_size=1, max_size=3),
          second=st.booleans())
    def split_transfers(self, s, amounts, second):
        """Several transfers on one day (a limit or threshold is crossed cumulatively)."""
        self.mint(s, 5_000, ISSUER)
        for amount in amounts:
            self.transfer(s, STAFF, amount, second)

    # --- blocks and the invariants -----------------------------------------------------------------------------

    @rule(advance_ms=ADVANCE)
    def seal(self, advance_ms):
        ts = self.ts
        checked, parent_state, queued = self.seal_queue(ts)
        after = self.state
        txs = [None] * (len(checked.results) - len(queued)) + list(queued)  # the sweep (if any) comes first
        self.check_lots_follow_the_events(parent_state, after, checked.results, ts)
        self.check_debts(after, checked.results, txs)
        self.check_outflow_limits(after, checked.results, txs, ts)
        self.check_supply(after)
        self.check_nothing_dead_survives(after, ts)
        for tx, result in zip(txs, checked.results):
            if result.applied:
                self.applied["block-sweep" if tx is None else tx.body.kind] += 1
        self.blocks += 1
        self.ts = ts + advance_ms

    def check_supply(self, state: MemoryState) -> None:
        supply = get_supply(state)
        minted, expired, burned = (get_counter(state, n) for n in ("minted", "expired", "burned"))
        assert supply == minted - expired - burned, (supply, minted, expired, burned)
        assert supply <= get_policy(state, "mint_cap", 0) == CAP, (supply, CAP)
        balances = {who: get_account(state, who).balance for who in accounts_with(state, PREFIX_ACCOUNT)}
        assert supply == sum(balances.values()), (supply, sum(balances.values()))
        for who in accounts_with(state, PREFIX_LOTS) | set(balances):
            assert balances.get(who, 0) == sum(lots_of(state, who).values()) >= 0, who.hex()[:8]

    def check_lots_follow_the_events(self, before, after, results, ts: int) -> None:
        """Replay the block's coin events on the parent's lots with this file's lot model: the stored lots must
        be exactly what the events explain (spends and transfers oldest first, clawbacks latest first)."""
        model: dict[bytes, dict[int, int]] = {}

        def lots(who: bytes) -> dict[int, int]:
            if who not in model:
                model[who] = lots_of(before, who)
            return model[who]

        for result in results:
            if not result.applied:
                continue
            for event in result.events:
                kind = event[0]
                if kind == "credited":
                    _, who, amount, _source, expires = event
                    held = lots(who)
                    held[expires] = held.get(expires, 0) + amount
                elif kind == "expired":
                    _, who, amount = event
                    held = lots(who)
                    dead = [e for e in held if e <= ts]
                    assert sum(held[e] for e in dead) == amount, ("expired", who.hex()[:8], amount, held)
                    for e in dead:
                        del held[e]
                elif kind == "spent":
                    take_oldest(lots(event[1]), event[2])
                elif kind == "clawed_back":
                    take_latest(lots(event[1]), event[2])
                elif kind == "transferred":
                    _, sender, to, amount = event
                    received = lots(to)
                    for expires, part in take_oldest(lots(sender), amount):
                        received[expires] = received.get(expires, 0) + part
        touched = set(model) | accounts_with(before, PREFIX_LOTS) | accounts_with(after, PREFIX_LOTS)
        for who in touched:
            expected = model[who] if who in model else lots_of(before, who)
            assert lots_of(after, who) == expected, (
                f"lots of {who.hex()[:8]}: stored {sorted(lots_of(after, who).items())}, the events explain "
                f"{sorted(expected.items())}")

    def check_debts(self, after, results, txs) -> None:
        """Debts are what the events recorded; an account in debt spends only to repay, and sends nothing."""
        for tx, result in zip(txs, results):
            if not result.applied:
                continue
            for event in result.events:
                kind = event[0]
                if kind == "debt_incurred":
                    _, who, amount, _purpose, total = event
                    assert total == self.debts.get(who, 0) + amount
                    self.debts[who] = total
                elif kind == "debt_repaid":
                    _, who, amount, _source, left = event
                    assert left == self.debts.get(who, 0) - amount >= 0
                    self.debts[who] = left
                elif kind == "spent" and self.debts.get(event[1], 0):
                    assert tx is not None and tx.body.kind == "repay-debt" and event[3] == "debt", (
                        f"{event[3]} spent {event[2]} by an account owing {self.debts[event[1]]}")
                elif kind == "transferred":
                    assert not self.debts.get(event[1], 0), f"an account owing {self.debts[event[1]]} sent coins"
        self.debts = {who: d for who, d in self.debts.items() if d}
        stored = {who: get_debt(after, who) for who in accounts_with(after, PREFIX_DEBT)}
        assert stored == self.debts, (stored, self.debts)

    def check_outflow_limits(self, after, results, txs, ts: int) -> None:
        """Per account and UTC day: outflows within the limit of its KYC level (KYC 0 for an account that is no
        customer and holds no role), and every outflow that took the day's total past the threshold co-signed."""
        day = ts // DAY_MS
        for tx, result in zip(txs, results):
            if not result.applied or tx is None:
                continue
            for event in result.events:
                kind = event[0]
                if kind == "transferred":
                    who, amount = event[1], event[3]
                elif kind == "order_paid":
                    who, amount = event[2], event[3]
                elif kind == "privilege_bought":
                    who, amount = event[1], event[3]
                else:
                    continue
                if not amount:
                    continue
                self.outflow[(who, day)] += amount
                total = self.outflow[(who, day)]
                if total > THRESHOLD:
                    second = get_second_key(after, who)
                    assert second is not None and second in tx.signers[1:], (
                        f"{kind} of {amount} took {who.hex()[:8]}'s day to {total} > {THRESHOLD} without the "
                        "second key's signature")
                # Levels only rise (an unregistered account is KYC 0 until registered), so the level after the
                # block bounds what every tx of the day was allowed
                level = get_kyc_level(after, who)
                if level is None and who not in ROLE_HOLDERS:
                    level = 0
                if level is not None:
                    assert total <= OUTFLOW_LIMIT[level], (
                        f"{who.hex()[:8]} (KYC {level}) moved {total} out on day {day}; the limit is "
                        f"{OUTFLOW_LIMIT[level]}")

    def check_nothing_dead_survives(self, after, ts: int) -> None:
        if sweeps.get_due_now(after, ts) is not None:
            return  # the sweep carried entries over to the next block
        for who in accounts_with(after, PREFIX_LOTS):
            dead = [(e, a) for e, a in get_lots(after, who) if e <= ts]
            assert not dead, f"{who.hex()[:8]} still holds {dead} dead at block time {ts}"

    def teardown(self) -> None:
        if self.queue:
            self.seal(1)


_EXAMPLES = int(os.environ.get("COIN_INVARIANT_EXAMPLES", "40"))
CoinInvariants.TestCase.settings = settings(
    max_examples=_EXAMPLES, stateful_step_count=100, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_the_coin_keeps_its_invariants_under_every_interleaving = CoinInvariants.TestCase


def test_a_long_run_reaches_every_coin_path() -> None:
    """One fixed long interleaving reaches expiry sweeps, SLA breaches, debts, refunds and FX orders (the random
    runs above are only worth their invariants if such states are reachable)."""
    m = CoinInvariants()
    m.mint(ALICE, 500, ISSUER)
    m.mint(CAROL, 8_000, ISSUER)
    m.mint(BOB, CAP, ISSUER)  # past the supply cap: refused
    m.create_order("o0", ALICE, 100_000, "EUR")
    m.pay_order(ALICE, "o0", 0)
    m.seal(1_000)
    m.confirm_order("o0", STAFF)
    m.transfer(ALICE, BOB, 1_400, False)  # ALICE spends what the order earned...
    m.transfer(CAROL, BOB, 2_500, True)
    m.open_ticket(BOB, "t0", "complaint", 1, "")
    m.seal(1_000)
    m.request_refund("o0", ALICE)  # ... then refunds it: a debt
    m.mint(STAFF, 500, ISSUER)
    m.transfer(STAFF, ALICE, 300, False)  # coins held while in debt (a transfer in repays nothing) ...
    m.transfer(ALICE, BOB, 5, False)  # ... cannot be sent
    m.repay_debt(ALICE, 10)  # ... only burned for the debt
    m.create_order("o1", BOB, 20_000, "USD")
    m.pay_order(BOB, "o1", 100)
    m.buy_privilege(BOB, "priority")
    m.seal(2 * LIFETIME)  # t0 breaches its targets; every lot dies
    m.seal(1_000)
    m.teardown()
    kinds = {kind for kind in m.applied}
    assert {"confirm-order", "request-refund", "transfer", "pay-order", "buy-privilege", "block-sweep"} <= kinds, kinds
    assert get_counter(m.state, "expired") > 0 and get_counter(m.state, "credited:sla") > 0
    assert get_counter(m.state, "debt_incurred") > 0 and get_counter(m.state, "debt_repaid") >= 10
