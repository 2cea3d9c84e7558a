"""Domain read models over a real store: coin view, ticket, order, customer, policy versions, the report index
and the account state proof (checked offline with ``ledger.state_proof``)."""

from __future__ import annotations

import time

import pytest

from ledger import chain
from ledger.block import make_seal
from ledger.errors import NotFound
from ledger.genesis import Genesis, Validator
from ledger.hashing import sha256
from ledger.keys import KeyPair
from ledger.state_proof import StateProofError, verify_state_proof
from ledger.storage import Store
from ledger.tx import make_tx
from node import queries

CHAIN = "carecoin-queries"
MIN = 60_000


class LocalChain:
    """One validator's store, filled block by block with chosen timestamps (sealed by that validator)."""

    def __init__(self, path, genesis_time_ms: int | None = None) -> None:
        self.node, self.admin, self.staff, self.issuer, self.compliance = (KeyPair.generate() for _ in range(5))
        self.genesis = Genesis(
            CHAIN, genesis_time_ms if genesis_time_ms is not None else int(time.time() * 1000) - 3_600_000,
            (Validator("branch-1", self.node.public_key),),
            roles={"branch-admin": (self.admin.public_key,), "staff": (self.staff.public_key,),
                   "issuer": (self.issuer.public_key,), "compliance": (self.compliance.public_key,)}, policy={})
        self.store = Store.open(path)
        block, execution = chain.genesis_block(self.genesis)
        self.store.commit_block(block, (), execution.results, execution.state_writes, execution.smt_nodes)
        self.nonces: dict[bytes, int] = {}
        self.now = self.genesis.genesis_time_ms

    def tx(self, key: KeyPair, kind: str, payload: list, *extra: KeyPair):
        n = self.nonces[key.public_key] = self.nonces.get(key.public_key, 0) + 1
        return make_tx(CHAIN, kind, key, n, payload, *extra)

    def block(self, *txs, after_ms: int = 1000) -> list:
        """Commit ``txs`` as one block ``after_ms`` after the previous one; return the results."""
        self.now += after_ms
        parent = self.store.get_header(self.store.head().height)
        execution = chain.execute_block(self.store, self.store, parent, list(txs), self.now, self.node.public_key,
                                        CHAIN, self.genesis.validator_set_hash)
        seal = make_seal(self.node, CHAIN, execution.header.height, execution.block.hash)
        self.store.commit_block(execution.block, (seal,), execution.results, execution.state_writes,
                                execution.smt_nodes)
        return execution.results


def h(text: str) -> bytes:
    return sha256(text.encode())


def play_story(c: LocalChain) -> dict:
    """Grant a north-branch clerk, register Alice, an order paid partly in coins, a complaint ticket."""
    clerk, alice = KeyPair.generate(), KeyPair.generate()
    c.block(c.tx(c.admin, "grant-role", [clerk.public_key, "staff", "north"]))
    c.block(c.tx(clerk, "register-customer", [alice.public_key, 1, h("commitment")]),
            c.tx(c.issuer, "mint", [alice.public_key, 1000]))
    c.block(c.tx(clerk, "create-order", ["O1", alice.public_key, 10_000, "EUR", h("items")]))
    c.block(c.tx(alice, "pay-order", ["O1", 500]))
    c.block(c.tx(clerk, "confirm-order", ["O1"]))
    opened = c.now + 1000
    c.block(c.tx(alice, "open-ticket", ["T1", "complaint", 2, "O1", h("late delivery")]))
    c.block(c.tx(clerk, "respond-ticket", ["T1", h("sorry")]), after_ms=MIN)
    c.block(c.tx(clerk, "compensate", ["T1", 200]))
    c.block(c.tx(clerk, "resolve-ticket", ["T1", h("refunded shipping")]), after_ms=MIN)
    results = c.block(c.tx(alice, "submit-feedback", ["ticket", "T1", 4, h("ok")]))
    assert all(r.status == 0 for r in results), results
    return {"clerk": clerk, "alice": alice, "opened": opened}


@pytest.fixture
def story(tmp_path):
    c = LocalChain(tmp_path / "db")
    s = play_story(c)
    yield c, s
    c.store.close()


