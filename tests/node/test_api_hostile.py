"""Anyone who can reach the API is hostile: malformed input answers a 4xx in the one error shape, never a 5xx.

Each test names the attacker's input and the promise. The input is what a client controls: path and query
values (Unicode digits pass ``str.isdigit``; ``int`` takes some and raises on others; 5000-digit numbers hit
Python's int-string limit), JSON bodies (nesting, huge numbers, NaN, lone surrogates, non-UTF-8, wrong types)
and hex (whitespace, odd lengths, non-ASCII).
"""

from __future__ import annotations

import json
import time

import pytest

from ledger.keys import KeyPair
from ledger.storage import Store
from ledger.tx import make_tx
from node.app import create_node_app
from node.service import NodeService
from node.vault import compute_request_headers
from tests.node.local_chain import CHAIN, LocalChain
from tests.node.test_api_domain import PERSON, client, commit, signed  # noqa: F401  (client: a node over a story)
from tests.node.signing import signed_get
from tests.node.test_service import FAST

ACCOUNT = "00" * 32
UNICODE_DIGITS = ["²", "١٢٣", "٣", "①", "𝟗"]
HOSTILE_INTS = UNICODE_DIGITS + ["9" * 5000, "1" * 21, "-1", "+1", " 1", "1 ", "0x10", "1e3", "1_000", ""]
NESTED = b"[" * 100_000 + b"]" * 100_000


async def answer(resp) -> tuple[int, dict]:
    return resp.status, await resp.json()


async def read(client, path: str, params: dict | None = None):
    """A read signed by the company auditor (entitled to every object): what is left to refuse is the input."""
    return await signed_get(client, path, client.chain.auditor, CHAIN, params=params)


def assert_400(status: int, doc: dict, *needles: str) -> None:
    """A 400 in the one error shape whose message names what was seen and what was expected."""
    assert status == 400, doc
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message"}, doc
    assert doc["error"]["code"] == "bad_request", doc
    for needle in needles:
        assert needle in doc["error"]["message"], doc


async def signed_raw(client, method: str, path: str, raw: bytes) -> tuple[int, dict]:
    headers = compute_request_headers(client.chain.staff, CHAIN, method, path, raw, int(time.time() * 1000))
    return await answer(await client.request(method, path, data=raw, headers=headers))


# ---- integers in paths and queries ----------------------------------------------------------------------

@pytest.mark.asyncio
async def test_unicode_digits_in_height_answer_400_not_500(client):
    for text in HOSTILE_INTS[:-1]:  # an empty segment is another route (404)
        assert_400(*await answer(await read(client, f"/v1/blocks/{text}")), "height", "ASCII digits")


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["limit", "before", "scan"])
async def test_unicode_digits_in_history_paging_answer_400_not_500(client, name):
    for text in HOSTILE_INTS:
        resp = await read(client, f"/v1/accounts/{ACCOUNT}/history", params={name: text})
        assert_400(*await answer(resp), name, "expected an integer")


@pytest.mark.asyncio
async def test_unicode_digits_in_policy_version_answer_400_not_500(client):
    for text in HOSTILE_INTS:
        assert_400(*await answer(await client.get("/v1/policy", params={"version": text})), "version")


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["since", "until"])
async def test_unicode_digits_in_report_period_answer_400_not_500(client, name):
    for text in HOSTILE_INTS:
        assert_400(*await answer(await read(client, "/v1/report", params={name: text})), name)


@pytest.mark.asyncio
async def test_heights_above_the_64_bit_range_answer_400_and_the_largest_one_404(client):
    assert_400(*await answer(await read(client, f"/v1/blocks/{2**63}")), str(2**63))
    status, doc = await answer(await read(client, f"/v1/blocks/{2**63 - 1}"))
    assert status == 404 and doc["error"]["code"] == "not_found"


# ---- other path and query values ------------------------------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("path", [
    "/v1/tx/" + "ab" * 31 + "a ",  # bytes.fromhex skips spaces
    "/v1/tx/" + "é" * 64,
    "/v1/accounts/" + "0" * 62 + "\u0660\u0660",
    "/v1/customers/" + "ab" * 1000,
])
async def test_hex_ids_that_are_not_64_ascii_hex_digits_answer_400(client, path):
    assert_400(*await answer(await read(client, path)), "expected 64 hex digits")


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/v1/blocks/0?format=" + "x" * 5000, "/v1/tx/" + "ab" * 32 + "/receipt?format=%FF"])
async def test_unknown_or_oversized_formats_answer_400_naming_the_choices(client, path):
    assert_400(*await answer(await read(client, path)), "expected one of json")


