"""The branch node's privacy vault: customers' personal data, encrypted per customer, never on chain.

Theory of operation
-------------------
Personal data (name, email, phone, ...) is a small map of str -> str. It is canonicalised as
``P([[field, value], ...])`` (fields sorted) and committed on chain only as
``commitment = H("carecoin/v1/customer-commitment", salt || data)`` with a fresh 32-byte salt, which the
``register-customer`` transaction carries. The data and the salt stay here:

- each customer's record ``P([salt, data])`` is encrypted with its **own** random 32-byte key
  (``nacl.secret.SecretBox``, XSalsa20-Poly1305);
- that key is stored wrapped (SecretBox-encrypted) by the vault **master key**: 32 bytes from the environment
  ``CARECOIN_VAULT_MASTER_KEY`` (64 hex digits or base64) or from the file node.toml's
  ``vault_master_key_file`` names (raw 32 bytes, 64 hex digits or base64; mode 0600), both outside the data
  dir, else (local networks, tests) a file ``master.key`` in the vault created 0600 on first use
  (``load_master_key``). ``master.check`` (a SecretBox of a fixed text under the master key) is written on
  first use: a vault opened with another master key is refused at start (``VaultCorrupt``), not served as
  noise;
- erasure (``erase-customer-data`` committed) deletes the customer's wrapped key: crypto-shredding. The
  ciphertext may stay (backups hold copies anyway); without the key it is noise. The on-chain commitment
  and every receipt stay valid: erasure removes the means to open the commitment, not the ledger's history.

Storage is a directory of small files beside the LevelDB files (``<data_dir>/vault``), never part of the
state or ``state_root``: ``keys/<customer hex>`` (wrapped key), ``records/<customer hex>`` (ciphertext),
``texts/<commitment hex>`` (the customer's text records, ``node.vault_texts``, under the same key) and
``erased/<customer hex>`` (a marker: this customer's key was shredded here, none is ever made again).
Files are written to a temp name, fsynced and renamed, so a crash never leaves half a key. Every
validator's vault holds every branch's customers: ``node.vault_sync`` replicates records over the validator
links (a replica goes through ``put`` and ``VaultTexts.put``, the very rules of a direct write).

Writes must agree with the chain (``on_chain`` gives the customer's on-chain record, or None): for a
customer registered on chain the write must carry the salt, and ``H(tag, salt || data)`` must equal the
on-chain commitment, otherwise it is refused (409 ``commitment_mismatch``) and the record already here stays
as it was; for a customer erased on chain (or whose key this vault already shredded) it is refused (410
``customer_erased``): their data is never stored again. Before registration staff may store and correct
data freely (a fresh salt each time unless one is given).

Requests to the vault's HTTP routes are signed by a staff key (``compute_request_digest``): the digest
binds chain id, method, path, a timestamp (accepted within ``MAX_CLOCK_SKEW_MS``) and the body hash; the
node checks the signer holds the ``staff`` role in the current state and refuses a replayed signature.

Branch scope (``node.staff_auth.verify_customer_scope``): staff read and write only records of customers of
their own branch — the branch the customer is registered in on chain, or, before registration, the branch of
the staff member who stored the record here (kept beside it in ``branches/<customer hex>``, not secret) for
reads, while such a draft may be written by staff of any branch (a squatter's draft must not block the
registering branch; ``get`` never serves a registered customer's record that does not open the on-chain
commitment); compliance and auditors read every record and write none. Anything else is 403 ``wrong_branch``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import nacl.exceptions
import nacl.secret
import nacl.utils

from ledger import codec
from ledger.errors import LedgerError
from ledger.hashing import H
from ledger.request_signing import (  # noqa: F401 - re-exported: the node checks what clients sign
    TAG_VAULT_REQUEST, compute_request_digest, compute_request_headers,
)
from node.errors import NodeError

TAG_COMMITMENT = "carecoin/v1/customer-commitment"
KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE  # 32
SALT_BYTES = 32
MAX_FIELDS = 32
MAX_FIELD_NAME = 64
MAX_FIELD_VALUE = 1024
MAX_CLOCK_SKEW_MS = 5 * 60 * 1000
MASTER_KEY_ENV = "CARECOIN_VAULT_MASTER_KEY"
_MASTER_CHECK = b"carecoin/v1/vault-master-check"
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class VaultError(NodeError):
    """A vault refusal (bad personal data, bad request signature)."""

    code = "vault_error"
    http_status = 400


class VaultUnauthorized(VaultError):
    """The request is not signed by a current staff key, is stale, or replays an earlier signature."""

    code = "vault_unauthorized"
    http_status = 403


class VaultWrongBranch(VaultUnauthorized):
    """Staff asked for the record of a customer of another branch."""

    code = "wrong_branch"
    http_status = 403


class VaultNotFound(VaultError):
    """This node's vault holds no data for the customer."""

    code = "vault_not_found"
    http_status = 404