def test_coin_view_counts_lots_alive_at_head_time_with_tier_kyc_and_roles(story):
    c, s = story
    view = queries.get_coin_view(c.store, s["alice"].public_key)
    # 1000 minted - 500 paid + 95 earned + 200 compensation + 50 feedback reward
    assert view["balance"] == 845 and view["stored_balance"] == 845
    assert view["tier"] == "base" and view["kyc_level"] == 1 and view["frozen"] is None
    assert view["expiring"] == []  # lots live a year by default
    assert view["roles"] == [] and view["lifetime_earned"] == 95 + 200 + 50
    assert queries.get_coin_view(c.store, s["clerk"].public_key)["roles"] == ["staff"]


def test_coin_view_hides_dead_lots_before_they_are_swept(tmp_path):
    c = LocalChain(tmp_path / "db")
    bob = KeyPair.generate()
    c.block(c.tx(c.admin, "set-policy", ["coin_lifetime_ms", 5_000]))
    c.block(c.tx(c.issuer, "mint", [bob.public_key, 300]))
    assert queries.get_coin_view(c.store, bob.public_key)["expiring"][0][1] == 300
    c.block(after_ms=10_000)
    view = queries.get_coin_view(c.store, bob.public_key)
    assert view["balance"] == 0 and view["stored_balance"] == 300  # dead but not yet swept
    c.store.close()


def test_ticket_view_has_state_and_sla_times_from_block_timestamps(story):
    c, _ = story
    t = queries.get_ticket_view(c.store, "T1")
    assert t["state"] == "resolved" and t["category"] == "complaint" and t["branch"] == "north"
    assert t["first_response_ms"] == MIN and t["resolution_ms"] == MIN + 1000 + MIN
    assert t["compensated"] == 200 and t["ticket_id"] == "T1"


def test_order_view_shows_status_coins_paid_and_earned(story):
    c, s = story
    o = queries.get_order_view(c.store, "O1")
    assert o["status"] == "confirmed" and o["coins_paid"] == 500 and o["fiat_paid"] == 9_500
    assert o["earned"] == 95 and o["customer"] == s["alice"].public_key.hex() and o["branch"] == "north"


def test_unknown_ticket_order_and_customer_are_not_found(story):
    c, s = story
    with pytest.raises(NotFound, match="ticket 'T9'"):
        queries.get_ticket_view(c.store, "T9")
    with pytest.raises(NotFound, match="order 'O9'"):
        queries.get_order_view(c.store, "O9")
    with pytest.raises(NotFound, match="not a registered customer"):
        queries.get_customer_view(c.store, s["clerk"].public_key)


def test_customer_view_is_the_on_chain_record_only(story):
    c, s = story
    doc = queries.get_customer_view(c.store, s["alice"].public_key)
    assert doc["commitment"] == h("commitment").hex() and doc["kyc_level"] == 1 and doc["branch"] == "north"
    assert doc["erased"] is False and set(doc) == {"account", "kyc_level", "commitment", "registered_by", "branch",
                                                   "registered_at_ms", "erased_at_ms", "erased"}


def test_every_past_policy_version_is_visible(tmp_path):
    c = LocalChain(tmp_path / "db")
    c.block(c.tx(c.admin, "set-policy", ["feedback_reward", 70]))
    c.block(c.tx(c.admin, "set-policy", ["feedback_reward", 90]))
    assert queries.get_policy_view(c.store, None)["policy"]["feedback_reward"] == 90
    assert queries.get_policy_view(c.store, 1)["policy"]["feedback_reward"] == 70
    v0 = queries.get_policy_view(c.store, 0)
    assert v0["policy"]["feedback_reward"] == 50 and v0["current_version"] == 2
    assert [ch["value"] for ch in v0["changes"]] == [70, 90]
    with pytest.raises(NotFound, match="version 3 does not exist; the current version is 2"):
        queries.get_policy_view(c.store, 3)
    c.store.close()


def test_report_sums_coin_flows_tickets_times_and_ratings_per_branch(story):
    c, _ = story
    index = queries.ReportIndex(c.store)
    assert index.catch_up() == c.store.head().height
    north = index.report("north")
    assert north["coins"]["earned"] == 95 and north["coins"]["compensated"] == 200
    assert north["coins"]["redeemed"] == 500 and north["coins"]["rewarded"] == 50
    assert north["orders"] == {"created": 1, "paid": 1, "confirmed": 1, "refunded": 0}
    assert north["tickets"]["by_state"]["resolved"] == 1 and north["tickets"]["by_category"]["complaint"] == 1
    assert north["tickets"]["mean_first_response_ms"] == MIN
    assert north["ratings"]["average"] == 4 and north["ratings"]["count"] == 1
    everyone = index.report()
    assert everyone["coins"]["minted"] == 1000  # the genesis issuer has no branch: counted under ""
    assert index.report("south")["coins"]["earned"] == 0 and index.report("south")["tickets"]["total"] == 0
    assert set(everyone["branches"]) >= {"north", ""}