@pytest.mark.asyncio
async def test_an_oversized_branch_in_the_report_answers_400(client):
    assert_400(*await answer(await read(client, "/v1/report", params={"branch": "b" * 5000})), "1..64")


# ---- JSON bodies ----------------------------------------------------------------------------------------

COMMON_BAD_BODIES = [
    (NESTED, "deeper than"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"", "not JSON"),
    (b"{", "not JSON"),
    (b"[]", "JSON array"),
    (b"null", "JSON null"),
]
BAD_TX_BODIES = COMMON_BAD_BODIES + [
    (b'{"tx": [' + b"[" * 40 + b"]" * 40 + b"]}", "deeper than"),
    (b'{"tx": 1' + b"0" * 5000 + b"}", "5001 digits"),
    (b'{"tx": NaN}', "NaN"),
    (b'{"tx": -Infinity}', "Infinity"),
    (b'{"tx": "\xff"}', "not UTF-8"),
    (b'{"tx": "\\ud800"}', "surrogate"),
    (b'{"tx": 5}', "JSON number"),
    (b'{"tx": "9101 "}', "not hex"),
    (b'{"tx": "abc"}', "not hex"),
    (b'{"tx": "\xd9\xa1\xd9\xa2"}', "not hex"),
]
BAD_TXS_BODIES = COMMON_BAD_BODIES + [
    (b'{"txs": [' + b"[" * 40 + b"]" * 40 + b"]}", "deeper than"),
    (b'{"txs": [1' + b"0" * 5000 + b"]}", "5001 digits"),
    (b'{"txs": "abcd"}', "JSON string"),
    (b'{"txs": [1]}', "JSON number"),
    (b'{"txs": ["9101", {}]}', "JSON object"),
    (b'{"txs": ["9101 "]}', "not hex"),
]


@pytest.mark.asyncio
async def test_hostile_tx_bodies_answer_400_naming_what_was_seen(client):
    for body, needle in BAD_TX_BODIES:
        assert_400(*await answer(await client.post("/v1/tx", data=body)), needle)


@pytest.mark.asyncio
async def test_hostile_batch_bodies_answer_400_naming_what_was_seen(client):
    for body, needle in BAD_TXS_BODIES:
        assert_400(*await answer(await client.post("/v1/txs", data=body)), needle)


@pytest.mark.asyncio
async def test_deeply_nested_json_body_answers_400(client):
    for path in ("/v1/tx", "/v1/txs"):
        assert_400(*await answer(await client.post(path, data=NESTED)), "deeper than 16 levels")
    assert_400(*await signed_raw(client, "POST", "/v1/vault/customers", b"[" * 50_000), "deeper than 16 levels")


@pytest.mark.asyncio
async def test_a_lone_surrogate_in_vault_data_answers_400_and_stores_nothing(client):
    customer = "ab" * 32
    raw = json.dumps({"customer": customer, "data": {"name": "\ud800"}}).encode()
    assert_400(*await signed_raw(client, "POST", "/v1/vault/customers", raw), "surrogate")
    status, doc = await signed_raw(client, "GET", f"/v1/vault/customers/{customer}", b"")
    assert status == 404 and doc["error"]["code"] == "vault_not_found"


@pytest.mark.asyncio
@pytest.mark.parametrize("body, needle", [
    ({"customer": "ab" * 32, "data": []}, "JSON array"),
    ({"customer": 7, "data": {"name": "x"}}, "JSON number"),
    ({"data": {"name": "x"}}, "no 'customer'"),
    ({"customer": "ab" * 32, "data": {"name": "x"}, "salt": "zz" * 32}, "not hex"),
    ({"customer": "ab" * 32, "data": {"name": "x"}, "salt": 5}, "JSON number"),
])
async def test_mistyped_vault_bodies_answer_400(client, body, needle):
    assert_400(*await signed_raw(client, "POST", "/v1/vault/customers", json.dumps(body).encode()), needle)


