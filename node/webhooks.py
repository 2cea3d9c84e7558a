"""Webhooks registered by a branch: the node-local, persisted registry and each hook's delivery state.

Theory of operation
-------------------
A branch admin registers a URL (``POST /v1/webhooks``, ``node.webhook_routes``); the node sends it every
committed event the branch's staff may read (``node.event_feed.Reader(branch=...)``), one POST per event, in
chain order (``node.webhook_delivery``). Everything lives in ``<data_dir>/webhooks/``, node-local (another
node of the network knows nothing of it):

- ``hooks.json`` (0600): id, url, branch, the per-hook secret, who registered it and when;
- ``<id>.state`` (0600): the cursor (the id of the last event acknowledged or dead-lettered), the dead letters
  and the redrive queue. Written atomically (temp file, fsync, rename) **after** the receiver acknowledged, so
  a node that stops — cleanly or not — between a delivery and its write sends that event again after the
  restart, with the same delivery id: delivery is at least once, and ``X-Carecoin-Delivery`` lets the
  receiver drop the repeat.

Payloads are signed with HMAC-SHA256 under the hook's own secret (32 random bytes, returned once at
registration): ``X-Carecoin-Signature: v1=hex(HMAC(secret, timestamp_ms + "." + body))`` with
``X-Carecoin-Timestamp``. HMAC rather than the node's Ed25519 key: the receiver needs no node key and no
network CA, a leaked secret concerns one hook only, and deleting the hook revokes it.

Bounds: ``MAX_HOOKS_PER_BRANCH`` hooks a branch, ``MAX_DEAD_LETTERS`` a hook (the oldest go first, counted).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from node.errors import NodeError
from node.event_feed import EventId
from node.vault import write_atomic

MAX_HOOKS_PER_BRANCH = 16
MAX_DEAD_LETTERS = 1000
MAX_URL_CHARS = 2048
HOOK_ID_HEX = 16


class WebhookError(NodeError):
    code = "webhook_error"
    http_status = 400


class WebhookNotFound(WebhookError):
    code = "webhook_not_found"
    http_status = 404


class TooManyWebhooks(WebhookError):
    code = "too_many_webhooks"
    http_status = 409


@dataclass(frozen=True, slots=True)
class Hook:
    """A registered webhook."""

    id: str
    url: str
    branch: str
    secret: str  # hex
    created_ms: int
    created_by: str  # the branch admin's key, hex

    def public(self) -> dict[str, Any]:
        """The hook as listed (never the secret)."""
        return {"id": self.id, "url": self.url, "branch": self.branch, "created_ms": self.created_ms,
                "created_by": self.created_by}


@dataclass(slots=True)
class HookState:
    """Where a hook's delivery stands (persisted after every acknowledgement)."""

    cursor: str
    dead: list[dict] = field(default_factory=list)  # {delivery_id, event, attempts, error, dead_ms}
    redrive: list[dict] = field(default_factory=list)  # dead letters queued for another round of attempts
    dropped: int = 0  # dead letters dropped beyond MAX_DEAD_LETTERS

    @property
    def position(self) -> EventId:
        return EventId.parse(self.cursor)


def sign_payload(secret_hex: str, timestamp_ms: int, body: bytes) -> str:
    """The ``X-Carecoin-Signature`` value of a delivery: ``v1=`` + hex HMAC-SHA256 over ``"<ms>." + body``."""
    mac = hmac.new(bytes.fromhex(secret_hex), str(timestamp_ms).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_payload(secret_hex: str, timestamp_ms: int, body: bytes, signature: str) -> bool:
    """What a receiver checks (constant time)."""
    return hmac.compare_digest(sign_payload(secret_hex, timestamp_ms, body), signature)


def delivery_id(hook_id: str, event_id: str) -> str:
    """One id per (hook, event): every attempt and every redelivery of that event to that hook carries it."""
    return f"{hook_id}:{event_id}"


class WebhookRegistry:
    """The hooks and their states under ``root`` (see the module docstring); every change is on disk before
    the call returns."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.hooks: dict[str, Hook] = {}
        self.states: dict[str, HookState] = {}
        path = self.root / "hooks.json"
        if path.exists():
            for doc in json.loads(path.read_text()):
                hook = Hook(**doc)
                self.hooks[hook.id] = hook
                self.states[hook.id] = self._load_state(hook.id)

    def _load_state(self, hook_id: str) -> HookState:
        doc = json.loads((self.root / f"{hook_id}.state").read_text())
        return HookState(**doc)

    def _save_hooks(self) -> None:
        body = json.dumps([asdict(h) for h in self.hooks.values()], indent=1).encode()
        write_atomic(self.root / "hooks.json", body)  # 0600: it holds the secrets

    def save_state(self, hook_id: str) -> None:
        """Write a hook's state (temp file, fsync, rename)."""
        state = self.states.get(hook_id)
        if state is not None:
            write_atomic(self.root / f"{hook_id}.state", json.dumps(asdict(state)).encode())

    def add(self, url: str, branch: str, created_by: bytes, now_ms: int, head: int) -> Hook:
        """Register a hook for ``branch`` that starts with the events after block ``head``."""
        if sum(h.branch == branch for h in self.hooks.values()) >= MAX_HOOKS_PER_BRANCH:
            raise TooManyWebhooks(f"branch {branch!r} has {MAX_HOOKS_PER_BRANCH} webhooks; at most "
                                  f"{MAX_HOOKS_PER_BRANCH}: delete one first")
        hook = Hook(secrets.token_hex(HOOK_ID_HEX // 2), url, branch, secrets.token_hex(32), now_ms,
                    created_by.hex())
        self.states[hook.id] = HookState(str(EventId.after_block(head)))
        self.save_state(hook.id)
        self.hooks[hook.id] = hook
        self._save_hooks()
        return hook

    def get(self, hook_id: str) -> Hook:
        hook = self.hooks.get(hook_id)
        if hook is None:
            raise WebhookNotFound(f"no webhook {hook_id[:40]!r} on this node")
        return hook

    def remove(self, hook_id: str) -> Hook:
        hook = self.get(hook_id)
        del self.hooks[hook_id]
        self._save_hooks()
        self.states.pop(hook_id, None)
        (self.root / f"{hook_id}.state").unlink(missing_ok=True)
        return hook

    def dead_letter(self, hook_id: str, letter: dict) -> None:
        """Keep a letter whose attempts ran out (bounded: the oldest go first); the caller saves the state."""
        state = self.states[hook_id]
        state.dead.append(letter)
        while len(state.dead) > MAX_DEAD_LETTERS:
            state.dead.pop(0)
            state.dropped += 1

    def redrive(self, hook_id: str) -> int:
        """Queue every dead letter for another round of attempts; return how many."""
        self.get(hook_id)
        state = self.states[hook_id]
        count = len(state.dead)
        state.redrive.extend(state.dead)
        state.dead = []
        self.save_state(hook_id)
        return count
