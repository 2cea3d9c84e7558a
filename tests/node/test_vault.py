"""The privacy vault: per-customer encryption, the commitment, crypto-shredding, the staff request digest, and
the branch scope of staff (their own branch's customers only; compliance and auditors read all)."""

from __future__ import annotations

import os
import stat

import pytest

from ledger import codec
from ledger.customers import Customer, get_customer
from ledger.hashing import H
from ledger.keys import KeyPair
from node import replay_guard, staff_auth
from node.staff_auth import REPLAY_WINDOW_MS, ReplayGuardFull, StaffGuard, verify_customer_scope
from node.vault import (
    MAX_CLOCK_SKEW_MS, TAG_COMMITMENT, Vault, VaultCommitmentMismatch, VaultCorrupt, VaultErased, VaultError,
    VaultNotFound, VaultUnauthorized, VaultWrongBranch, compute_commitment, compute_personal_data,
    compute_request_digest, compute_request_headers,
)
from tests.ledger.governance_world import ADMINS, STAFF_1, STAFF_1B, STAFF_2
from tests.node.local_chain import CHAIN, LocalChain
from tests.node.test_reads import GovChain
from tests.strategies import CHAIN_ID

ALICE = bytes(range(32))
BOB = bytes(range(1, 33))
DATA = {"name": "Alice Martin", "email": "alice@example.org", "phone": "+33 6 12 34 56 78"}


def test_put_returns_a_commitment_to_salt_and_canonical_data_that_anyone_can_recompute(tmp_path):
    stored = Vault(tmp_path).put(ALICE, DATA)
    data = codec.encode(sorted([k, v] for k, v in DATA.items()))
    assert stored.commitment == H(TAG_COMMITMENT, stored.salt + data)
    assert stored.commitment == compute_commitment(stored.salt, compute_personal_data(DATA))
    assert len(stored.salt) == 32


def test_get_decrypts_the_data_and_salt_from_a_reopened_vault(tmp_path):
    stored = Vault(tmp_path).put(ALICE, DATA)
    fields, salt = Vault(tmp_path).get(ALICE)
    assert fields == DATA and salt == stored.salt


def test_no_personal_data_is_readable_in_the_vault_files(tmp_path):
    Vault(tmp_path).put(ALICE, DATA)
    blob = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for value in DATA.values():
        assert value.encode() not in blob


def test_each_customer_has_their_own_key(tmp_path):
    vault = Vault(tmp_path)
    vault.put(ALICE, DATA)
    vault.put(BOB, DATA)
    assert (tmp_path / "keys" / ALICE.hex()).read_bytes() != (tmp_path / "keys" / BOB.hex()).read_bytes()
    assert vault.erase(ALICE)
    assert vault.get(BOB)[0] == DATA  # erasing one customer leaves the other readable


def test_master_key_is_created_owner_only(tmp_path):
    Vault(tmp_path)
    mode = stat.S_IMODE((tmp_path / "master.key").stat().st_mode)
    assert mode == 0o600


def test_a_master_key_readable_by_others_is_refused(tmp_path):
    Vault(tmp_path)
    os.chmod(tmp_path / "master.key", 0o644)
    with pytest.raises(VaultCorrupt, match="readable by others"):
        Vault(tmp_path)


def test_erase_deletes_the_key_and_the_data_can_never_be_decrypted_again(tmp_path):
    vault = Vault(tmp_path)
    vault.put(ALICE, DATA)
    assert vault.erase(ALICE) is True
    assert not (tmp_path / "keys" / ALICE.hex()).exists()
    assert (tmp_path / "records" / ALICE.hex()).exists()  # the ciphertext may stay: it is noise now
    with pytest.raises(VaultErased):
        Vault(tmp_path).get(ALICE)
    assert vault.is_erased(ALICE)
    assert vault.erase(ALICE) is False  # idempotent
    with pytest.raises(VaultErased):
        vault.put(ALICE, DATA)  # an erased customer's data is never stored again


