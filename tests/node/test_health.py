"""``/livez`` and ``/readyz``: what an orchestrator sees of a node that is up, ready, alone, or behind."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.genesis import Validator
from ledger.keys import KeyPair
from ledger.storage import Store
from node.app import create_node_app
from node.health import MAX_LAG_BLOCKS, compute_personal_data_gate, compute_readiness
from node.routes import OPENAPI
from node.service import NodeService
from tests.consensus.fakenet import Solo
from tests.node.test_service import FAST, make_genesis, wait_height


def test_a_member_with_quorum_minus_one_links_at_the_best_height_is_ready():
    r = compute_readiness(head=10, best_working_height=11, peers=2, validators=4, member=True, fatal=None,
                          held_height=None)
    assert r.ready and r.reasons == () and r.peers_needed == 2


def test_a_member_short_of_peer_links_is_not_ready_and_says_how_many_it_needs():
    r = compute_readiness(head=10, best_working_height=11, peers=1, validators=4, member=True, fatal=None,
                          held_height=None)
    assert not r.ready and r.reasons == ("1 peer links up; expected at least 2 (quorum 3 of 4 validators, "
                                         "less this node)",)


def test_a_node_behind_the_best_known_height_by_more_than_the_bound_is_not_ready():
    ok = compute_readiness(head=10, best_working_height=11 + MAX_LAG_BLOCKS, peers=3, validators=4, member=True,
                           fatal=None, held_height=None)
    behind = compute_readiness(head=10, best_working_height=12 + MAX_LAG_BLOCKS, peers=3, validators=4,
                               member=True, fatal=None, held_height=None)
    assert ok.ready
    assert not behind.ready and f"{MAX_LAG_BLOCKS + 1} blocks behind the best known height" in behind.reasons[0]


def test_a_follower_needs_no_links_and_a_fault_or_a_held_record_is_never_ready():
    assert compute_readiness(head=3, best_working_height=4, peers=0, validators=4, member=False, fatal=None,
                             held_height=None).ready
    stopped = compute_readiness(head=3, best_working_height=4, peers=3, validators=4, member=True,
                                fatal=RuntimeError("wal write failed"), held_height=None)
    held = compute_readiness(head=3, best_working_height=9, peers=3, validators=4, member=True, fatal=None,
                             held_height=9)
    assert "local fault: wal write failed" in stopped.reasons[0]
    assert "waiting for catch-up to height 8" in held.reasons[0]


def test_personal_data_waits_until_a_quorum_was_heard_from_since_start_and_none_is_past_the_next_height():
    gate = dict(reasons=(), head=10, needed=2)
    assert compute_personal_data_gate(**gate, seen_heights=[11, 12]) == ()
    alone = compute_personal_data_gate(**gate, seen_heights=[11])
    assert alone == ("heard from 1 validators since start; expected at least 2 before serving personal data "
                     "(this node may have missed an erasure)",)
    behind = compute_personal_data_gate(**gate, seen_heights=[11, 13])
    assert behind and "works on height 13 and this node's head is 10" in behind[0]
    not_ready = compute_personal_data_gate(reasons=("0 peer links up",), head=10, needed=0, seen_heights=[])
    assert not_ready == ("0 peer links up",)


def test_f_byzantine_validators_claiming_a_far_height_do_not_make_the_replica_look_behind():
    s = Solo(4, me=0)  # f = 1
    s.start()
    s.recv(s.prepare(1, 0, b"\x01" * 32, height=1_000_000))
    assert s.r.get_best_known_height() == 1  # one signer alone is not believed
    s.recv(s.prepare(2, 0, b"\x01" * 32, height=40))
    assert s.r.get_best_known_height() == 40  # f+1 signers at or above 40


@pytest.mark.asyncio
async def test_livez_and_readyz_answer_on_a_single_validator(tmp_path, aiohttp_client):
    node, issuer = KeyPair.generate(), KeyPair.generate()
    svc = NodeService(key=node, genesis=make_genesis(node, issuer), store=Store.open(tmp_path / "db"), options=FAST)
    client = await aiohttp_client(create_node_app(svc, analytics=False))
    try:
        await wait_height(svc, 1)
        live = await client.get("/livez")
        assert live.status == 200 and (await live.json())["node"] == "branch-1"
        ready = await client.get("/readyz")
        doc = await ready.json()
        assert ready.status == 200 and doc["status"] == "ready" and doc["peers_needed"] == 0
    finally:
        await client.close()
        svc.close()


@pytest.mark.asyncio
async def test_readyz_is_503_naming_the_missing_links_on_a_validator_whose_peers_are_down(tmp_path, aiohttp_client):
    keys = [KeyPair.generate() for _ in range(4)]
    issuer = KeyPair.generate()
    genesis = dataclasses.replace(make_genesis(keys[0], issuer), validators=tuple(
        Validator(f"branch-{i + 1}", k.public_key) for i, k in enumerate(keys)))
    svc = NodeService(key=keys[0], genesis=genesis, store=Store.open(tmp_path / "db"), options=FAST)
    client = await aiohttp_client(create_node_app(svc, analytics=False))
    try:
        resp = await client.get("/readyz")
        doc = await resp.json()
        assert resp.status == 503 and doc["error"]["code"] == "not_ready"
        assert "0 peer links up; expected at least 2" in doc["error"]["message"]
        assert (await client.get("/livez")).status == 200
    finally:
        await client.close()
        svc.close()


def test_the_health_routes_are_in_the_openapi_document():
    assert set(OPENAPI["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}
    assert "/livez" in OPENAPI["paths"]
