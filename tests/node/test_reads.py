"""Read models over a real store: the account document, ticket, order, customer, policy versions, the
account state proof (checked offline with ``ledger.state_proof``) and governance proposals."""

from __future__ import annotations

import time

import pytest

from ledger.errors import NotFound
from ledger.keys import KeyPair
from ledger.state_proof import StateProofError, verify_state_proof
from ledger import chain as ledger_chain, sweeps
from ledger.block import make_seal
from ledger.storage import Store
from ledger.tx import make_tx
from node import governance_reads, reads
from tests.ledger.governance_world import ADMINS, BRANCHES, make_gov_genesis
from tests.node.local_chain import CHAIN, MIN, LocalChain, h
from tests.strategies import CHAIN_ID, VALIDATORS


def test_coin_view_counts_lots_alive_at_head_time_with_tier_kyc_and_roles(story):
    c, s = story
    view = reads.get_account(c.store, s["alice"].public_key)
    # 1000 minted - 500 paid + 95 earned + 200 compensation + 50 feedback reward
    assert view["balance"] == 845 and view["stored_balance"] == 845
    assert view["tier"] == "base" and view["kyc_level"] == 1 and view["frozen"] is None
    assert view["expiring"] == []  # lots live a year by default
    # earnings for tiers: the 95 earned and the 50 reward; compensation is no earning
    assert view["roles"] == [] and view["lifetime_earned"] == view["tier_earned"] == 95 + 50
    assert reads.get_account(c.store, s["clerk"].public_key)["roles"] == ["staff"]


def test_coin_view_hides_dead_lots_until_the_block_sweep_reaches_them(tmp_path, monkeypatch):
    monkeypatch.setattr(sweeps, "MAX_PER_QUEUE", 1)  # one account per block: the other waits (carry-over)
    c = LocalChain(tmp_path / "db")
    bob, carol = sorted((KeyPair.generate(), KeyPair.generate()), key=lambda k: k.public_key)
    c.block(c.tx(c.admin, "propose-set-policy", ["lifetime", "coin_lifetime_ms", 5_000]))
    c.block(c.tx(c.issuer, "mint", [bob.public_key, 300]), c.tx(c.issuer, "mint", [carol.public_key, 300]))
    assert reads.get_account(c.store, bob.public_key)["expiring"][0][1] == 300
    c.block(after_ms=10_000)  # nobody touches them: the block's sweep expires Bob's coins
    view = reads.get_account(c.store, bob.public_key)
    assert view["balance"] == 0 and view["stored_balance"] == 0
    view = reads.get_account(c.store, carol.public_key)
    assert view["balance"] == 0 and view["stored_balance"] == 300  # dead but not yet swept
    c.block()
    assert reads.get_account(c.store, carol.public_key)["stored_balance"] == 0
    c.store.close()


def test_ticket_view_has_state_and_sla_times_from_block_timestamps(story):
    c, _ = story
    t = reads.get_ticket_view(c.store, "T1")
    assert t["state"] == "resolved" and t["category"] == "complaint" and t["branch"] == "north"
    assert t["first_response_ms"] == MIN and t["resolution_ms"] == MIN + 1000 + MIN
    assert t["compensated"] == 200 and t["ticket_id"] == "T1"


def test_order_view_shows_status_coins_paid_and_earned(story):
    c, s = story
    o = reads.get_order_view(c.store, "O1")
    assert o["status"] == "confirmed" and o["coins_paid"] == 500 and o["fiat_paid"] == 9_500
    assert o["earned"] == 95 and o["customer"] == s["alice"].public_key.hex() and o["branch"] == "north"


def test_unknown_ticket_order_and_customer_are_not_found(story):
    c, s = story
    with pytest.raises(NotFound, match="ticket 'T9'"):
        reads.get_ticket_view(c.store, "T9")
    with pytest.raises(NotFound, match="order 'O9'"):
        reads.get_order_view(c.store, "O9")
    with pytest.raises(NotFound, match="not a registered customer"):
        reads.get_customer_view(c.store, s["clerk"].public_key)


def test_customer_view_is_the_on_chain_record_only(story):
    c, s = story
    doc = reads.get_customer_view(c.store, s["alice"].public_key)
    assert doc["commitment"] == h("commitment").hex() and doc["kyc_level"] == 1 and doc["branch"] == "north"
    assert doc["erased"] is False and set(doc) == {"account", "kyc_level", "commitment", "registered_by", "branch",
                                                   "registered_at_ms", "erased_at_ms", "erased"}


