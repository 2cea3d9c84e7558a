"""The vault's HTTP handlers: customers' personal data (staff-signed) and text records (account-signed).

``node.routes`` lists them in its one route table; the rules are in ``node.vault`` (personal data),
``node.vault_texts`` (text records) and ``node.staff_auth`` (who may touch what). Every refusal is a 4xx.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ledger.commitments import MAX_TEXT_BYTES
from ledger.customers import get_branch_of
from node.app_keys import ERASURE_KEY, NODE_KEY, VAULT_KEY
from node.audit import record_read
from node.errors import NodeError
from node.http import HEX32_PATTERN, BadRequest, parse_hex, parse_hex32, parse_json, require_object
from node.reads import is_id
from node.staff_auth import BODY, STAFF, is_privileged_reader, verify_customer_scope, verify_text_scope
from node.vault import MAX_FIELD_VALUE, MAX_FIELDS, VaultNotFound, VaultUnauthorized
from node.vault_sync import KIND_CUSTOMER, KIND_TEXT, VAULT_SYNC_KEY
from node.vault_texts import TextRecord, VaultTexts

log = logging.getLogger("carecoin.vault")

REQUEST_CATCH_UP = 10_000  # blocks a vault read may apply to the erasure follower before it answers


async def post_vault_customer(request: web.Request) -> web.Response:
    """POST /v1/vault/customers {"customer", "data": {field: str}, "salt"?} (staff-signed) -> {salt, commitment}.

    Staff write only records of their own branch's customers (403 ``wrong_branch``, ``node.staff_auth``).
    A registered customer's write must carry the salt and data that open the on-chain commitment (409
    otherwise, the stored record unchanged); an erased customer's is refused (410). See ``node.vault``.
    """
    expected = '{"customer": "<64 hex digits>", "data": {field: text, ...}, "salt": "<64 hex digits>" (optional)}'
    doc = require_object(parse_json(request[BODY], expected), {"customer": str, "data": dict}, expected)
    customer = parse_hex32(doc["customer"], "customer id")
    salt = None if doc.get("salt") is None else parse_hex(doc["salt"], "salt", size=32)
    node, vault = request.app[NODE_KEY], request.app[VAULT_KEY]
    verify_customer_scope(node.store, request[STAFF], customer, vault, write=True)
    stored = vault.put(customer, doc["data"], salt, branch=get_branch_of(node.store, request[STAFF]))
    log.info("vault: personal data of %s stored by staff %s", customer.hex()[:16], request[STAFF].hex()[:16])
    await _replicate(request, KIND_CUSTOMER, customer)
    return web.json_response({"customer": customer.hex(), "salt": stored.salt.hex(),
                              "commitment": stored.commitment.hex()}, status=201)


async def get_vault_customer(request: web.Request) -> web.Response:
    """GET /v1/vault/customers/{id} (staff-signed): the decrypted personal data; 410 once erased.

    Staff read only their own branch's customers; compliance and auditors read all (403 ``wrong_branch``).
    """
    customer = parse_hex32(request.match_info["id"], "customer id")
    vault, store = request.app[VAULT_KEY], request.app[NODE_KEY].store
    try:
        verify_customer_scope(store, request[STAFF], customer, vault, write=False)
        request.app[ERASURE_KEY].catch_up(REQUEST_CATCH_UP)  # an erasure that just committed is applied first
        fields, salt = vault.get(customer)
    except NodeError as exc:
        record_read(request, store, customer, "customer-data", exc.code)
        raise
    record_read(request, store, customer, "customer-data", "ok")  # written before the data is answered
    log.info("vault: personal data of %s read by %s", customer.hex()[:16], request[STAFF].hex()[:16])
    return web.json_response({"customer": customer.hex(), "data": fields, "salt": salt.hex()})


async def _replicate(request: web.Request, kind: str, ident: bytes) -> None:
    """Push a record just stored here to every connected validator (``node.vault_sync``)."""
    sync = request.app.get(VAULT_SYNC_KEY)
    if sync is not None:
        await sync.push(kind, ident)


def parse_about(doc: dict) -> tuple[str, str]:
    """The optional ``"ticket"`` or ``"order"`` id a text is about: ("ticket", id), ("order", id) or ("", "")."""
    given = [name for name in ("ticket", "order") if doc.get(name) is not None]
    if len(given) > 1:
        raise BadRequest("a text is about one ticket or one order; got both 'ticket' and 'order'")
    if not given:
        return "", ""
    value = doc[given[0]]
    if not isinstance(value, str) or not is_id(value):
        raise BadRequest(f"{given[0]!r}: expected an id of 1..64 bytes of printable text without surrounding spaces")
    return given[0], value


async def post_vault_text(request: web.Request) -> web.Response:
    """POST /v1/vault/texts {"customer", "commitment", "salt", "text", "kind", "ticket"?|"order"?} (signed).

    201 ``{"commitment", "customer", "stored": true}`` (200 with ``stored: false`` when the same customer's
    record was already here). Refusals: 400 shape, 403 signer (``verify_text_scope``), 409 the salt and text
    do not open the commitment / the commitment is another customer's, 410 customer erased, 413 text too long.
    """
    expected = ('{"customer": "<64 hex>", "commitment": "<64 hex>", "salt": "<64 hex>", "text": str, '
                '"kind": str, "ticket" | "order": id (optional)}')
    doc = require_object(parse_json(request[BODY], expected),
                         {"customer": str, "commitment": str, "salt": str, "text": str, "kind": str}, expected)
    customer = parse_hex32(doc["customer"], "customer id")
    commitment = parse_hex32(doc["commitment"], "commitment")
    salt = parse_hex32(doc["salt"], "salt")
    about = parse_about(doc)
    node, vault = request.app[NODE_KEY], request.app[VAULT_KEY]
    verify_text_scope(node.store, request[STAFF], customer, vault, about, write=True)
    request.app[ERASURE_KEY].catch_up(REQUEST_CATCH_UP)  # an erasure that just committed is applied first
    record = TextRecord(commitment, customer, doc["kind"], salt, doc["text"], *about)
    stored = VaultTexts(vault).put(record)
    log.info("vault: %s text %s of %s stored by %s", record.kind, commitment.hex()[:16], customer.hex()[:16],
             request[STAFF].hex()[:16])
    if stored:
        await _replicate(request, KIND_TEXT, commitment)
    return web.json_response({"commitment": commitment.hex(), "customer": customer.hex(), "stored": stored},
                             status=201 if stored else 200)


async def get_vault_text(request: web.Request) -> web.Response:
    """GET /v1/vault/texts/{commitment} (signed): {commitment, customer, kind, text, salt, ticket|order}.

    404 when no record is here, 403 for a signer outside the scope (checked before anything is decrypted),
    410 once the customer was erased.
    """
    commitment = parse_hex32(request.match_info["commitment"], "commitment")
    node, vault = request.app[NODE_KEY], request.app[VAULT_KEY]
    texts, what, customer = VaultTexts(vault), f"text:{commitment.hex()}", b""
    try:
        customer, about_kind, about_id = _read_text_header(texts, node.store, request[STAFF], commitment)
        verify_text_scope(node.store, request[STAFF], customer, vault, (about_kind, about_id), write=False)
        request.app[ERASURE_KEY].catch_up(REQUEST_CATCH_UP)
        record = texts.get(commitment)
    except NodeError as exc:
        record_read(request, node.store, customer, what, exc.code)
        raise
    record_read(request, node.store, customer, what, "ok")  # written before the text is answered
    log.info("vault: text %s of %s read by %s", commitment.hex()[:16], customer.hex()[:16], request[STAFF].hex()[:16])
    doc = {"commitment": commitment.hex(), "customer": customer.hex(), "kind": record.kind, "text": record.text,
           "salt": record.salt.hex()}
    if about_kind:
        doc[about_kind] = about_id
    return web.json_response(doc)


def _read_text_header(texts: VaultTexts, store, signer: bytes, commitment: bytes) -> tuple[bytes, str, str]:
    """The text's header; for a signer holding no vault role, one refusal whether the text is another
    customer's or not stored here at all, naming no one (no existence or ownership leak to a customer)."""
    try:
        customer, about_kind, about_id = texts.read_header(commitment)
    except VaultNotFound:
        if is_privileged_reader(store, signer):
            raise
        customer = b""
    if customer != signer and not is_privileged_reader(store, signer):
        raise VaultUnauthorized(f"key {signer.hex()[:16]}… is neither customer of text {commitment.hex()[:16]}… "
                                "nor staff, nor compliance or auditor (a text not stored here is refused alike)")
    return customer, about_kind, about_id