def test_unknown_customer_is_not_found(tmp_path):
    with pytest.raises(VaultNotFound):
        Vault(tmp_path).get(ALICE)


def test_a_different_master_key_cannot_open_the_data(tmp_path):
    Vault(tmp_path).put(ALICE, DATA)
    (tmp_path / "master.key").write_bytes(os.urandom(32))
    with pytest.raises(VaultCorrupt, match="another master key"):
        Vault(tmp_path)  # refused at start, not served as noise
    (tmp_path / "master.check").unlink()  # even without the check file, the data does not open
    with pytest.raises(VaultCorrupt, match="does not decrypt"):
        Vault(tmp_path).get(ALICE)


@pytest.mark.parametrize("fields, needle", [
    ({}, "1..32 fields"),
    ({"Name": "x"}, "field name"),
    ({"name": 5}, "expected a string"),
    ({"name": "x" * 1025}, "at most 1024"),
])
def test_malformed_personal_data_is_refused(tmp_path, fields, needle):
    with pytest.raises(VaultError, match=needle):
        Vault(tmp_path).put(ALICE, fields)


def test_request_digest_binds_chain_method_path_time_and_body():
    base = compute_request_digest("c", "POST", "/v1/vault/customers", 1, b"{}")
    assert base != compute_request_digest("d", "POST", "/v1/vault/customers", 1, b"{}")
    assert base != compute_request_digest("c", "GET", "/v1/vault/customers", 1, b"{}")
    assert base != compute_request_digest("c", "POST", "/v1/vault/customers/x", 1, b"{}")
    assert base != compute_request_digest("c", "POST", "/v1/vault/customers", 2, b"{}")
    assert base != compute_request_digest("c", "POST", "/v1/vault/customers", 1, b"{ }")


# ---- writes must agree with the chain ---------------------------------------------------------------------

class OnChain:
    """A stand-in for the store's customer records: ``on_chain(customer)`` as the node gives it to the vault."""

    def __init__(self) -> None:
        self.records: dict[bytes, Customer] = {}

    def register(self, customer: bytes, commitment: bytes, erased: bool = False) -> None:
        self.records[customer] = Customer(customer, 1, commitment, b"\x01" * 32, "branch-1", 1, 5 if erased else 0)

    def __call__(self, customer: bytes) -> Customer | None:
        return self.records.get(customer)


def registered_vault(tmp_path) -> tuple[Vault, OnChain, bytes]:
    chain = OnChain()
    vault = Vault(tmp_path, on_chain=chain)
    stored = vault.put(ALICE, DATA)
    chain.register(ALICE, stored.commitment)
    return vault, chain, stored.salt


def test_staff_cannot_overwrite_a_registered_customers_record_with_data_that_no_longer_matches_the_chain(tmp_path):
    vault, _, salt = registered_vault(tmp_path)
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(VaultCommitmentMismatch, match="stays as it was") as refused:
        vault.put(ALICE, {**DATA, "name": "Mallory"}, salt)
    assert refused.value.http_status == 409
    with pytest.raises(VaultCommitmentMismatch, match="got no salt"):
        vault.put(ALICE, {**DATA, "name": "Mallory"})
    with pytest.raises(VaultCommitmentMismatch):
        vault.put(ALICE, DATA, bytes(32))  # the right data under another salt opens another commitment
    assert vault.get(ALICE) == (DATA, salt)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == files  # not one byte written


def test_a_registered_customers_record_can_be_stored_again_with_the_salt_and_data_that_open_the_commitment(tmp_path):
    vault, chain, salt = registered_vault(tmp_path)
    again = vault.put(ALICE, dict(reversed(DATA.items())), salt)
    assert again.commitment == chain(ALICE).commitment and again.salt == salt
    assert vault.get(ALICE) == (DATA, salt)