def test_every_past_policy_version_is_visible(tmp_path):
    c = LocalChain(tmp_path / "db")
    c.block(c.tx(c.admin, "propose-set-policy", ["reward-70", "feedback_reward", 70]))
    c.block(c.tx(c.admin, "propose-set-policy", ["reward-90", "feedback_reward", 90]))
    assert reads.get_policy_view(c.store, None)["policy"]["feedback_reward"] == 90
    assert reads.get_policy_view(c.store, 1)["policy"]["feedback_reward"] == 70
    v0 = reads.get_policy_view(c.store, 0)
    assert v0["policy"]["feedback_reward"] == 50 and v0["current_version"] == 2
    assert [ch["value"] for ch in v0["changes"]] == [70, 90]
    with pytest.raises(NotFound, match="version 3 does not exist; the current version is 2"):
        reads.get_policy_view(c.store, 3)
    c.store.close()


# --- state proofs ---------------------------------------------------------------------------------------------


def test_account_proof_verifies_offline_and_shows_the_balance(story):
    c, s = story
    doc = reads.build_account_proof(c.store, CHAIN, s["alice"].public_key)
    proven = verify_state_proof(doc, c.genesis)
    assert proven.balance == 845 and proven.spendable == 845 and proven.kyc_level == 1
    assert proven.height == c.store.head().height and proven.frozen is None
    assert proven.lifetime_earned == 145 and proven.signers == (c.node.public_key,)


def test_a_proof_of_an_unknown_account_proves_its_absence(story):
    c, _ = story
    stranger = KeyPair.generate().public_key
    proven = verify_state_proof(reads.build_account_proof(c.store, CHAIN, stranger), c.genesis)
    assert proven.balance == 0 and proven.nonce == 0 and proven.kyc_level is None


def _tamper(doc: dict, index: int, value: bytes) -> dict:
    values = [dict(v) for v in doc["values"]]
    values[index]["value"] = value.hex()
    return {**doc, "values": values}


@pytest.mark.parametrize("edit, check", [
    (lambda d: _tamper(d, 0, bytes.fromhex("92cd03e807")), "smt_proof"),  # a bigger balance
    (lambda d: {**d, "values": d["values"][1:]}, "keys"),
    (lambda d: {**d, "values": d["values"] + d["values"][:1]}, "keys"),
    (lambda d: {**d, "commit": []}, "commit_quorum"),
    (lambda d: {**d, "block_hash": "00" * 32}, "block_hash"),
    (lambda d: {**d, "chain_id": "other"}, "chain_id"),
    (lambda d: {**d, "version": 1}, "version"),
    (lambda d: {**d, "version": 3}, "version"),
    (lambda d: {**d, "header": "zz"}, "format"),
])
def test_an_altered_proof_is_refused_naming_the_check(story, edit, check):
    c, s = story
    doc = reads.build_account_proof(c.store, CHAIN, s["alice"].public_key)
    with pytest.raises(StateProofError) as err:
        verify_state_proof(edit(doc), c.genesis)
    assert err.value.check == check


def test_a_proof_of_another_account_does_not_pass_for_this_one(story):
    c, s = story
    doc = reads.build_account_proof(c.store, CHAIN, s["alice"].public_key)
    with pytest.raises(StateProofError, match="keys"):
        verify_state_proof({**doc, "account": s["clerk"].public_key.hex()}, c.genesis)


def test_a_proof_at_genesis_is_refused_for_lack_of_a_certificate(tmp_path):
    c = LocalChain(tmp_path / "db")
    doc = reads.build_account_proof(c.store, CHAIN, c.issuer.public_key)
    with pytest.raises(StateProofError, match="height 0"):
        verify_state_proof(doc, c.genesis)
    c.store.close()


# --- governance: the proposal document and the list -----------------------------------------------------------