def test_report_period_filters_by_block_time(story):
    c, s = story
    index = queries.ReportIndex(c.store)
    index.catch_up()
    later = index.report("north", since=s["opened"] + 1)
    assert later["coins"]["earned"] == 0 and later["coins"]["compensated"] == 200
    assert later["tickets"]["total"] == 0  # opened before the period
    before = index.report("north", until=s["opened"])
    assert before["coins"]["earned"] == 95 and before["coins"]["compensated"] == 0


def test_report_index_is_incremental_and_never_counts_a_block_twice(story):
    c, s = story
    index = queries.ReportIndex(c.store)
    index.catch_up(max_blocks=3)
    assert index.height == 3
    index.catch_up()
    index.catch_up()
    assert index.report()["coins"]["minted"] == 1000
    c.block(c.tx(c.issuer, "mint", [s["alice"].public_key, 7]))
    index.catch_up()
    assert index.report()["coins"]["minted"] == 1007


def test_expired_coins_count_for_the_customers_branch(tmp_path):
    c = LocalChain(tmp_path / "db")
    clerk, bob = KeyPair.generate(), KeyPair.generate()
    c.block(c.tx(c.admin, "grant-role", [clerk.public_key, "staff", "south"]),
            c.tx(c.admin, "set-policy", ["coin_lifetime_ms", 5_000]))
    c.block(c.tx(clerk, "register-customer", [bob.public_key, 0, h("bob")]), c.tx(c.issuer, "mint", [bob.public_key, 40]))
    c.block(c.tx(c.issuer, "mint", [bob.public_key, 1]), after_ms=10_000)  # touching bob sweeps the dead lot
    index = queries.ReportIndex(c.store)
    index.catch_up()
    assert index.report("south")["coins"]["expired"] == 40
    c.store.close()


def test_erasure_event_is_passed_to_the_vault_callback(story):
    c, s = story
    erased = []
    c.block(c.tx(s["clerk"], "erase-customer-data", [s["alice"].public_key]))
    queries.ReportIndex(c.store, on_erased=erased.append).catch_up()
    assert erased == [s["alice"].public_key]


# --- state proofs ---------------------------------------------------------------------------------------------


def test_account_proof_verifies_offline_and_shows_the_balance(story):
    c, s = story
    doc = queries.build_account_proof(c.store, CHAIN, s["alice"].public_key)
    proven = verify_state_proof(doc, c.genesis)
    assert proven.balance == 845 and proven.spendable == 845 and proven.kyc_level == 1
    assert proven.height == c.store.head().height and proven.frozen is None
    assert proven.lifetime_earned == 345 and proven.signers == (c.node.public_key,)


def test_a_proof_of_an_unknown_account_proves_its_absence(story):
    c, _ = story
    stranger = KeyPair.generate().public_key
    proven = verify_state_proof(queries.build_account_proof(c.store, CHAIN, stranger), c.genesis)
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
    doc = queries.build_account_proof(c.store, CHAIN, s["alice"].public_key)
    with pytest.raises(StateProofError) as err:
        verify_state_proof(edit(doc), c.genesis)
    assert err.value.check == check


def test_a_proof_of_another_account_does_not_pass_for_this_one(story):
    c, s = story
    doc = queries.build_account_proof(c.store, CHAIN, s["alice"].public_key)
    with pytest.raises(StateProofError, match="keys"):
        verify_state_proof({**doc, "account": s["clerk"].public_key.hex()}, c.genesis)


def test_a_proof_at_genesis_is_refused_for_lack_of_a_certificate(tmp_path):
    c = LocalChain(tmp_path / "db")
    doc = queries.build_account_proof(c.store, CHAIN, c.issuer.public_key)
    with pytest.raises(StateProofError, match="height 0"):
        verify_state_proof(doc, c.genesis)
    c.store.close()
