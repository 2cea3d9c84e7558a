"""Read models over a real store: the account document, ticket, order, customer, policy versions and the
account state proof (checked offline with ``ledger.state_proof``)."""

from __future__ import annotations

import pytest

from ledger.errors import NotFound
from ledger.keys import KeyPair
from ledger.state_proof import StateProofError, verify_state_proof
from node import reads
from tests.node.local_chain import CHAIN, MIN, LocalChain, h


def test_coin_view_counts_lots_alive_at_head_time_with_tier_kyc_and_roles(story):
    c, s = story
    view = reads.get_account(c.store, s["alice"].public_key)
    # 1000 minted - 500 paid + 95 earned + 200 compensation + 50 feedback reward
    assert view["balance"] == 845 and view["stored_balance"] == 845
    assert view["tier"] == "base" and view["kyc_level"] == 1 and view["frozen"] is None
    assert view["expiring"] == []  # lots live a year by default
    assert view["roles"] == [] and view["lifetime_earned"] == 95 + 200 + 50
    assert reads.get_account(c.store, s["clerk"].public_key)["roles"] == ["staff"]


def test_coin_view_hides_dead_lots_before_they_are_swept(tmp_path):
    c = LocalChain(tmp_path / "db")
    bob = KeyPair.generate()
    c.block(c.tx(c.admin, "propose-set-policy", ["lifetime", "coin_lifetime_ms", 5_000]))
    c.block(c.tx(c.issuer, "mint", [bob.public_key, 300]))
    assert reads.get_account(c.store, bob.public_key)["expiring"][0][1] == 300
    c.block(after_ms=10_000)
    view = reads.get_account(c.store, bob.public_key)
    assert view["balance"] == 0 and view["stored_balance"] == 300  # dead but not yet swept
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
    assert proven.lifetime_earned == 345 and proven.signers == (c.node.public_key,)


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