@pytest.mark.asyncio
@pytest.mark.parametrize("header, value", [
    ("X-Carecoin-Time", "١٢٣"), ("X-Carecoin-Time", "²"), ("X-Carecoin-Time", "9" * 5000),
    ("X-Carecoin-Staff", "ab" * 31 + "a "), ("X-Carecoin-Signature", "zz" * 64),
])
async def test_malformed_signature_headers_answer_401_naming_the_header(client, header, value):
    path = f"/v1/vault/customers/{ACCOUNT}"
    headers = compute_request_headers(client.chain.staff, CHAIN, "GET", path, b"", int(time.time() * 1000))
    headers[header] = value
    status, doc = await answer(await client.get(path, headers=headers))
    assert status == 401 and doc["error"]["code"] == "bad_signature", doc
    assert header in doc["error"]["message"]


# ---- the vault keeps its data -----------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_staff_cannot_overwrite_a_registered_customers_vault_record_409_and_the_record_stays(client):
    c, dana = client.chain, KeyPair.generate()
    status, stored = await signed(client, c.staff, "POST", "/v1/vault/customers",
                                  {"customer": dana.public_key.hex(), "data": PERSON})
    assert status == 201
    await commit(client, make_tx(CHAIN, "register-customer", c.staff, c.nonces.get(c.staff.public_key, 0) + 1,
                                 [dana.public_key, 0, bytes.fromhex(stored["commitment"])]))
    forged = {"customer": dana.public_key.hex(), "data": {**PERSON, "email": "mallory@example.net"}}
    for body in (forged, {**forged, "salt": stored["salt"]}):
        status, doc = await signed(client, c.staff, "POST", "/v1/vault/customers", body)
        assert status == 409 and doc["error"]["code"] == "commitment_mismatch", doc
        assert stored["commitment"][:16] in doc["error"]["message"]
    status, back = await signed(client, c.staff, "GET", f"/v1/vault/customers/{dana.public_key.hex()}")
    assert status == 200 and back["data"] == PERSON and back["salt"] == stored["salt"]
    status, again = await signed(client, c.staff, "POST", "/v1/vault/customers",
                                 {"customer": dana.public_key.hex(), "data": PERSON, "salt": stored["salt"]})
    assert status == 201 and again["commitment"] == stored["commitment"]  # what opens the chain may be stored


@pytest.mark.asyncio
async def test_staff_cannot_store_data_for_a_customer_erased_on_chain_410(client):
    c, alice = client.chain, client.story["alice"]  # registered on chain; this vault never held her data
    await commit(client, make_tx(CHAIN, "erase-customer-data", alice, c.nonces[alice.public_key] + 1,
                                 [alice.public_key]))
    status, doc = await signed(client, c.staff, "POST", "/v1/vault/customers",
                               {"customer": alice.public_key.hex(), "data": PERSON})
    assert status == 410 and doc["error"]["code"] == "customer_erased", doc
    status, doc = await signed(client, c.staff, "GET", f"/v1/vault/customers/{alice.public_key.hex()}")
    assert status == 404 and doc["error"]["code"] == "vault_not_found"


@pytest.mark.asyncio
async def test_a_signed_vault_request_replayed_after_a_node_restart_is_refused(aiohttp_client, tmp_path):
    c = LocalChain(tmp_path / "db")
    c.store.close()
    body = json.dumps({"customer": KeyPair.generate().public_key.hex(), "data": PERSON}).encode()
    headers = compute_request_headers(c.staff, CHAIN, "POST", "/v1/vault/customers", body, int(time.time() * 1000))
    statuses = []
    for _ in range(2):  # the same node started twice on the same data dir
        svc = NodeService(key=c.node, genesis=c.genesis, store=Store.open(tmp_path / "db"), options=FAST)
        http = await aiohttp_client(create_node_app(svc, analytics=False))
        try:
            resp = await http.post("/v1/vault/customers", data=body, headers=headers)
            statuses.append((resp.status, (await resp.json()).get("error", {}).get("code")))
        finally:
            await http.close()
            svc.close()
    assert statuses == [(201, None), (401, "replayed_request")]