def test_a_draft_replaced_before_registration_is_never_served_as_the_registered_customers_data(tmp_path):
    chain = OnChain()
    vault = Vault(tmp_path, on_chain=chain)
    real = vault.put(ALICE, DATA)  # the registering branch's draft: its commitment goes on chain
    vault.put(ALICE, {**DATA, "name": "Mallory"})  # another branch replaces the draft before registration
    chain.register(ALICE, real.commitment)
    with pytest.raises(VaultNotFound, match="does not open the on-chain commitment"):
        vault.get(ALICE)
    vault.put(ALICE, DATA, real.salt)  # the registering branch stores it again: served
    assert vault.get(ALICE) == (DATA, real.salt)


def test_staff_cannot_store_data_for_a_customer_erased_on_chain_even_where_the_vault_never_held_them(tmp_path):
    chain = OnChain()
    salt = bytes(range(32))
    chain.register(BOB, compute_commitment(salt, compute_personal_data(DATA)), erased=True)
    vault = Vault(tmp_path, on_chain=chain)
    with pytest.raises(VaultErased) as refused:
        vault.put(BOB, DATA, salt)  # even the data that opens the commitment
    assert refused.value.http_status == 410
    assert not vault.has(BOB)


def test_before_registration_staff_may_correct_the_data_and_may_choose_the_salt(tmp_path):
    vault = Vault(tmp_path, on_chain=OnChain())
    vault.put(ALICE, {"name": "Alice Matrin"})
    salt = bytes(range(32))
    stored = vault.put(ALICE, DATA, salt)
    assert stored.salt == salt and vault.get(ALICE) == (DATA, salt)


# ---- the replay guard survives a restart --------------------------------------------------------------------

T0 = 1_800_000_000_000
PATH = "/v1/vault/customers/" + ALICE.hex()


@pytest.fixture
def staff_chain(tmp_path):
    c = LocalChain(tmp_path / "db")
    yield c
    c.store.close()


def make_guard(c: LocalChain, tmp_path, now: list[int]) -> StaffGuard:
    return StaffGuard(c.store, CHAIN, replay_file=tmp_path / "seen-requests", clock_ms=lambda: now[0])


def signed_get(c: LocalChain, stamp: int) -> dict[str, str]:
    return compute_request_headers(c.staff, CHAIN, "GET", PATH, b"", stamp)


def test_a_request_accepted_before_a_restart_is_refused_after_it(staff_chain, tmp_path):
    now = [T0]
    headers = signed_get(staff_chain, T0)
    assert make_guard(staff_chain, tmp_path, now).verify("GET", PATH, headers, b"") == staff_chain.staff.public_key
    now[0] += 1000
    with pytest.raises(VaultUnauthorized, match="already used"):
        make_guard(staff_chain, tmp_path, now).verify("GET", PATH, headers, b"")


def test_remembered_requests_age_out_after_the_clock_skew_window(staff_chain, tmp_path):
    now = [T0]
    guard = make_guard(staff_chain, tmp_path, now)
    guard.verify("GET", PATH, signed_get(staff_chain, T0), b"")
    now[0] = T0 + REPLAY_WINDOW_MS + 1
    guard.verify("GET", PATH, signed_get(staff_chain, now[0]), b"")  # the first one is forgotten here
    restarted = make_guard(staff_chain, tmp_path, now)  # what the file holds, read back
    assert [stamp for stamp, _, _ in restarted.replay._seen.values()] == [now[0]]


def test_an_unreadable_replay_file_refuses_every_request_that_could_have_been_accepted_before(staff_chain, tmp_path):
    (tmp_path / "seen-requests").write_bytes(b"\xc1garbage")
    now = [T0]
    guard = make_guard(staff_chain, tmp_path, now)
    with pytest.raises(VaultUnauthorized, match="unreadable"):
        guard.verify("GET", PATH, signed_get(staff_chain, T0 + MAX_CLOCK_SKEW_MS), b"")
    now[0] = T0 + MAX_CLOCK_SKEW_MS + 1
    assert guard.verify("GET", PATH, signed_get(staff_chain, now[0]), b"") == staff_chain.staff.public_key


