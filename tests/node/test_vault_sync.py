"""Vault replication between validators (``node.vault_sync``), in memory: records reach every vault encrypted
per customer, and a forged or late replica never changes a record nor resurrects an erased customer."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import nacl.secret
import pytest

from ledger import codec
from ledger.commitments import compute_text_commitment
from ledger.keys import KeyPair
from node import vault_sync
from node.vault import Vault, VaultErased, compute_commitment, compute_personal_data
from node.vault_sync import CHANNEL_VAULT, KIND_CUSTOMER, KIND_TEXT, VaultSync, seal_key
from node.vault_texts import TextRecord, VaultTexts

ALICE = bytes(range(32))
DATA = {"name": "Alice Example", "email": "alice@example.org"}


class Net:
    """Validators with a vault each, their ``vault`` frames delivered in memory, one chain for all."""

    def __init__(self, tmp_path, count: int = 3) -> None:
        self.chain: dict[bytes, SimpleNamespace] = {}
        self.keys = [KeyPair.generate() for _ in range(count)]
        self.up = set(range(count))
        self.frames: list[tuple[int, int, bytes]] = []
        self.vaults = [Vault(tmp_path / f"v{i}", on_chain=self.chain.get) for i in range(count)]
        self.syncs = [VaultSync(v, k, self._sender(i), self._connected(i))
                      for i, (v, k) in enumerate(zip(self.vaults, self.keys))]

    def _index(self, key: bytes) -> int:
        return [k.public_key for k in self.keys].index(key)

    def _sender(self, i: int):
        async def send(peer: bytes, channel: str, payload: bytes) -> bool:
            assert channel == CHANNEL_VAULT
            j = self._index(peer)
            if i not in self.up or j not in self.up:
                return False
            self.frames.append((i, j, payload))
            return True
        return send

    def _connected(self, i: int):
        return lambda: [k.public_key for j, k in enumerate(self.keys) if j != i and j in self.up and i in self.up]

    async def deliver(self, max_frames: int = 10_000) -> int:
        """Deliver queued frames (and those they cause) until none is left; bounded."""
        done = 0
        while self.frames and done < max_frames:
            i, j, payload = self.frames.pop(0)
            await self.syncs[j].on_frame(self.keys[i].public_key, payload)
            done += 1
        assert not self.frames, "frames still flowing after the bound"
        return done

    def register(self, customer: bytes, commitment: bytes) -> None:
        self.chain[customer] = SimpleNamespace(commitment=commitment, erased=False, branch="b1")


def run(coro):
    return asyncio.run(coro)


def store_registered(net: Net, at: int = 0) -> bytes:
    stored = net.vaults[at].put(ALICE, DATA, branch="b1")
    net.register(ALICE, stored.commitment)
    return stored.salt


def test_personal_data_reaches_every_validator_and_each_wraps_the_key_under_its_own_master(tmp_path):
    net = Net(tmp_path)
    salt = store_registered(net)
    async def go():
        assert await net.syncs[0].push(KIND_CUSTOMER, ALICE) == 2
        await net.deliver()
    run(go())
    for v in net.vaults[1:]:
        assert v.get(ALICE) == (DATA, salt)
    # each node wraps the customer key under its own master key: the wrapped files differ
    wrapped = {(v.root / "keys" / ALICE.hex()).read_bytes() for v in net.vaults}
    assert len(wrapped) == 3


def test_a_replica_before_registration_waits_and_is_stored_once_the_commitment_is_on_chain(tmp_path):
    net = Net(tmp_path)
    stored = net.vaults[0].put(ALICE, DATA, branch="b1")
    run(net.syncs[0].push(KIND_CUSTOMER, ALICE))
    run(net.deliver())
    assert not net.vaults[1].has(ALICE) and net.syncs[1].counters["replica_pending"] == 1
    net.register(ALICE, stored.commitment)
    assert net.syncs[1].retry_pending() == 1
    assert net.vaults[1].get(ALICE) == (DATA, stored.salt)


def test_attacker_validator_cannot_open_a_key_sealed_to_another_validator(tmp_path):
    net = Net(tmp_path)
    store_registered(net)
    item_for_1 = net.syncs[0].make_item(net.keys[1].public_key, KIND_CUSTOMER, ALICE)
    assert net.syncs[2].apply_item(item_for_1) == "replica_refused"
    assert not net.vaults[2].has(ALICE)
    # and the frame carries nothing readable: no field value appears in it
    frame = codec.encode(["push", [item_for_1]])
    assert b"alice@example.org" not in frame and b"Alice Example" not in frame


def test_forged_replica_with_data_that_does_not_open_the_commitment_is_refused_and_the_record_unchanged(tmp_path):
    net = Net(tmp_path)
    salt = store_registered(net)
    run(net.syncs[0].push(KIND_CUSTOMER, ALICE))
    run(net.deliver())
    # a validator forges a record with other data under a key of its own, sealed properly to node 1
    forged_key = bytes(32)
    forged = nacl.secret.SecretBox(forged_key).encrypt(codec.encode([salt, compute_personal_data({"name": "Mallory"})]))
    item = [KIND_CUSTOMER, ALICE, ALICE, bytes(seal_key(net.keys[1].public_key, forged_key)), "b1", bytes(forged)]
    assert net.syncs[1].apply_item(item) == "commitment_mismatch"
    assert net.vaults[1].get(ALICE) == (DATA, salt)


def test_forged_replica_for_a_customer_erased_on_chain_is_refused_and_nothing_is_stored(tmp_path):
    net = Net(tmp_path)
    store_registered(net)
    item = net.syncs[0].make_item(net.keys[1].public_key, KIND_CUSTOMER, ALICE)
    net.chain[ALICE].erased = True
    assert net.syncs[1].apply_item(item) == "customer_erased"
    assert not net.vaults[1].has(ALICE)
    assert not (net.vaults[1].root / "keys" / ALICE.hex()).exists()  # no key was made for them either


def test_a_peer_offering_a_record_after_the_customer_was_shredded_here_is_refused(tmp_path):
    net = Net(tmp_path)
    salt = store_registered(net)
    run(net.syncs[0].push(KIND_CUSTOMER, ALICE))
    run(net.deliver())
    offer = net.syncs[0].make_item(net.keys[1].public_key, KIND_CUSTOMER, ALICE)
    assert net.vaults[1].erase(ALICE)  # node 1's erasure follower shredded the key
    assert net.syncs[1].apply_item(offer) == "customer_erased"
    with pytest.raises(VaultErased):
        net.vaults[1].get(ALICE)
    assert salt  # node 0 (not erased yet) still holds it; node 1 never gets it back


def test_an_erased_customer_is_never_offered_in_the_inventory(tmp_path):
    net = Net(tmp_path)
    store_registered(net)
    assert [e[0] for e in net.syncs[0].get_inventory()] == [KIND_CUSTOMER]
    net.vaults[0].erase(ALICE)
    net.syncs[0]._inventory = None
    assert net.syncs[0].get_inventory() == []
    assert net.syncs[0].make_item(net.keys[1].public_key, KIND_CUSTOMER, ALICE) is None


def test_a_text_written_at_one_branch_is_readable_at_another_and_a_forged_text_is_refused(tmp_path):
    net = Net(tmp_path)
    store_registered(net)
    salt = bytes([7]) * 32
    text = "the parcel arrived damaged"
    commitment = compute_text_commitment(salt, text)
    VaultTexts(net.vaults[1]).put(TextRecord(commitment, ALICE, "ticket_message", salt, text, "ticket", "T1"))
    run(net.syncs[1].push(KIND_TEXT, commitment))
    run(net.deliver())
    got = VaultTexts(net.vaults[2]).get(commitment)
    assert (got.text, got.about_kind, got.about_id) == (text, "ticket", "T1")
    # a forged text whose salt and text do not open its commitment is refused
    other = compute_text_commitment(bytes([8]) * 32, "something else")
    key = bytes(32)
    body = nacl.secret.SecretBox(key).encrypt(codec.encode(["memo", salt, b"a lie"]))
    item = [KIND_TEXT, other, ALICE, bytes(seal_key(net.keys[0].public_key, key)), ["", ""], bytes(body)]
    assert net.syncs[0].apply_item(item) == "commitment_mismatch"
    assert not VaultTexts(net.vaults[0]).has(other)


def test_attacker_validator_cannot_fill_a_vault_with_texts_of_accounts_that_do_not_exist(tmp_path):
    net = Net(tmp_path)
    stranger = bytes([9]) * 32
    net.syncs[1].is_known = lambda account: account != stranger
    faults = []
    net.syncs[1].on_fault = faults.append
    salt, text = bytes([5]) * 32, "spam"
    commitment = compute_text_commitment(salt, text)
    key = bytes(32)
    body = nacl.secret.SecretBox(key).encrypt(codec.encode(["memo", salt, text.encode()]))
    item = [KIND_TEXT, commitment, stranger, bytes(seal_key(net.keys[1].public_key, key)), ["", ""], bytes(body)]
    run(net.syncs[1].on_frame(net.keys[0].public_key, codec.encode(["push", [item]])))
    assert not VaultTexts(net.vaults[1]).has(commitment)
    assert faults == ["vault_replica_refused"]
    assert not net.syncs[1].wants([KIND_TEXT, commitment, stranger])


def test_a_node_that_was_down_gets_every_record_by_anti_entropy_in_bounded_pages(tmp_path, monkeypatch):
    monkeypatch.setattr(vault_sync, "INVENTORY_PAGE", 3)
    monkeypatch.setattr(vault_sync, "MAX_WANT", 2)
    net = Net(tmp_path)
    net.up.discard(2)
    customers = [bytes([i]) * 32 for i in range(1, 8)]
    for c in customers:
        stored = net.vaults[0].put(c, {"name": f"n{c[0]}"}, branch="b1")
        net.register(c, stored.commitment)
        run(net.syncs[0].push(KIND_CUSTOMER, c))
    run(net.deliver())
    assert all(net.vaults[1].has(c) for c in customers) and not any(net.vaults[2].has(c) for c in customers)
    net.up.add(2)
    run(net.syncs[2].on_link(net.keys[1].public_key, True))
    frames = run(net.deliver())
    assert all(net.vaults[2].get(c)[0] == {"name": f"n{c[0]}"} for c in customers)
    assert frames <= 20  # pages of 3, wants of 2, pushes: bounded, not one frame per byte
    # a second round finds nothing to want
    net.syncs[1]._inventory = None
    run(net.syncs[2].on_link(net.keys[1].public_key, True))
    run(net.deliver())
    assert net.syncs[2].counters["wanted"] == len(customers)


def test_a_malformed_vault_frame_is_counted_and_dropped(tmp_path):
    net = Net(tmp_path)
    run(net.syncs[1].on_frame(net.keys[0].public_key, b"\xc1garbage"))
    run(net.syncs[1].on_frame(net.keys[0].public_key, codec.encode(["push", [[1, 2, 3]]])))
    assert net.syncs[1].counters["bad_frames"] == 1
    assert net.syncs[1].counters["replica_replica_refused"] == 1


def test_a_draft_is_never_offered_and_a_receiver_behind_the_registration_holds_the_replica_until_it_catches_up(
        tmp_path):
    net = Net(tmp_path)
    stored = net.vaults[0].put(ALICE, DATA, branch="b1")
    assert net.syncs[0].get_inventory() == []  # not registered: a draft of branch 1, offered to nobody
    net.register(ALICE, stored.commitment)
    net.syncs[0]._inventory = None
    # node 1 has not caught up to the registration yet: it still wants the record, and holds it pending
    behind = dict(net.chain)
    net.vaults[1].on_chain = lambda c: None
    run(net.syncs[1].on_link(net.keys[0].public_key, True))
    run(net.deliver())
    assert not net.vaults[1].has(ALICE) and net.syncs[1].counters["replica_pending"] == 1
    net.vaults[1].on_chain = behind.get  # the registration block is committed here
    assert net.syncs[1].retry_pending() == 1
    assert net.vaults[1].get(ALICE) == (DATA, stored.salt)