class VaultErased(VaultError):
    """The customer's key was deleted (erasure): the data can never be decrypted again."""

    code = "customer_erased"
    http_status = 410


class VaultCommitmentMismatch(VaultError):
    """A write for a registered customer whose salt and data do not open the on-chain commitment."""

    code = "commitment_mismatch"
    http_status = 409


class VaultCorrupt(VaultError):
    """A vault file does not decrypt with the master key (tampered, or a different master key)."""

    code = "vault_corrupt"
    http_status = 500


@dataclass(frozen=True, slots=True)
class StoredCustomer:
    """What ``Vault.put`` returns: the salt and the commitment to put in ``register-customer``."""

    customer: bytes
    salt: bytes
    commitment: bytes


# --- pure helpers (a customer or auditor can recompute these) ---------------------------------------------


def compute_personal_data(fields: Mapping[str, str]) -> bytes:
    """Return the canonical bytes of personal data: ``P([[name, value], ...])`` sorted by name; raise ``VaultError``."""
    if not isinstance(fields, Mapping) or not 1 <= len(fields) <= MAX_FIELDS:
        raise VaultError(f"personal data must be an object of 1..{MAX_FIELDS} fields, got "
                         f"{len(fields) if isinstance(fields, Mapping) else type(fields).__name__}")
    pairs = []
    for name, value in sorted(fields.items()):
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
            raise VaultError(f"field name {str(name)[:40]!r}: expected lowercase letters, digits, _ (1..64)")
        if not isinstance(value, str) or len(value) > MAX_FIELD_VALUE:
            raise VaultError(f"field {name}: expected a string of at most {MAX_FIELD_VALUE} characters")
        pairs.append([name, value])
    return codec.encode(pairs)


def compute_commitment(salt: bytes, data: bytes) -> bytes:
    """Return ``H("carecoin/v1/customer-commitment", salt || data)``."""
    if len(salt) != SALT_BYTES:
        raise VaultError(f"salt is {len(salt)} bytes; expected {SALT_BYTES}")
    return H(TAG_COMMITMENT, salt + data)


# --- the vault --------------------------------------------------------------------------------------------