def test_a_full_replay_guard_refuses_new_requests_instead_of_forgetting_recent_ones(staff_chain, tmp_path, monkeypatch):
    monkeypatch.setattr(replay_guard, "MAX_SEEN_REQUESTS", 2)
    now = [T0]
    guard = make_guard(staff_chain, tmp_path, now)
    first = signed_get(staff_chain, T0)
    guard.verify("GET", PATH, first, b"")
    guard.verify("GET", PATH, signed_get(staff_chain, T0 + 1), b"")
    with pytest.raises(ReplayGuardFull) as refused:
        guard.verify("GET", PATH, signed_get(staff_chain, T0 + 2), b"")
    assert refused.value.http_status == 503
    with pytest.raises(VaultUnauthorized, match="already used"):
        guard.verify("GET", PATH, first, b"")


def test_one_signer_flooding_the_guard_is_held_to_its_own_quota_and_staff_still_get_in(staff_chain, tmp_path,
                                                                                     monkeypatch):
    monkeypatch.setattr(replay_guard, "MAX_SEEN_PER_SIGNER", 3)
    now = [T0]
    guard = make_guard(staff_chain, tmp_path, now)
    flooder = b"\x07" * 32
    for i in range(3):
        guard.remember(bytes([i]) * 32, T0, T0, signer=flooder, privileged=False)
    with pytest.raises(staff_auth.TooManySignedRequests) as refused:
        guard.remember(b"\x09" * 32, T0, T0, signer=flooder, privileged=False)
    assert refused.value.http_status == 429 and "at most 3" in str(refused.value)
    assert guard.verify("GET", PATH, signed_get(staff_chain, T0), b"") == staff_chain.staff.public_key
    # the quota frees up once the flooder's requests leave the replay window, and survives a restart meanwhile
    restarted = make_guard(staff_chain, tmp_path, now)
    with pytest.raises(staff_auth.TooManySignedRequests):
        restarted.remember(b"\x0a" * 32, T0, T0, signer=flooder, privileged=False)
    now[0] = T0 + REPLAY_WINDOW_MS + 1
    restarted.remember(b"\x0b" * 32, now[0], now[0], signer=flooder, privileged=False)


def test_accounts_without_a_vault_role_together_cannot_take_the_slots_staff_need(staff_chain, tmp_path, monkeypatch):
    monkeypatch.setattr(replay_guard, "MAX_SEEN_UNPRIVILEGED", 4)
    now = [T0]
    guard = make_guard(staff_chain, tmp_path, now)
    for i in range(4):  # four different fresh keys, one request each
        guard.remember(bytes([i]) * 32, T0, T0, signer=bytes([100 + i]) * 32, privileged=False)
    with pytest.raises(staff_auth.TooManySignedRequests, match="without a vault role"):
        guard.remember(b"\x55" * 32, T0, T0, signer=b"\x66" * 32, privileged=False)
    assert guard.verify("GET", PATH, signed_get(staff_chain, T0), b"") == staff_chain.staff.public_key


# --- branch scope: staff touch only their own branch's customers; compliance and auditors read all -------------

OFFICER, AUDITOR = KeyPair.generate(), KeyPair.generate()


def govern(g: GovChain, pid: str, account: bytes, role: str) -> None:
    """Grant a company-wide role by a quorum of three branches."""
    results = g.block((ADMINS[0], "propose-grant-role", [pid, account, role, ""]),
                      (ADMINS[1], "approve-proposal", [pid]), (ADMINS[2], "approve-proposal", [pid]))
    assert all(r.status == 0 for r in results), results


@pytest.fixture
def branches(tmp_path):
    """Four branches; Alice's data stored by branch-1 staff and Alice registered in branch-1 on chain."""
    g = GovChain(tmp_path / "db")
    vault = Vault(tmp_path / "vault", on_chain=lambda c: get_customer(g.store, c))
    stored = vault.put(ALICE, DATA, branch="branch-1")
    results = g.block((STAFF_1, "register-customer", [ALICE, 1, stored.commitment]))
    assert results[0].status == 0 and get_customer(g.store, ALICE).branch == "branch-1"
    g.vault, g.stored = vault, stored
    yield g
    g.store.close()


