"""Random sequences of the coin-core kinds (valid and invalid) against a small dict model of the ledger.

Rules queue transactions together with a prediction *function*; ``seal`` picks the block time, runs every
prediction against a copy of the committed model at that time (expiry, coupon expiry and the UTC day depend
on it), builds the block, has a validator re-execute it, commits it and checks each result's reason. A
prediction that fails leaves the model untouched, as the executor rolls a failed tx back.

Invariants after every step, on the committed state: supply = minted − expired − burned = the sum of
balances (dead-but-unswept lots included) and equals the model's; each account's lots sum to its balance and
equal the model's lots; no negative balance; a coupon never pays twice (each order carries at most one
coupon, redemptions never exceed a coupon's total or a customer's limit, and every redemption discounted
exactly one order); nonces count committed txs; the state root matches a from-scratch rebuild.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ledger import codec
from ledger.chain import build_block, genesis_block, validate_block
from ledger.lots import get_lots
from ledger.context import DAY_MS
from ledger.orders import get_order
from ledger.process.payload import MAX_AMOUNT
from ledger.process.common import DEFAULT_POLICY
from ledger.process.coupons import get_coupon, get_coupon_uses
from ledger.smt import MemoryNodes, compute_root
from ledger.state import PREFIX_ACCOUNT, MemoryState, get_account, get_counter, get_supply
from ledger.tx import SignedTx, make_tx
from tests.strategies import CHAIN_ID, VALIDATORS, amounts, key, make_genesis, memos

CAP = 2_000
ISSUERS = (key(20), key(21))
CUSTOMERS = (key(22), key(23), key(24))  # 22 and 23 are registered at setup (KYC 0 and 1), 24 is not
ADMIN, STAFF, COMPLIANCE = key(25), key(26), key(27)
SECOND_KEYS = (key(28), key(29))
OUTSIDER = key(30)  # never anyone's second key: a signature by it is appended by a third party
ACCOUNTS = ISSUERS + CUSTOMERS + (ADMIN, STAFF, COMPLIANCE)
ORDERS = {"o22a": CUSTOMERS[0], "o22b": CUSTOMERS[0], "o23a": CUSTOMERS[1]}
COUPON_IDS = ("C1", "C2", " bad")
# decided at setup (one branch: the admin's proposal decides at once); its trigger (feedback) never fires here
CAMPAIGN, CAMPAIGN_VALUE, CAMPAIGN_BUDGET, CAMPAIGN_COUPON_LIFE = "spring", 400, 2_000, 30_000
POLICY = {
    "mint_cap": CAP, "coin_lifetime_ms": 15_000, "second_factor_threshold": 300,
    "daily_outflow_kyc0": 200, "daily_outflow_kyc1": 600, "daily_outflow_kyc2": 5_000,
    "privilege_priority_price": 50, "privilege_vip_price": 150, "privilege_lifetime_ms": 20_000,
}
POLICY_CHANGES = st.sampled_from([
    ("coin_lifetime_ms", 4_000), ("coin_lifetime_ms", 30_000), ("second_factor_threshold", 50),
    ("privilege_vip_price", 0), ("daily_outflow_kyc0", 20), ("mint_cap", "many"), ("no_such_policy", 1),
])
ROLES = ("branch-admin", "staff", "issuer", "compliance")
HOLDERS = CUSTOMERS + ISSUERS + (STAFF,)  # the accounts coins usually flow between
small_amounts = st.integers(1, 300) | amounts  # mostly amounts that can succeed, and the edges
MAX_PENDING = 12


@dataclass
class Model:
    """The ledger as dicts: lots per account, supply counters, roles, customers, freezes, coupons, orders."""

    lots: dict[bytes, dict[int, int]] = field(default_factory=dict)  # account -> {expires_at_ms: amount}
    minted: int = 0
    burned: int = 0
    expired: int = 0
    policy: dict = field(default_factory=lambda: dict(POLICY))
    roles: dict[str, set] = field(default_factory=dict)
    customers: dict[bytes, int] = field(default_factory=dict)  # account -> KYC level
    second: dict[bytes, bytes] = field(default_factory=dict)
    frozen: set = field(default_factory=set)
    outflow: dict[bytes, tuple[int, int]] = field(default_factory=dict)  # account -> (utc day, amount)
    coupons: dict[str, list] = field(default_factory=dict)  # id -> [value, expires, limit, total, redeemed]
    campaign_spent: int = 0  # of the setup campaign's budget, reserved by the coupons issued
    uses: dict[tuple[bytes, str], int] = field(default_factory=dict)
    order_coupon: dict[str, str] = field(default_factory=dict)  # order id -> the coupon applied on it
    due: set[tuple[int, bytes]] = field(default_factory=set)  # expiry due entries: (expires_at_ms, account)

    # --- coin mechanics, as ledger.lots does them ---------------------------------------------------------

    def balance(self, who: bytes) -> int:
        return sum(self.lots.get(who, {}).values())

    def supply(self) -> int:
        return self.minted - self.expired - self.burned

    def sweep(self, who: bytes, ts: int) -> None:
        lots = self.lots.get(who, {})
        dead = sum(a for e, a in lots.items() if e <= ts)
        self.lots[who] = {e: a for e, a in lots.items() if e > ts}
        self.expired += dead

    def take(self, who: bytes, amount: int) -> list[tuple[int, int]]:
        taken, lots = [], self.lots[who]
        for e in sorted(lots):
            part = min(amount, lots[e])
            if part:
                taken.append((e, part))
                lots[e] -= part
                amount -= part
            if not lots[e]:
                del lots[e]
        return taken

    def add(self, who: bytes, expires: int, amount: int) -> None:
        lots = self.lots.setdefault(who, {})
        lots[expires] = lots.get(expires, 0) + amount
        self.due.add((expires, who))  # every lot added schedules its expiry (stale once spent: still swept)

    def block_sweep(self, ts: int) -> bool:
        """The block's sweep: the earliest 256 entries due by ``ts`` expire their accounts' dead lots first."""
        entries = sorted(e for e in self.due if e[0] <= ts)[:256]
        for expires, who in entries:
            self.due.discard((expires, who))
            self.sweep(who, ts)
        return bool(entries)

    def outflow_reason(self, who: bytes, amount: int, ts: int, signers) -> str:
        """The daily outflow: the KYC limit (level 0 for an account neither customer nor role holder, none for a
        role holder), then the second factor once the day's total crosses the threshold."""
        day, used = self.outflow.get(who, (ts // DAY_MS, 0))
        total = (used if day == ts // DAY_MS else 0) + amount
        level = self.customers.get(who)
        if level is None and not any(who in holders for holders in self.roles.values()):
            level = 0
        if level is not None and total > self.policy[f"daily_outflow_kyc{level}"]:
            return "daily_limit_exceeded"
        if total > self.policy["second_factor_threshold"] and self.second.get(who) not in signers:
            return "second_factor_required"
        self.outflow[who] = (ts // DAY_MS, total)
        return ""

    def has(self, role: str, who: bytes) -> bool:
        return who in self.roles.get(role, set())

    # --- one prediction per kind: the reason, in the rule order of the step -------------------------------

    def mint(self, ts, sender, to, amount):
        if not self.has("issuer", sender):
            return "unauthorized"
        if to == sender:  # an issuer never mints to itself
            return "self_dealing"
        if amount <= 0:
            return "invalid_amount"
        if to in self.frozen:  # a frozen account receives nothing
            return "account_frozen"
        if self.supply() + amount > self.policy["mint_cap"]:
            return "mint_cap_exceeded"
        self.sweep(to, ts)
        self.add(to, ts + self.policy["coin_lifetime_ms"], amount)
        self.minted += amount
        return ""

    def transfer(self, ts, sender, signers, to, amount, memo):
        if amount <= 0:
            return "invalid_amount"
        if to == sender:
            return "self_transfer"
        if sender in self.frozen or to in self.frozen:  # frozen means frozen: neither sends nor receives
            return "account_frozen"
        self.sweep(sender, ts)
        self.sweep(to, ts)
        if self.balance(sender) < amount:
            return "insufficient_balance"
        for expires, part in self.take(sender, amount):
            self.add(to, expires, part)
        return self.outflow_reason(sender, amount, ts, signers)

    def register(self, ts, sender, customer, kyc):
        if not self.has("staff", sender):
            return "unauthorized"
        if kyc not in (0, 1, 2):
            return "invalid_kyc_level"
        if customer in self.customers:
            return "customer_exists"
        self.customers[customer] = kyc
        return ""

    def set_second(self, ts, sender, signers, second):
        if second == sender:
            return "invalid_second_key"
        if sender in self.second and self.second[sender] not in signers:
            return "second_factor_required"
        self.second[sender] = second
        return ""

    def freeze(self, ts, sender, account, reason_code, on):
        if not self.has("compliance", sender):
            return "unauthorized"
        if not reason_code:
            return "invalid_name"
        if on and account in self.frozen:
            return "already_frozen"
        if not on and account not in self.frozen:
            return "not_frozen"
        (self.frozen.add if on else self.frozen.discard)(account)
        return ""

    def buy(self, ts, sender, privilege):
        if privilege not in ("priority", "vip"):
            return "unknown_privilege"
        if sender not in self.customers:
            return "unknown_customer"
        if sender in self.frozen:
            return "account_frozen"
        price = self.policy[f"privilege_{privilege}_price"]
        if price:
            self.sweep(sender, ts)
            if self.balance(sender) < price:
                return "insufficient_balance"
            self.take(sender, price)
            self.burned += price
            return self.outflow_reason(sender, price, ts, set())
        return ""

    def set_policy(self, ts, sender, name, value):
        if not self.has("branch-admin", sender):
            return "unauthorized"
        if name not in DEFAULT_POLICY:
            return "unknown_policy"
        if type(value) is not int:
            return "policy_value_invalid"
        self.policy[name] = value
        return ""

    def grant(self, ts, sender, account, role, branch, on):
        # (issue 11: a one-branch network, so an admin's proposal is decided at once; "branch-0" is its branch)
        if not self.has("branch-admin", sender):
            return "unauthorized"
        if on and role in ("branch-admin", "staff") and branch != "branch-0":
            return "unknown_branch"
        if on and role not in ("branch-admin", "staff") and branch:
            return "wrong_branch"
        if on and self.has(role, account):
            return "role_already_held"
        if not on and not self.has(role, account):
            return "role_not_held"
        if not on and role == "branch-admin" and len(self.roles[role]) == 1:
            return "last_branch_admin"
        if on and account == sender:  # nobody proposes a role for themselves
            return "self_dealing"
        (self.roles.setdefault(role, set()).add if on else self.roles[role].discard)(account)
        return ""

    def issue(self, ts, sender, cid, campaign, value, expires, total):
        if not (self.has("issuer", sender) or self.has("branch-admin", sender)):
            return "unauthorized"
        if cid != cid.strip():
            return "invalid_id"
        if cid in self.coupons:
            return "coupon_exists"
        if campaign != CAMPAIGN:  # the one campaign governance decided at setup
            return "unknown_campaign"
        if not (0 < value <= CAMPAIGN_VALUE and total > 0 and ts < expires <= ts + CAMPAIGN_COUPON_LIFE):
            return "invalid_coupon"
        if self.campaign_spent + value * total > CAMPAIGN_BUDGET:
            return "campaign_budget_exhausted"
        self.campaign_spent += value * total
        self.coupons[cid] = [value, expires, 1, total, 0]
        return ""

    def redeem(self, ts, sender, cid, order_id):
        if sender not in self.customers:
            return "unknown_customer"
        if sender in self.frozen:
            return "account_frozen"
        if cid not in self.coupons:
            return "unknown_coupon"
        value, expires, limit, total, redeemed = self.coupons[cid]
        if ts >= expires:
            return "coupon_expired"
        if redeemed >= total:
            return "coupon_exhausted"
        if self.uses.get((sender, cid), 0) >= limit:
            return "coupon_limit_reached"
        if ORDERS[order_id].public_key != sender:
            return "not_order_customer"
        if order_id in self.order_coupon:
            return "coupon_already_applied"
        self.order_coupon[order_id] = cid
        self.coupons[cid][4] += 1
        self.uses[(sender, cid)] = self.uses.get((sender, cid), 0) + 1
        return ""


Prediction = Callable[[Model, int], str]


def predict(method: str, *args) -> Prediction:
    """A prediction that applies ``Model.<method>`` at block time ``ts`` and undoes it if the tx fails."""
    def run(model: Model, ts: int) -> str:
        before = copy.deepcopy(model.__dict__)
        reason = getattr(model, method)(ts, *args)
        if reason:
            model.__dict__.update(before)
        return reason
    return run


class CoinMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        roles = {"branch-admin": (ADMIN,), "staff": (STAFF,), "compliance": (COMPLIANCE,)}
        # one validator = one branch: governance quorum 1, so an admin's proposal is decided by its own tx
        self.genesis = make_genesis(issuers=ISSUERS, policy=POLICY, roles=roles, validators=VALIDATORS[:1])
        self.proposals = 0
        block, execution = genesis_block(self.genesis)
        self.state = MemoryState(execution.state_writes)
        self.nodes = MemoryNodes(execution.smt_nodes)
        self.head = block.header
        self.model = Model(roles={r: {k.public_key for k in ks} for r, ks in roles.items()})
        self.model.roles["issuer"] = {k.public_key for k in ISSUERS}
        self.nonces: dict[bytes, int] = {}
        self.committed_txs: dict[bytes, int] = {}
        self.queue: list[SignedTx] = []
        self.predictions: list[Prediction] = []
        self.junk: list[tuple[SignedTx, str]] = []
        self.second_pending: set[bytes] = set()  # senders with a set-second-factor queued in this block
        # Setup: two registered customers with unpaid orders (orders belong to ledger.process.orders)
        for customer, kyc in ((CUSTOMERS[0], 0), (CUSTOMERS[1], 1)):
            self.send(STAFF, "register-customer", [customer.public_key, kyc, b"\x01" * 32],
                      predict("register", STAFF.public_key, customer.public_key, kyc))
        for order_id, customer in ORDERS.items():
            self.send(STAFF, "create-order", [order_id, customer.public_key, 1_000, "EUR", b"\x02" * 32],
                      lambda model, ts: "")
        self.send(ADMIN, "propose-campaign", ["p0", CAMPAIGN, "feedback", "coupon", CAMPAIGN_VALUE, CAMPAIGN_BUDGET,
                                              1, "", "", 0, "", 0, 0, "EUR", CAMPAIGN_COUPON_LIFE],
                  lambda model, ts: "")
        self.seal(1)

    def admitted_cosigners(self, sender, cosigner) -> tuple:
        """``(cosigner,)`` when it is surely the sender's second key when the tx runs, else no cosigner.

        Admission refuses any other further signer (``unexpected_signer``; the ``inadmissible`` rule covers it).
        """
        if cosigner is None or sender.public_key in self.second_pending \
                or self.model.second.get(sender.public_key) != cosigner.public_key:
            return ()
        return (cosigner,)

    def send(self, sender, kind: str, payload: list, prediction: Prediction, *cosigners) -> None:
        self.nonces[sender.public_key] = nonce = self.nonces.get(sender.public_key, 0) + 1
        self.queue.append(make_tx(CHAIN_ID, kind, sender, nonce, payload, *cosigners))
        self.predictions.append(prediction)

    # --- rules that queue transactions --------------------------------------------------------------

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from(ISSUERS * 3 + ACCOUNTS), to=st.sampled_from(HOLDERS), amount=small_amounts)
    def mint(self, sender, to, amount):
        if self.oversized(sender, "mint", [to.public_key, amount]):
            return
        self.send(sender, "mint", [to.public_key, amount], predict("mint", sender.public_key, to.public_key, amount))

    def oversized(self, sender, kind: str, payload: list, *cosigners) -> bool:
        """An amount above MAX_AMOUNT never enters a block: admission refuses it as bad_payload, no nonce used."""
        if abs(payload[1]) <= MAX_AMOUNT:
            return False
        tx = make_tx(CHAIN_ID, kind, sender, self.nonces.get(sender.public_key, 0) + 1, payload, *cosigners)
        self.queue.append(tx)
        self.junk.append((tx, "bad_payload"))
        return True

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from(HOLDERS), to=st.sampled_from(HOLDERS), amount=small_amounts, memo=memos,
          cosigner=st.sampled_from((None,) + SECOND_KEYS))
    def transfer(self, sender, to, amount, memo, cosigner):
        cosigners = self.admitted_cosigners(sender, cosigner)
        signers = {k.public_key for k in cosigners}
        if self.oversized(sender, "transfer", [to.public_key, amount, memo], *cosigners):
            return
        self.send(sender, "transfer", [to.public_key, amount, memo],
                  predict("transfer", sender.public_key, signers, to.public_key, amount, memo), *cosigners)

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from(ISSUERS), to=st.sampled_from(CUSTOMERS[:2]), amount=st.integers(1, 400))
    def mint_to_customer(self, sender, to, amount):
        """A mint that usually succeeds, to the customers that have orders and daily limits."""
        self.mint(sender, to, amount)

    def funded(self) -> list:
        """Holders with coins in the committed model (the lots may have died since)."""
        return [k for k in HOLDERS if self.model.balance(k.public_key)]

    @precondition(lambda self: len(self.queue) < MAX_PENDING and self.funded())
    @rule(data=st.data(), to=st.sampled_from(HOLDERS), cosigner=st.sampled_from((None,) + SECOND_KEYS))
    def transfer_held_coins(self, data, to, cosigner):
        """A transfer that may well succeed: a holder sends up to its balance."""
        sender = data.draw(st.sampled_from(self.funded()))
        amount = data.draw(st.integers(1, self.model.balance(sender.public_key)))
        self.transfer(sender, to, amount, bytes(32), cosigner)

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from((ADMIN,) + ISSUERS), cid=st.sampled_from(COUPON_IDS[:2]), value=st.integers(1, 400),
          expires_in=st.integers(5_000, 30_000), total=st.integers(1, 3))
    def issue_good_coupon(self, sender, cid, value, expires_in, total):
        """A coupon issue that succeeds unless the id is taken (or the budget is spent)."""
        self.issue_coupon(sender, cid, CAMPAIGN, value, expires_in, total)

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(order_id=st.sampled_from(sorted(ORDERS)), cid=st.sampled_from(COUPON_IDS[:2]))
    def redeem_coupon_on_own_order(self, order_id, cid):
        self.redeem_coupon(ORDERS[order_id], cid, order_id)

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from((STAFF, ADMIN)), customer=st.sampled_from(CUSTOMERS), kyc=st.integers(-1, 3))
    def register_customer(self, sender, customer, kyc):
        self.send(sender, "register-customer", [customer.public_key, kyc, b"\x03" * 32],
                  predict("register", sender.public_key, customer.public_key, kyc))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from(ACCOUNTS), second=st.sampled_from(SECOND_KEYS + (None,)),
          cosigner=st.sampled_from((None,) + SECOND_KEYS))
    def set_second_factor(self, sender, second, cosigner):
        second_key = sender.public_key if second is None else second.public_key
        cosigners = self.admitted_cosigners(sender, cosigner)
        self.second_pending.add(sender.public_key)
        self.send(sender, "set-second-factor", [second_key],
                  predict("set_second", sender.public_key, {k.public_key for k in cosigners}, second_key), *cosigners)

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from((COMPLIANCE, STAFF)), account=st.sampled_from(CUSTOMERS),
          reason_code=st.sampled_from(["aml", ""]), on=st.booleans())
    def freeze(self, sender, account, reason_code, on):
        self.send(sender, "freeze-account" if on else "unfreeze-account", [account.public_key, reason_code],
                  predict("freeze", sender.public_key, account.public_key, reason_code, on))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from(CUSTOMERS + (STAFF,)), privilege=st.sampled_from(["priority", "vip", "gold"]))
    def buy_privilege(self, sender, privilege):
        self.send(sender, "buy-privilege", [privilege], predict("buy", sender.public_key, privilege))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from((ADMIN, STAFF)), change=POLICY_CHANGES)
    def set_policy(self, sender, change):
        self.proposals += 1
        self.send(sender, "propose-set-policy", [f"p{self.proposals}", *change],
                  predict("set_policy", sender.public_key, *change))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from((ADMIN, STAFF) + ISSUERS), account=st.sampled_from(ACCOUNTS),
          role=st.sampled_from(ROLES), branch=st.sampled_from(["branch-0", "north", ""]), on=st.booleans())
    def grant_or_revoke_role(self, sender, account, role, branch, on):
        self.proposals += 1
        payload = [account.public_key, role, branch] if on else [account.public_key, role]
        self.send(sender, "propose-grant-role" if on else "propose-revoke-role", [f"p{self.proposals}", *payload],
                  predict("grant", sender.public_key, account.public_key, role, branch, on))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from((ADMIN, STAFF) + ISSUERS), cid=st.sampled_from(COUPON_IDS[:2] * 3 + COUPON_IDS),
          campaign=st.sampled_from([CAMPAIGN] * 3 + ["", "autumn"]), value=st.integers(0, 450),
          expires_in=st.integers(-1_000, 30_000), total=st.integers(0, 3))
    def issue_coupon(self, sender, cid, campaign, value, expires_in, total):
        expires = self.head.timestamp_ms + expires_in
        self.send(sender, "issue-coupon", [cid, campaign, value, "EUR", expires, b"\x00" * 32, total],
                  predict("issue", sender.public_key, cid, campaign, value, expires, total))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from(CUSTOMERS), cid=st.sampled_from(COUPON_IDS[:2]), order_id=st.sampled_from(sorted(ORDERS)))
    def redeem_coupon(self, sender, cid, order_id):
        self.send(sender, "redeem-coupon", [cid, order_id], predict("redeem", sender.public_key, cid, order_id))

    @precondition(lambda self: len(self.queue) < MAX_PENDING)
    @rule(sender=st.sampled_from(ACCOUNTS), flavour=st.sampled_from(["gap", "stale", "chain", "signature", "signer"]))
    def inadmissible(self, sender, flavour):
        """A tx that can never enter: the proposer must skip it and the model must not change."""
        nonce = self.nonces.get(sender.public_key, 0)
        to = ACCOUNTS[0].public_key
        if flavour == "gap":
            tx, code = make_tx(CHAIN_ID, "mint", sender, nonce + 2, [to, 1]), "nonce_gap"
        elif flavour == "stale":
            if nonce == 0:
                return
            tx, code = make_tx(CHAIN_ID, "mint", sender, nonce, [to, 1]), "nonce_too_low"
        elif flavour == "chain":
            tx, code = make_tx("elsewhere", "mint", sender, nonce + 1, [to, 1]), "wrong_chain"
        elif flavour == "signer":
            tx, code = make_tx(CHAIN_ID, "mint", sender, nonce + 1, [to, 1], OUTSIDER), "unexpected_signer"
        else:
            good = make_tx(CHAIN_ID, "mint", sender, nonce + 1, [to, 1])
            sigs = ((sender.public_key, sender.sign(b"not the tx hash")),)
            raw = codec.encode([good.body.to_list(), [list(s) for s in sigs]])
            tx, code = SignedTx(good.body, sigs, raw, good.tx_hash), "bad_signature"
        self.queue.append(tx)
        self.junk.append((tx, code))

    # --- sealing a block ---------------------------------------------------------------------------

    @rule(advance_ms=st.sampled_from([1, 10_000, DAY_MS]) | st.integers(min_value=1, max_value=10_000))
    def seal(self, advance_ms):
        ts = self.head.timestamp_ms + advance_ms
        model = copy.deepcopy(self.model)
        swept = model.block_sweep(ts)  # the block-sweep system tx comes first, when an entry is due
        expected = [""] * swept + [prediction(model, ts) for prediction in self.predictions]
        execution, rejected = build_block(self.state, self.nodes, self.head, self.queue, ts,
                                          VALIDATORS[0].public_key)
        assert [(tx.tx_hash, exc.code) for tx, exc in rejected] == [(tx.tx_hash, c) for tx, c in self.junk]
        assert [r.reason for r in execution.results] == expected
        assert all((r.status == 0) == (r.reason == "") for r in execution.results)
        assert all(r.events == () for r in execution.results if r.status)
        checked = validate_block(self.state, self.nodes, self.head, execution.block, ts, 0,
                                 self.genesis.validator_set_hash)
        assert checked.header == execution.header
        self.state.apply(checked.state_writes)
        self.nodes.put_many(checked.smt_nodes)
        self.head = checked.header
        junk = {tx.tx_hash for tx, _ in self.junk}
        for tx in self.queue:
            if tx.tx_hash not in junk:
                self.committed_txs[tx.body.sender] = self.committed_txs.get(tx.body.sender, 0) + 1
        self.model = model
        self.queue, self.predictions, self.junk = [], [], []
        self.second_pending = set()

    # --- invariants on the committed state --------------------------------------------------------

    def balances(self) -> dict[bytes, int]:
        return {k[1:]: get_account(self.state, k[1:]).balance
                for k in self.state.data if k[:1] == PREFIX_ACCOUNT}

    @invariant()
    def supply_is_minted_minus_expired_minus_burned_and_the_sum_of_balances(self):
        counted = get_counter(self.state, "minted") - get_counter(self.state, "expired") \
            - get_counter(self.state, "burned")
        assert get_supply(self.state) == counted == sum(self.balances().values()) == self.model.supply()
        assert (get_counter(self.state, "expired"), get_counter(self.state, "burned")) == \
            (self.model.expired, self.model.burned)

    @invariant()
    def lots_sum_to_balances_and_match_the_model(self):
        for acct in ACCOUNTS:
            who = acct.public_key
            lots = get_lots(self.state, who)
            assert sum(a for _, a in lots) == get_account(self.state, who).balance
            assert dict(lots) == {e: a for e, a in self.model.lots.get(who, {}).items() if a}

    @invariant()
    def no_negative_balance(self):
        assert all(v >= 0 for v in self.balances().values())

    @invariant()
    def a_coupon_never_pays_twice(self):
        discounted = [o for o in ORDERS if get_order(self.state, o).coupon_applied]
        assert sorted(discounted) == sorted(self.model.order_coupon)
        redeemed = 0
        for cid in COUPON_IDS[:2]:
            coupon = get_coupon(self.state, cid)
            if coupon is None:
                continue
            redeemed += coupon.redeemed
            assert coupon.redeemed <= coupon.total
            assert all(get_coupon_uses(self.state, c.public_key, cid) <= 1 for c in CUSTOMERS)  # once per customer
        assert redeemed == len(discounted)  # every redemption discounted exactly one order, each order once

    @invariant()
    def nonce_counts_committed_txs(self):
        for acct in ACCOUNTS:
            assert get_account(self.state, acct.public_key).nonce == self.committed_txs.get(acct.public_key, 0)
        assert get_account(self.state, bytes(32)).nonce == 0  # the block-sweep's zero sender keeps no nonce

    @invariant()
    def state_root_matches_a_from_scratch_rebuild(self):
        assert self.head.state_root == compute_root(self.state.data)


CoinMachine.TestCase.settings = settings(CoinMachine.TestCase.settings, stateful_step_count=30)
test_coin_state_machine = CoinMachine.TestCase