class Vault:
    """Per-customer encrypted personal data under ``root`` (see the module docstring).

    ``on_chain(customer)`` returns the customer's on-chain record (``ledger.customers.Customer``: ``commitment``,
    ``erased``) or None; the default (no chain: offline tools and unit tests) knows no customer.
    """

    def __init__(self, root: str | Path, on_chain: Callable[[bytes], Any] = lambda customer: None,
                 master_key: bytes | None = None) -> None:
        self.root, self.on_chain = Path(root), on_chain
        (self.root / "keys").mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.root / "records").mkdir(parents=True, exist_ok=True, mode=0o700)
        for sub in ("branches", "erased", "texts", "text-counts"):
            (self.root / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        self._master = nacl.secret.SecretBox(self._load_master() if master_key is None else master_key)
        self._check_master()

    def _check_master(self) -> None:
        """Refuse a master key other than the one this vault's keys are wrapped under (``master.check``)."""
        path = self.root / "master.check"
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            write_atomic(path, bytes(self._master.encrypt(_MASTER_CHECK)))
            return
        try:
            ok = self._master.decrypt(sealed) == _MASTER_CHECK
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            ok = False
        if not ok:
            raise VaultCorrupt(f"the vault master key does not open {path}: this vault was made under another "
                               f"master key (check {MASTER_KEY_ENV} / vault_master_key_file)")

    def _load_master(self) -> bytes:
        path = self.root / "master.key"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raw = nacl.utils.random(KEY_BYTES)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
        if len(raw) != KEY_BYTES:
            raise VaultCorrupt(f"vault master key {path} is {len(raw)} bytes; expected {KEY_BYTES}")
        if path.stat().st_mode & 0o077:
            raise VaultCorrupt(f"vault master key {path} is readable by others; expected mode 0600")
        return raw

    def _paths(self, customer: bytes) -> tuple[Path, Path]:
        if len(customer) != 32:
            raise VaultError(f"customer id is {len(customer)} bytes; expected 32")
        name = customer.hex()
        return self.root / "keys" / name, self.root / "records" / name

    def put(self, customer: bytes, fields: Mapping[str, str], salt: bytes | None = None,
            branch: str = "", key: bytes | None = None) -> StoredCustomer:
        """Encrypt and store a customer's personal data under their key; return salt and commitment.

        Before ``register-customer`` commits, storing again replaces the data (a new salt unless ``salt`` is
        given): staff may correct a typo. Once registered, the write must carry the ``salt`` and
        data that open the on-chain commitment (``VaultCommitmentMismatch``, nothing written); an erased
        customer is refused (``VaultErased``). ``branch`` is the storing staff member's branch: it scopes the
        record until the customer is registered on chain (``get_branch``).
        """
        _, record_path = self._paths(customer)
        onchain = self.on_chain(customer)
        if self.is_erased(customer) or (onchain is not None and onchain.erased):
            raise VaultErased(f"customer {customer.hex()[:16]}… was erased; their data is never stored again")
        data = compute_personal_data(fields)
        if onchain is not None and salt is None:
            raise VaultCommitmentMismatch(
                f"customer {customer.hex()[:16]}… is registered on chain with commitment "
                f"{onchain.commitment.hex()[:16]}…; expected the salt and data that open it, got no salt")
        salt = nacl.utils.random(SALT_BYTES) if salt is None else salt
        commitment = compute_commitment(salt, data)
        if onchain is not None and commitment != onchain.commitment:
            raise VaultCommitmentMismatch(
                f"salt and data commit to {commitment.hex()[:16]}…; customer {customer.hex()[:16]}… is "
                f"registered on chain with {onchain.commitment.hex()[:16]}…: the record here stays as it was")
        record = self.box(customer, create=True, key=key).encrypt(codec.encode([salt, data]))
        write_atomic(record_path, bytes(record))
        if branch:
            write_atomic(self.root / "branches" / customer.hex(), branch.encode())
        return StoredCustomer(customer, salt, commitment)

    def box(self, customer: bytes, *, create: bool = False, key: bytes | None = None) -> nacl.secret.SecretBox:
        """The customer's own SecretBox (their key, unwrapped by the master key).

        With ``create``, a customer without a key gets a fresh one (stored wrapped) unless they were erased
        (``VaultErased``); without it, a missing key is ``VaultErased`` (a record exists only beside a key, so
        a record without one was shredded). Personal data and text records share this one key: deleting it
        destroys both. ``key`` (replication) is the key to adopt when one is created, instead of a random one.
        """
        try:
            return nacl.secret.SecretBox(self.get_key(customer))
        except VaultErased:
            if not create or self.is_erased(customer):
                raise
        key = nacl.utils.random(KEY_BYTES) if key is None else key
        if len(key) != KEY_BYTES:
            raise VaultError(f"customer key is {len(key)} bytes; expected {KEY_BYTES}")
        write_atomic(self._paths(customer)[0], bytes(self._master.encrypt(key)))
        return nacl.secret.SecretBox(key)

    def get_key(self, customer: bytes) -> bytes:
        """The customer's key, unwrapped (replication seals it to a peer); ``VaultErased`` when there is none."""
        key_path, _ = self._paths(customer)
        try:
            wrapped = key_path.read_bytes()
        except FileNotFoundError:
            raise VaultErased(f"customer {customer.hex()[:16]}…'s key was deleted (data erased); "
                              "the data cannot be decrypted") from None
        try:
            return self._master.decrypt(wrapped)
        except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
            raise VaultCorrupt(f"the key of customer {customer.hex()[:16]}… does not decrypt with the master "
                               f"key: {type(exc).__name__}") from None

    def list_customers(self) -> list[bytes]:
        """The customers whose personal data is stored here (erased or not), sorted."""
        return sorted(bytes.fromhex(p.name) for p in (self.root / "records").iterdir() if len(p.name) == 64)

    def read_record(self, customer: bytes) -> bytes:
        """The stored ciphertext of ``customer``'s personal data (under their key); ``VaultNotFound``."""
        try:
            return self._paths(customer)[1].read_bytes()
        except FileNotFoundError:
            raise VaultNotFound(f"this node's vault holds no data for customer {customer.hex()[:16]}…") from None

    def get_branch(self, customer: bytes) -> str | None:
        """The branch whose staff last stored ``customer``'s record here (None: none stored, or unknown)."""
        self._paths(customer)
        try:
            return (self.root / "branches" / customer.hex()).read_bytes().decode("utf-8", "replace") or None
        except FileNotFoundError:
            return None

    def get(self, customer: bytes) -> tuple[dict[str, str], bytes]:
        """Return (fields, salt) of a customer; raise ``VaultNotFound``, ``VaultErased`` or ``VaultCorrupt``."""
        key_path, record_path = self._paths(customer)
        if not record_path.exists():
            raise VaultNotFound(f"this node's vault holds no data for customer {customer.hex()[:16]}…")
        if not key_path.exists():
            raise VaultErased(f"customer {customer.hex()[:16]}…'s key was deleted (data erased); "
                              "the data cannot be decrypted")
        box = self.box(customer)
        try:
            plain = box.decrypt(record_path.read_bytes())
            salt, data = codec.decode(plain)
            pairs = codec.decode(data)
        except (nacl.exceptions.CryptoError, LedgerError, ValueError, TypeError) as exc:
            raise VaultCorrupt(f"vault data of customer {customer.hex()[:16]}… does not decrypt: "
                               f"{type(exc).__name__}") from None
        onchain = self.on_chain(customer)
        if onchain is not None and compute_commitment(salt, data) != onchain.commitment:
            # A draft stored before registration that the registration did not commit to (another branch's,
            # or replaced since): never served as the customer's data.
            raise VaultNotFound(f"the record of customer {customer.hex()[:16]}… here does not open the on-chain "
                                f"commitment {onchain.commitment.hex()[:16]}…; store it again with the salt and "
                                "data the registration committed to")
        return {name: value for name, value in pairs}, salt

    def has(self, customer: bytes) -> bool:
        """True iff this vault stored data for ``customer`` (erased or not)."""
        return self._paths(customer)[1].exists()

    def is_erased(self, customer: bytes) -> bool:
        """True iff the customer's key was deleted here (their data, or texts, are here but the key is gone)."""
        key_path, record_path = self._paths(customer)
        if key_path.exists():
            return False
        return record_path.exists() or (self.root / "erased" / customer.hex()).exists()

    def erase(self, customer: bytes) -> bool:
        """Delete the customer's wrapped key (overwritten first); return True if a key was deleted.

        A marker ``erased/<customer hex>`` is left (not secret) so that no key is ever created for them again,
        even when this vault held only text records of theirs, or nothing (a replica offered later is refused).
        """
        key_path, _ = self._paths(customer)
        write_atomic(self.root / "erased" / customer.hex(), b"")
        try:
            size = key_path.stat().st_size
        except FileNotFoundError:
            return False
        with open(key_path, "r+b") as f:  # overwrite before unlinking: no plain copy left in the file's blocks
            f.write(b"\x00" * size)
            f.flush()
            os.fsync(f.fileno())
        key_path.unlink()
        fsync_dir(key_path.parent)
        return True


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file (fsync, rename, fsync the dir): never half written."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