class GovChain:
    """A four-branch chain (quorum 3) in a temp store, sealed by the first validator, one block per call."""

    def __init__(self, path, policy: dict | None = None) -> None:
        self.genesis = make_gov_genesis(policy)
        self.store = Store.open(path)
        block, execution = ledger_chain.genesis_block(self.genesis)
        self.store.commit_block(block, (), execution.results, execution.state_writes, execution.smt_nodes)
        self.nonces: dict[bytes, int] = {}
        self.now = self.genesis.genesis_time_ms

    def block(self, *sent: tuple, after_ms: int = 1000) -> list:
        """Commit one block of ``(key, kind, payload)`` txs; return the results."""
        txs = []
        for key, kind, payload in sent:
            n = self.nonces[key.public_key] = self.nonces.get(key.public_key, 0) + 1
            txs.append(make_tx(CHAIN_ID, kind, key, n, payload))
        self.now += after_ms
        parent = self.store.get_header(self.store.head().height)
        execution = ledger_chain.execute_block(self.store, self.store, parent, txs, self.now,
                                               VALIDATORS[0].public_key, CHAIN_ID, self.genesis.validator_set_hash)
        seal = make_seal(VALIDATORS[0], CHAIN_ID, execution.header.height, execution.block.hash)
        self.store.commit_block(execution.block, (seal,), execution.results, execution.state_writes,
                                execution.smt_nodes)
        return execution.results


@pytest.fixture
def gov(tmp_path):
    g = GovChain(tmp_path / "gov-db", {"proposal_lifetime_ms": 60_000})
    yield g
    g.store.close()


def test_an_open_proposal_shows_its_action_proposer_branch_approvals_and_quorum(gov):
    account = KeyPair.generate().public_key
    gov.block((ADMINS[1], "propose-grant-role", ["g1", account, "staff", BRANCHES[2]]))
    doc = governance_reads.get_proposal_view(gov.store, "g1")
    assert doc["status"] == "open" and doc["decided_height"] is None and doc["decision"] is None
    assert doc["action"] == "grant-role"
    assert doc["args"] == {"account": account.hex(), "role": "staff", "branch": BRANCHES[2]}
    assert doc["summary"] == f"grant staff role to {account.hex()[:8]}… in {BRANCHES[2]}"
    assert doc["proposer"] == ADMINS[1].public_key.hex() and doc["proposer_branch"] == BRANCHES[1]
    assert doc["approvals"] == [{"branch": BRANCHES[1], "approver": ADMINS[1].public_key.hex(), "counts": True}]
    assert (doc["approval_count"], doc["quorum"], doc["branches"]) == (1, 3, 4)
    assert doc["expires_at_ms"] == doc["created_at_ms"] + 60_000 == gov.now + 60_000


def test_a_decided_proposal_says_at_which_height_and_what_the_decision_did(gov):
    account = KeyPair.generate().public_key
    gov.block((ADMINS[0], "propose-grant-role", ["g1", account, "staff", BRANCHES[2]]))
    gov.block((ADMINS[2], "approve-proposal", ["g1"]))
    results = gov.block((ADMINS[3], "approve-proposal", ["g1"]))
    assert results[0].status == 0
    doc = governance_reads.get_proposal_view(gov.store, "g1")
    assert doc["status"] == "decided" and doc["decided_height"] == 3 == gov.store.head().height
    assert [a["branch"] for a in doc["approvals"]] == [BRANCHES[0], BRANCHES[2], BRANCHES[3]]
    decision = doc["decision"]
    assert decision["height"] == 3 and decision["quorum"] == 3
    assert decision["effect"] == {"kind": "role_granted", "account": account.hex(), "role": "staff",
                                  "branch": BRANCHES[2]}
    assert decision["summary"] == f"staff role granted to {account.hex()[:8]}… in {BRANCHES[2]}"


def test_a_policy_decision_names_the_new_value_and_version(gov):
    gov.block((ADMINS[0], "propose-set-policy", ["p", "feedback_reward", 77]),
              (ADMINS[1], "approve-proposal", ["p"]), (ADMINS[2], "approve-proposal", ["p"]))
    decision = governance_reads.get_proposal_view(gov.store, "p")["decision"]
    assert decision["summary"] == "policy feedback_reward set to 77 (policy version 1)"


def test_a_proposal_past_its_expiry_at_the_head_is_expired(gov):
    gov.block((ADMINS[0], "propose-set-policy", ["old", "feedback_reward", 1]))
    assert governance_reads.get_proposal_view(gov.store, "old")["status"] == "open"
    gov.block(after_ms=60_001)
    assert governance_reads.get_proposal_view(gov.store, "old")["status"] == "expired"


def test_unknown_proposal_is_not_found(gov):
    with pytest.raises(NotFound, match="proposal 'nope' does not exist"):
        governance_reads.get_proposal_view(gov.store, "nope")


