"""The webhook routes: a branch admin registers, lists, deletes hooks, reads and redrives dead letters.

Every route is ``signed`` (``StaffGuard.signed``: any key on chain signs; the handler decides): registering,
deleting and redriving need the ``branch-admin`` role and act on the admin's own branch's hooks; listing and
reading dead letters are open to the branch's staff as well. Another branch's hook is refused 403
``wrong_branch``; an unknown id is 404 ``webhook_not_found`` (hook ids are random 64-bit values that name no
customer, so telling that one does not exist leaks nothing).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from ledger.state import has_role
from node.app_keys import NODE_KEY
from node.clock import now_ms
from node.http import BadRequest, op, parse_json, path_param, require_object
from node.read_access import NotEntitled, WrongBranch, describe_signer, get_staff_branch
from node.staff_auth import BODY, STAFF
from node.webhook_delivery import WebhookDelivery
from node.webhooks import MAX_URL_CHARS, Hook

WEBHOOKS_KEY: web.AppKey[WebhookDelivery] = web.AppKey("webhooks", WebhookDelivery)
ADMIN = "branch-admin"
WEBHOOK_BODY = {"type": "object", "required": ["url"], "properties": {
    "url": {"type": "string", "maxLength": MAX_URL_CHARS, "description": "http:// or https:// URL that receives "
            "one POST per committed event of the branch"}}}
_HOOK_ID = path_param("id", "webhook id, 16 hex digits", pattern="^[0-9a-f]{16}$")
WEBHOOK_OPS = {
    "add": op(
        "Register a webhook for the signer's branch (branch admins): every committed event the branch's staff may "
        "read is POSTed to the URL, in chain order, at least once (X-Carecoin-Delivery = hook id:event id, the "
        "same on every retry); signed with HMAC-SHA256 under the secret answered here once (X-Carecoin-Signature: "
        "v1=hex(HMAC(secret, X-Carecoin-Timestamp + '.' + body))); retried with exponential backoff and jitter, "
        "then kept as a dead letter", "201", 400, 401, 403, 409, body=WEBHOOK_BODY),
    "list": op("The webhooks of the signer's branch (staff, branch admins): url, cursor, dead letters (no secrets)",
               "200", 401, 403),
    "delete": op("Delete a webhook of the signer's branch (branch admins)", "200", 401, 403, 404, params=(_HOOK_ID,)),
    "dead-letters": op("The deliveries of a webhook whose attempts ran out (staff, branch admins of its branch)",
                       "200", 401, 403, 404, params=(_HOOK_ID,)),
    "redrive": op("Queue every dead letter of a webhook for another round of attempts, before new events (branch "
                  "admins)", "200", 401, 403, 404, params=(_HOOK_ID,)),
}


def _branch_of(request: web.Request, *, admin: bool) -> str:
    """The signer's branch; 403 unless they are its admin (``admin``) or its staff."""
    store, signer = request.app[NODE_KEY].store, request[STAFF]
    branch = get_staff_branch(store, signer)
    if not branch or (admin and not has_role(store, ADMIN, signer)):
        need = "a branch admin" if admin else "staff or the admin of a branch"
        raise NotEntitled(f"webhooks are managed by {need}; the signer is {describe_signer(store, signer)}")
    return branch


def _hook_of_branch(request: web.Request, *, admin: bool) -> Hook:
    branch = _branch_of(request, admin=admin)
    hook = request.app[WEBHOOKS_KEY].registry.get(request.match_info["id"])
    if hook.branch != branch:
        raise WrongBranch(f"webhook {hook.id} belongs to branch {hook.branch!r}; the signer is "
                          f"{describe_signer(request.app[NODE_KEY].store, request[STAFF])}")
    return hook


def parse_hook_url(url: str) -> str:
    """An http(s) URL with a host, at most ``MAX_URL_CHARS``, or ``BadRequest``."""
    parts = urlsplit(url)
    if len(url) > MAX_URL_CHARS or parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"url {url[:60]!r}: expected an http:// or https:// URL with a host, at most "
                         f"{MAX_URL_CHARS} characters")
    return url


async def post_webhook(request: web.Request) -> web.Response:
    """POST /v1/webhooks {"url"} -> 201 the hook with its secret (shown this once)."""
    expected = '{"url": "https://receiver.example/hook"}'
    doc = require_object(parse_json(request[BODY], expected), {"url": str}, expected)
    url = parse_hook_url(doc["url"])
    branch = _branch_of(request, admin=True)
    delivery = request.app[WEBHOOKS_KEY]
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    targets = delivery.targets.with_own(*sockname[:2]) if sockname else delivery.targets
    await targets.check(url)  # the operator's allow-list; never this node's own listeners
    hook = delivery.registry.add(url, branch, request[STAFF], now_ms(), request.app[NODE_KEY].store.head().height)
    delivery.start_hook(hook.id)
    state = delivery.registry.states[hook.id]
    return web.json_response({**hook.public(), "secret": hook.secret, "cursor": state.cursor,
                              "signature": "X-Carecoin-Signature: v1=hex(HMAC-SHA256(secret, "
                                           "X-Carecoin-Timestamp + '.' + body))"}, status=201)


async def get_webhooks(request: web.Request) -> web.Response:
    """GET /v1/webhooks: the signer's branch's hooks (no secrets) with their cursors and dead-letter counts."""
    branch = _branch_of(request, admin=False)
    registry = request.app[WEBHOOKS_KEY].registry
    items = [{**h.public(), "cursor": registry.states[h.id].cursor, "dead_letters": len(registry.states[h.id].dead),
              "redrive_queued": len(registry.states[h.id].redrive)}
             for h in registry.hooks.values() if h.branch == branch]
    return web.json_response({"branch": branch, "items": items})


async def delete_webhook(request: web.Request) -> web.Response:
    """DELETE /v1/webhooks/{id}: stop and forget the hook (its cursor and dead letters too)."""
    hook = _hook_of_branch(request, admin=True)
    delivery = request.app[WEBHOOKS_KEY]
    await delivery.stop_hook(hook.id)
    delivery.registry.remove(hook.id)
    return web.json_response({"deleted": hook.id})


async def get_dead_letters(request: web.Request) -> web.Response:
    """GET /v1/webhooks/{id}/dead-letters: the events whose attempts ran out, oldest first."""
    hook = _hook_of_branch(request, admin=False)
    state = request.app[WEBHOOKS_KEY].registry.states[hook.id]
    return web.json_response({"hook_id": hook.id, "items": state.dead, "redrive_queued": len(state.redrive),
                              "dropped": state.dropped})


async def post_redrive(request: web.Request) -> web.Response:
    """POST /v1/webhooks/{id}/dead-letters/redrive: try every dead letter again (before new events)."""
    hook = _hook_of_branch(request, admin=True)
    delivery = request.app[WEBHOOKS_KEY]
    count = delivery.registry.redrive(hook.id)
    delivery.on_commit(0, [])  # wake the hook's task
    return web.json_response({"hook_id": hook.id, "redriven": count})
