"""The client library against a live node: the sync and async clients send, wait, read and page the same way,
and every refusal is a typed ``ApiError`` naming what the node said."""

from __future__ import annotations

import asyncio
import socket

import pytest

from carecoin import (
    ApiError, AsyncClient, Client, Forbidden, NodeUnreachable, NotFound, Unauthorized, UntrustedCertificate, WaitTimeout,
)
from ledger.receipt import KEYS, verify
from ledger.receipt_compact import decode_compact
from node import reads


def test_sync_client_builds_signs_submits_and_waits_then_reads_the_balance_and_receipt(live):
    issuer = Client(live.url, key=live.chain.issuer)
    done = issuer.send("mint", [live.alice.public_key, 250])
    assert done["status"] == "committed" and done["outcome"] == "applied" and done["kind"] == "mint"
    alice = Client(live.url, key=live.alice_file)  # a key file works as well as a key pair
    assert alice.account(live.alice.public_key)["balance"] == 250
    assert alice.coin(live.alice.public_key.hex())["balance"] == 250
    receipt = issuer.receipt(done["tx_hash"])
    assert receipt["tx_hash"] == done["tx_hash"] if "tx_hash" in receipt else receipt
    compact = issuer.receipt_compact(done["tx_hash"])
    assert compact[:2] == b"\x9a\x03"  # msgpack, compact layout 3
    assert decode_compact(compact) == {k: receipt[k] for k in KEYS}  # the JSON receipt, field for field
    assert verify(decode_compact(compact), live.chain.genesis).tx_hash.hex() == done["tx_hash"]
    assert issuer.status()["height"] >= done["height"]


def test_async_client_does_the_same_through_aiohttp(live):
    async def story():
        async with AsyncClient(live.url, key=live.chain.issuer) as issuer:
            done = await issuer.send("mint", [live.alice.public_key, 40])
            assert done["outcome"] == "applied"
            status = await issuer.tx_status(done["tx_hash"])
            assert status["height"] == done["height"]
        async with AsyncClient(live.url, key=live.alice) as alice:
            assert (await alice.account(live.alice.public_key))["balance"] == 40
            items = [item async for item in alice.iter_history(live.alice.public_key)]
            assert [i["tx_hash"] for i in items] == [done["tx_hash"]]
            assert "carecoin" in (await alice.metrics())
            assert (await alice.openapi())["openapi"].startswith("3.")
    asyncio.run(story())


def test_iter_history_follows_every_page_down_to_genesis_without_skipping_or_repeating(live, monkeypatch):
    issuer = Client(live.url, key=live.chain.issuer)
    hashes = [issuer.send("mint", [live.alice.public_key, 1])["tx_hash"] for _ in range(5)]
    monkeypatch.setattr(reads, "HISTORY_BUDGET_S", 0.0)  # every page ends after one block
    alice = Client(live.url, key=live.alice)
    first = alice.history(live.alice.public_key, limit=1000)
    assert first["next_before"] is not None  # one page is not all of it
    assert [i["tx_hash"] for i in alice.iter_history(live.alice.public_key)] == hashes[::-1]


def test_a_refusal_is_the_api_error_of_its_status_with_the_nodes_code_and_message(live):
    auditor = Client(live.url, key=live.chain.auditor)  # auditors read every ticket: a missing one is 404
    with pytest.raises(NotFound) as err:
        auditor.ticket("no-such-ticket")
    assert err.value.status == 404 and err.value.code and "no-such-ticket" in err.value.message
    with pytest.raises(Unauthorized) as err:  # an unsigned read of an account
        Client(live.url).account(live.alice.public_key)
    assert err.value.status == 401 and "sign the read with a key entitled to it" in str(err.value)
    with pytest.raises(Forbidden) as err:  # Alice may not read the issuer's account
        Client(live.url, key=live.alice).account(live.chain.issuer.public_key)
    assert err.value.status == 403 and err.value.code == "not_entitled" and isinstance(err.value, ApiError)


def test_a_node_that_does_not_answer_is_node_unreachable_for_both_clients():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: the connection is refused
        with pytest.raises(NodeUnreachable) as err:
            Client(f"http://127.0.0.1:{port}", timeout_s=2).status()
        assert err.value.status == 0 and f"127.0.0.1:{port}" in str(err.value)

        async def call():
            async with AsyncClient(f"http://127.0.0.1:{port}", timeout_s=2) as client:
                await client.status()
        with pytest.raises(NodeUnreachable):
            asyncio.run(call())
    assert not issubclass(NodeUnreachable, UntrustedCertificate)


def test_wait_gives_up_with_wait_timeout_on_a_tx_the_node_never_saw(live):
    with pytest.raises(WaitTimeout) as err:
        Client(live.url, key=live.alice).wait("ab" * 32, timeout_s=0.3)
    assert "ab" * 32 in str(err.value) and "unknown" in str(err.value)


def test_a_tx_refused_by_a_rule_commits_as_failed_with_its_reason_and_the_rules_message(live):
    Client(live.url, key=live.chain.issuer).send("mint", [live.alice.public_key, 100])
    done = Client(live.url, key=live.alice).send("transfer", [live.chain.issuer.public_key, 250, bytes(32)])
    assert done["status"] == "committed" and done["outcome"] == "failed"
    assert done["reason"] == "insufficient_balance"
    assert "100" in done["detail"] and "250" in done["detail"]  # what was seen and what was asked


def test_events_stream_the_committed_events_the_key_may_see_for_both_clients(live):
    done = Client(live.url, key=live.chain.issuer).send("mint", [live.alice.public_key, 7])
    frames = Client(live.url, key=live.alice).events(last_event_id="0:0:0", timeout_s=10)
    first = next(f for f in frames if f.get("event") != "cut")
    frames.close()
    assert first["data"]["id"].startswith(f"{done['height']}:") and first["id"] == first["data"]["id"]

    async def follow():
        async with AsyncClient(live.url, key=live.alice) as alice:
            async for frame in alice.events(last_event_id="0:0:0", timeout_s=10):
                return frame
    assert asyncio.run(follow())["id"] == first["id"]


def test_health_routes_through_both_clients(live):
    assert Client(live.url).livez()["status"] == "alive"
    ready = Client(live.url).readyz()
    assert ready["status"] == "ready" and ready["height"] >= 0

    async def run():
        async with AsyncClient(live.url) as node:
            return await node.livez(), await node.readyz()
    alive, ready = asyncio.run(run())
    assert alive["status"] == "alive" and ready["status"] == "ready"