def test_the_list_shows_open_proposals_first_then_expired_then_decided_and_pages(gov):
    gov.block((ADMINS[0], "propose-set-policy", ["a-expired", "feedback_reward", 1]))
    gov.block(after_ms=60_001)
    gov.block((ADMINS[0], "propose-set-policy", ["b-decided", "feedback_reward", 2]),
              (ADMINS[1], "approve-proposal", ["b-decided"]), (ADMINS[2], "approve-proposal", ["b-decided"]))
    gov.block((ADMINS[1], "propose-set-policy", ["c-open", "feedback_reward", 3]))
    gov.block((ADMINS[2], "propose-set-policy", ["d-open", "feedback_reward", 4]))
    page = governance_reads.list_proposals(gov.store, None, 0, 50)
    assert [(p["proposal_id"], p["status"]) for p in page["items"]] == [
        ("d-open", "open"), ("c-open", "open"), ("a-expired", "expired"), ("b-decided", "decided")]
    assert page["total"] == 4 and page["next_offset"] is None and not page["truncated"]
    first = governance_reads.list_proposals(gov.store, None, 0, 3)
    second = governance_reads.list_proposals(gov.store, None, first["next_offset"], 3)
    assert [p["proposal_id"] for p in first["items"] + second["items"]] == ["d-open", "c-open", "a-expired",
                                                                            "b-decided"]
    assert first["next_offset"] == 3 and second["next_offset"] is None
    only_open = governance_reads.list_proposals(gov.store, "open", 0, 50)
    assert [p["proposal_id"] for p in only_open["items"]] == ["d-open", "c-open"] and only_open["total"] == 2


# --- history: one page's work on the event loop is bounded ---------------------------------------------------


def history_chain(path) -> tuple[LocalChain, KeyPair, list[str]]:
    """A chain where Alice's txs are spread over blocks of 0..3 txs, among empty blocks and others' txs.

    Returns the chain, Alice and the hashes of every tx touching her, newest first."""
    c = LocalChain(path)
    alice, bob = KeyPair.generate(), KeyPair.generate()
    hers: list[str] = []
    for i in range(24):
        txs = [c.tx(c.issuer, "mint", [alice.public_key, 10]) for _ in range(i % 4)]
        if i % 5 == 0:
            txs.append(c.tx(c.issuer, "mint", [bob.public_key, 1]))  # not hers
        c.block(*txs)
        hers.extend(tx.tx_hash.hex() for tx in txs if tx.body.payload[0] == alice.public_key)
    return c, alice, hers[::-1]


class LongChain:
    """A read-only view of ``store`` as a chain ``height`` blocks long: height h shows block 1 + h % n."""

    def __init__(self, store, height: int) -> None:
        self.store, self.height, self.n = store, height, store.head().height

    def head(self):
        return type("Head", (), {"height": self.height})()

    def _real(self, h: int) -> int:
        return 1 + h % self.n

    def get_header(self, h: int):
        return self.store.get_header(self._real(h))

    def get_block(self, h: int):
        return self.store.get_block(self._real(h))

    def get_results(self, h: int):
        return self.store.get_results(self._real(h))


def test_open_history_request_over_a_long_chain_cannot_hold_the_event_loop_past_its_budget(tmp_path):
    # The attacker asks for the largest scan of an account with no tx at all: every block must be read.
    c, _, _ = history_chain(tmp_path / "db")
    long_chain = LongChain(c.store, 50_000)
    stranger = KeyPair.generate().public_key
    t0 = time.perf_counter()
    page = reads.get_history(long_chain, stranger, 1000, None, 20_000)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.025 + 0.25, f"one page held the loop {elapsed:.3f} s"  # a 25 ms budget + slack
    assert page["items"] == [] and 30_000 < page["next_before"] < 50_000  # ended early, with a continuation
    assert page["scanned_to"] == page["next_before"]


@pytest.mark.parametrize("limit", [1, 2, 1000])
def test_paging_with_next_before_yields_every_tx_exactly_once_when_the_budget_ends_pages(tmp_path, limit):
    c, alice, hers = history_chain(tmp_path / "db")
    ticks = iter(range(1_000_000))
    seen: list[str] = []
    before, pages = None, 0
    for pages in range(1, 200):
        # a fake clock: every look costs one unit, so a budget of 3 ends a page after a few blocks
        page = reads.get_history(c.store, alice.public_key, limit, before, 1000, budget_s=3,
                                 clock=lambda: next(ticks))
        seen.extend(i["tx_hash"] for i in page["items"])
        before = page["next_before"]
        if before is None:
            break
    assert seen == hers and len(set(seen)) == len(hers)
    assert pages > 24 // 4  # the budget, not the limit or the scan, ended most pages