def test_staff_of_another_branch_can_neither_read_nor_write_a_customers_record(branches):
    g = branches
    for write in (False, True):
        with pytest.raises(VaultWrongBranch, match="registered in branch 'branch-1'; staff of branch 'branch-2'") \
                as refused:
            verify_customer_scope(g.store, STAFF_2.public_key, ALICE, g.vault, write=write)
        assert refused.value.http_status == 403 and refused.value.code == "wrong_branch"


def test_staff_of_the_customers_branch_read_and_write_it(branches):
    g = branches
    for staff in (STAFF_1, STAFF_1B):
        verify_customer_scope(g.store, staff.public_key, ALICE, g.vault, write=False)
        verify_customer_scope(g.store, staff.public_key, ALICE, g.vault, write=True)
    assert g.vault.get(ALICE) == (DATA, g.stored.salt)


def test_compliance_and_auditors_read_every_record_once_they_hold_the_role_but_write_none(branches):
    g = branches
    with pytest.raises(VaultWrongBranch):  # no such role held yet: nobody outside branch-1 reads Alice
        verify_customer_scope(g.store, AUDITOR.public_key, ALICE, g.vault, write=False)
    govern(g, "officer", OFFICER.public_key, "compliance")
    govern(g, "auditor", AUDITOR.public_key, "auditor")
    for reader in (OFFICER, AUDITOR):
        verify_customer_scope(g.store, reader.public_key, ALICE, g.vault, write=False)
        with pytest.raises(VaultWrongBranch):
            verify_customer_scope(g.store, reader.public_key, ALICE, g.vault, write=True)


def test_the_guard_lets_compliance_and_auditors_sign_reads_but_not_writes(branches, tmp_path):
    g = branches
    govern(g, "auditor", AUDITOR.public_key, "auditor")
    now = [T0]
    guard = StaffGuard(g.store, CHAIN_ID, clock_ms=lambda: now[0])
    headers = compute_request_headers(AUDITOR, CHAIN_ID, "GET", PATH, b"", T0)
    assert guard.verify("GET", PATH, headers, b"") == AUDITOR.public_key
    body = b'{"customer": "00"}'
    headers = compute_request_headers(AUDITOR, CHAIN_ID, "POST", "/v1/vault/customers", body, T0 + 1)
    with pytest.raises(VaultUnauthorized, match="does not hold the 'staff' role"):
        guard.verify("POST", "/v1/vault/customers", headers, body)
    headers = compute_request_headers(OFFICER, CHAIN_ID, "GET", PATH, b"", T0 + 2)  # not granted here
    with pytest.raises(VaultUnauthorized, match=r"nor, to read, 'compliance' or 'auditor'"):
        guard.verify("GET", PATH, headers, b"")


def test_before_registration_a_record_belongs_to_the_branch_that_stored_it(branches):
    g = branches
    g.vault.put(BOB, DATA, branch="branch-1")
    assert g.vault.get_branch(BOB) == "branch-1"
    with pytest.raises(VaultWrongBranch, match="stored by staff of branch 'branch-1'"):
        verify_customer_scope(g.store, STAFF_2.public_key, BOB, g.vault, write=False)
    # Writing a draft is any branch's (a squatter's draft must not block the registering branch); what a
    # registered customer's record must open is decided on chain (Vault.get / Vault.put).
    verify_customer_scope(g.store, STAFF_2.public_key, BOB, g.vault, write=True)
    verify_customer_scope(g.store, STAFF_1B.public_key, BOB, g.vault, write=True)
    nobody = bytes(range(2, 34))  # a customer no branch holds yet: any staff member may store the first record
    assert g.vault.get_branch(nobody) is None
    verify_customer_scope(g.store, STAFF_2.public_key, nobody, g.vault, write=True)
