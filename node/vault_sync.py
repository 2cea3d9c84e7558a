"""Vault replication: every validator's vault holds every customer's records, encrypted per customer.

Theory of operation
-------------------
Records travel on the peer links' ``vault`` channel (``node.peers``: only validators that passed the node-key
handshake ever reach ``on_frame``, so a replicated write from anyone else is impossible). A record is sent as
it is stored, ciphertext under the customer's own key, with that key **sealed to the receiving validator**
(``nacl.public.SealedBox`` to the X25519 key converted from its Ed25519 node key): a link without transport
encryption still leaks nothing, and only the addressed node can open the key. An item is
``[kind, id, customer, sealed_key, header, ciphertext]``: kind ``"c"`` (personal data; id = customer,
header = the storing branch) or ``"t"`` (a text record; id = its commitment, header = ``[about_kind,
about_id]``).

The receiver opens the key and the record, then stores it through ``Vault.put`` / ``VaultTexts.put``: the very
rules of a direct write (the salt and data must open the on-chain commitment, the salt and text the text's
commitment, and its account must exist on chain here, as for a direct write; an erased customer — on chain or
shredded here — is refused; the text quota holds), re-wrapping
the key under its own master key (it adopts the sender's key when it has none for the customer, otherwise it
re-encrypts under its own). Personal data is accepted only once the customer is registered on chain here (no
commitment, nothing to check it against): a replica that arrives first waits in a bounded pending set
(``MAX_PENDING``, ``PENDING_TTL_S``) and is retried after each commit.

Delivery: a direct write is pushed at once to every connected validator. A node that was down catches up by
anti-entropy, run when a link comes up and every ``PERIOD_S``: it asks the peer for its inventory in pages of
``INVENTORY_PAGE`` ids (``["inv?", cursor or []]`` → ``["inv", entries, more (0/1)]``), asks for what it lacks and would
accept (``["want", ids]``, at most ``MAX_WANT`` a frame; personal data is offered once registered on the
sender's chain, and wanted even before the receiver has caught up to the registration: it then waits pending) and gets ``["push", items]`` batches of at most
``MAX_PUSH_ITEMS`` items / ``MAX_PUSH_BYTES``. An erased customer's records are never offered (their key is
gone) and never accepted, so replication cannot resurrect a shredded customer. A malformed frame is counted
and dropped: the link stays (it carries consensus too).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import Counter, OrderedDict
from typing import Any, Awaitable, Callable

import nacl.exceptions
import nacl.public
import nacl.secret
import nacl.signing
from aiohttp import web

from ledger import codec
from ledger.errors import LedgerError
from ledger.keys import KeyPair
from node.vault import Vault, VaultErased, VaultError
from node.vault_texts import TextRecord, VaultTexts

log = logging.getLogger("carecoin.vault")

CHANNEL_VAULT = "vault"
KIND_CUSTOMER, KIND_TEXT = "c", "t"
INVENTORY_PAGE = 512
MAX_WANT = 64
MAX_PUSH_ITEMS = 32
MAX_PUSH_BYTES = 1024 * 1024
MAX_PENDING = 256
PENDING_TTL_S = 120.0
PERIOD_S = 30.0
INVENTORY_TTL_S = 5.0

Send = Callable[[bytes, str, bytes], Awaitable[Any]]


class ReplicaRefused(VaultError):
    """A replicated item that does not open (key not sealed to us, ciphertext not under that key, bad shape)."""

    code = "replica_refused"


def seal_key(peer: bytes, key: bytes) -> bytes:
    """``key`` sealed to the validator whose Ed25519 node key is ``peer`` (X25519 of that key)."""
    return nacl.public.SealedBox(nacl.signing.VerifyKey(peer).to_curve25519_public_key()).encrypt(key)


class VaultSync:
    """One node's side of vault replication (see the module docstring)."""

    def __init__(self, vault: Vault, key: KeyPair, send: Send, connected: Callable[[], list[bytes]], *,
                 is_known: Callable[[bytes], bool] = lambda account: True,
                 on_fault: Callable[[str], None] = lambda reason: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.vault, self.texts, self.send, self.connected, self.clock = vault, VaultTexts(vault), send, connected, clock
        self.is_known, self.on_fault = is_known, on_fault  # account exists on chain; a peer's bad input
        self._unseal = nacl.public.SealedBox(nacl.signing.SigningKey(key.seed).to_curve25519_private_key())
        self.counters: Counter[str] = Counter()
        self._pending: OrderedDict[bytes, tuple[list, float]] = OrderedDict()  # customer -> (item, arrival)
        self._inventory: tuple[float, list[list]] | None = None
        self._wake: asyncio.Event | None = None

    # ---- outgoing ------------------------------------------------------------------------------------

    def make_item(self, peer: bytes, kind: str, ident: bytes) -> list | None:
        """The item for ``peer`` (key sealed to it), or None when the record is not here or was erased."""
        try:
            if kind == KIND_CUSTOMER:
                customer, header, body = ident, self.vault.get_branch(ident) or "", self.vault.read_record(ident)
            else:
                customer, about_kind, about_id, body = self.texts.read_sealed(ident)
                header = [about_kind, about_id]
            sealed = seal_key(peer, self.vault.get_key(customer))
        except VaultError:
            return None
        return [kind, ident, customer, bytes(sealed), header, body]

    async def push(self, kind: str, ident: bytes) -> int:
        """Send one record just written here to every connected validator; return how many took it."""
        sent = 0
        for peer in self.connected():
            item = self.make_item(peer, kind, ident)
            if item is not None and await self.send(peer, CHANNEL_VAULT, codec.encode(["push", [item]])):
                sent += 1
        self.counters["pushed"] += sent
        return sent

    async def start_round(self, peer: bytes) -> None:
        """Anti-entropy with ``peer``: ask for the first page of its inventory."""
        self.counters["rounds"] += 1
        await self.send(peer, CHANNEL_VAULT, codec.encode(["inv?", []]))

    # ---- incoming ------------------------------------------------------------------------------------

    async def on_frame(self, peer: bytes, payload: bytes) -> None:
        """Handle one ``vault`` frame from an authenticated validator; a bad frame is counted and dropped."""
        try:
            doc = codec.decode(payload)
            if not (isinstance(doc, list) and len(doc) >= 2 and isinstance(doc[0], str)):
                raise ValueError("expected [verb, ...]")
            verb = doc[0]
            if verb == "push" and isinstance(doc[1], list):
                await self._on_push(peer, doc[1][:MAX_PUSH_ITEMS])
            elif verb == "inv?" and (doc[1] == [] or _is_cursor(doc[1])):
                await self._on_inventory_request(peer, doc[1] or None)
            elif verb == "inv" and len(doc) == 3 and isinstance(doc[1], list):
                await self._on_inventory(peer, doc[1][:INVENTORY_PAGE], bool(doc[2]))
            elif verb == "want" and isinstance(doc[1], list):
                await self._on_want(peer, doc[1][:MAX_WANT])
            else:
                raise ValueError(f"unknown verb {verb[:20]!r} or bad arguments")
        except (LedgerError, ValueError, TypeError) as exc:
            self.counters["bad_frames"] += 1
            self.on_fault("vault_bad_frame")
            log.warning("dropped a bad vault frame from %s: %s", peer.hex()[:16], exc)

    async def _on_push(self, peer: bytes, items: list) -> None:
        for item in items:
            outcome = self.apply_item(item)
            self.counters[f"replica_{outcome}"] += 1
            if outcome not in ("stored", "duplicate", "pending"):
                self.on_fault(f"vault_{outcome}")
                log.warning("vault replica from %s refused: %s", peer.hex()[:16], outcome)
            await asyncio.sleep(0)  # each item costs a few fsyncs: let consensus run between them

    def apply_item(self, item: Any) -> str:
        """Check and store one replicated item; return the outcome ("stored", "duplicate", "pending" or the
        refusal's code, e.g. "customer_erased", "commitment_mismatch"). Never raises for a bad item."""
        try:
            kind, ident, customer, key, header, plain = self._open(item)
            if kind == KIND_CUSTOMER:
                return self._apply_customer(item, customer, key, header, plain)
            if not self.is_known(customer):
                raise ReplicaRefused(f"account {customer.hex()[:16]}… does not exist on chain here; "
                                     "it holds no texts")
            kind_, salt, text = codec.decode(plain)
            record = TextRecord(ident, customer, kind_, salt, text.decode("utf-8"), *header)
            return "stored" if self.texts.put(record, key=key) else "duplicate"
        except VaultError as exc:
            return exc.code
        except (LedgerError, ValueError, TypeError, AttributeError, UnicodeDecodeError):
            return ReplicaRefused.code

    def _open(self, item: Any) -> tuple[str, bytes, bytes, bytes, Any, bytes]:
        if not (isinstance(item, list) and len(item) == 6 and item[0] in (KIND_CUSTOMER, KIND_TEXT)
                and all(isinstance(x, bytes) for x in (item[1], item[2], item[3], item[5]))
                and len(item[1]) == 32 and len(item[2]) == 32):
            raise ReplicaRefused("expected [kind, id, customer, sealed_key, header, ciphertext]")
        kind, ident, customer, sealed, header, body = item
        if kind == KIND_CUSTOMER and (ident != customer or not isinstance(header, str) or len(header) > 64):
            raise ReplicaRefused("a customer item names its customer as id and a branch (<= 64 chars) as header")
        if kind == KIND_TEXT and not (isinstance(header, list) and len(header) == 2
                                      and all(isinstance(x, str) for x in header)):
            raise ReplicaRefused("a text item's header is [about_kind, about_id]")
        onchain = self.vault.on_chain(customer)
        if self.vault.is_erased(customer) or (onchain is not None and onchain.erased):
            raise VaultErased(f"customer {customer.hex()[:16]}… was erased; no replica is stored")
        try:
            key = self._unseal.decrypt(sealed)
            plain = nacl.secret.SecretBox(key).decrypt(body)
        except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
            raise ReplicaRefused(f"the item does not open: {type(exc).__name__}") from None
        return kind, ident, customer, key, header, plain

    def _apply_customer(self, item: list, customer: bytes, key: bytes, branch: str, plain: bytes) -> str:
        salt, data = codec.decode(plain)
        fields = dict(codec.decode(data))
        if self.vault.on_chain(customer) is None:  # no commitment here yet: wait for the registration
            self._pending.pop(customer, None)
            self._pending[customer] = (item, self.clock())
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
            return "pending"
        self._pending.pop(customer, None)
        if self.vault.has(customer):
            try:
                if self.vault.get(customer) == (fields, salt):
                    return "duplicate"
            except VaultError:
                pass
        self.vault.put(customer, fields, salt, branch=branch, key=key)
        return "stored"

    async def _on_inventory_request(self, peer: bytes, cursor: list | None) -> None:
        entries = self.get_inventory()
        start = 0 if cursor is None else bisect.bisect_right(entries, (cursor[0], cursor[1]), key=lambda e: (e[0], e[1]))
        page = entries[start:start + INVENTORY_PAGE]
        more = start + INVENTORY_PAGE < len(entries)
        await self.send(peer, CHANNEL_VAULT, codec.encode(["inv", page, int(more)]))

    def get_inventory(self) -> list[list]:
        """[[kind, id, customer], ...] sorted, cached briefly: every record here whose customer still has a key;
        personal data only of customers registered on chain (before that a record is a draft of its branch)."""
        now = self.clock()
        if self._inventory is not None and now - self._inventory[0] < INVENTORY_TTL_S:
            return self._inventory[1]
        keyed = lambda c: not self.vault.is_erased(c)  # noqa: E731
        entries = [[KIND_CUSTOMER, c, c] for c in self.vault.list_customers()
                   if keyed(c) and self.vault.on_chain(c) is not None]
        for commitment in self.texts.list_commitments():
            try:
                customer = self.texts.read_header(commitment)[0]
            except VaultError:
                continue
            if keyed(customer):
                entries.append([KIND_TEXT, commitment, customer])
        self._inventory = (now, entries)
        return entries

    def wants(self, entry: Any) -> bool:
        """True iff this node lacks the inventory entry's record and would accept it now."""
        if not (isinstance(entry, list) and len(entry) == 3 and entry[0] in (KIND_CUSTOMER, KIND_TEXT)
                and isinstance(entry[1], bytes) and len(entry[1]) == 32
                and isinstance(entry[2], bytes) and len(entry[2]) == 32):
            return False
        kind, ident, customer = entry
        onchain = self.vault.on_chain(customer)
        if self.vault.is_erased(customer) or (onchain is not None and onchain.erased):
            return False
        if kind == KIND_CUSTOMER:  # not registered here yet (catching up): it waits in the pending set
            return not self.vault.has(ident)
        return not self.texts.has(ident) and self.is_known(customer)

    async def _on_inventory(self, peer: bytes, entries: list, more: bool) -> None:
        wanted = [[e[0], e[1]] for e in entries if self.wants(e)]
        for i in range(0, len(wanted), MAX_WANT):
            await self.send(peer, CHANNEL_VAULT, codec.encode(["want", wanted[i:i + MAX_WANT]]))
        self.counters["wanted"] += len(wanted)
        if more and entries and _is_cursor(entries[-1][:2]):
            await self.send(peer, CHANNEL_VAULT, codec.encode(["inv?", entries[-1][:2]]))

    async def _on_want(self, peer: bytes, wanted: list) -> None:
        batch: list = []
        size = 0
        for entry in wanted:
            if not _is_cursor(entry):
                continue
            item = self.make_item(peer, entry[0], entry[1])
            if item is None:
                continue
            item_size = len(item[5]) + 200
            if batch and (len(batch) >= MAX_PUSH_ITEMS or size + item_size > MAX_PUSH_BYTES):
                await self.send(peer, CHANNEL_VAULT, codec.encode(["push", batch]))
                batch, size = [], 0
            batch.append(item)
            size += item_size
        if batch:
            await self.send(peer, CHANNEL_VAULT, codec.encode(["push", batch]))

    # ---- follow commits and links ---------------------------------------------------------------------

    def on_commit(self, height: int, results: list) -> None:
        """Commit subscriber: a registration may have made a pending replica acceptable (constant time)."""
        if self._pending and self._wake is not None:
            self._wake.set()

    def forget(self, customer: bytes) -> None:
        """Drop a pending replica of an erased customer."""
        self._pending.pop(customer, None)

    def retry_pending(self) -> int:
        """Apply the pending replicas whose customer is now registered; drop expired ones; return how many stored."""
        now, stored = self.clock(), 0
        for customer, (item, arrival) in list(self._pending.items()):
            if now - arrival > PENDING_TTL_S:
                self._pending.pop(customer, None)
                self.counters["pending_expired"] += 1
            elif self.vault.on_chain(customer) is not None:
                self._pending.pop(customer, None)
                outcome = self.apply_item(item)
                self.counters[f"replica_{outcome}"] += 1
                stored += outcome == "stored"
        return stored

    async def on_link(self, peer: bytes, up: bool) -> None:
        """Link callback: a link that came up starts an anti-entropy round with that peer."""
        if up:
            await self.start_round(peer)

    async def run(self, period_s: float = PERIOD_S) -> None:
        """Retry pending replicas after commits; every ``period_s`` start a round with every connected peer."""
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        next_round = loop.time()
        while True:
            try:
                self.retry_pending()
                if loop.time() >= next_round:
                    next_round = loop.time() + period_s
                    for peer in self.connected():
                        await self.start_round(peer)
            except Exception:  # never take the node down; retry at the next wake
                log.exception("vault replication step failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.05, min(period_s, next_round - loop.time())))
            except asyncio.TimeoutError:
                pass


def _is_cursor(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and value[0] in (KIND_CUSTOMER, KIND_TEXT)
            and isinstance(value[1], bytes) and len(value[1]) == 32)


VAULT_SYNC_KEY: web.AppKey[VaultSync] = web.AppKey("vault_sync", VaultSync)