# ---- OpenAPI bodies --------------------------------------------------------------------------------------

_HEX32 = {"type": "string", "pattern": HEX32_PATTERN}
VAULT_BODY = {"type": "object", "required": ["customer", "data"], "properties": {
    "customer": {**_HEX32, "description": "the customer's account id"},
    "data": {"type": "object", "minProperties": 1, "maxProperties": MAX_FIELDS,
             "propertyNames": {"pattern": "^[a-z][a-z0-9_]{0,63}$"},
             "additionalProperties": {"type": "string", "maxLength": MAX_FIELD_VALUE}},
    "salt": {**_HEX32, "description": "required once the customer is registered: the salt of the on-chain "
                                      "commitment (a fresh one is drawn when absent)"}}}
_ID = {"type": "string", "minLength": 1, "maxLength": 64}
TEXT_BODY = {"type": "object", "required": ["customer", "commitment", "salt", "text", "kind"], "properties": {
    "customer": {**_HEX32, "description": "the account whose vault key encrypts the text"},
    "commitment": {**_HEX32, "description": "H('carecoin/v1/text', salt || utf-8 text), as on chain"},
    "salt": {**_HEX32, "description": "32 random bytes, fresh for each text"},
    "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_BYTES,
             "description": f"1..{MAX_TEXT_BYTES} utf-8 bytes"},
    "kind": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$",
             "description": "ticket_message, ticket_response, resolution, refund_reason, reopen_reason, memo, ..."},
    "ticket": {**_ID, "description": "the ticket the text is about (its branch's staff may read it)"},
    "order": {**_ID, "description": "the order the text is about (its branch's staff may read it)"}}}
