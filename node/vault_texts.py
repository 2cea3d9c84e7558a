"""Text records in the vault: the ticket messages, responses, reasons and memos behind on-chain commitments.

Theory of operation
-------------------
A transaction carries only ``commitment = H("carecoin/v1/text", salt || text)`` (``ledger.commitments``). The
text and its salt are stored here, keyed by the commitment, BEFORE the transaction is submitted:

- the node checks that ``salt`` and ``text`` open ``commitment`` (409 ``commitment_mismatch``), the text's
  size (413 ``text_too_large``) and kind, and refuses a customer erased on chain or here (410);
- the record ``P([kind, salt, text])`` is encrypted under the **customer's own vault key** (``Vault.box``; a
  key is made if the customer has none yet), so erasing the customer shreds their texts with their personal
  data, while the commitments and receipts on chain stay valid;
- the file ``texts/<commitment hex>`` holds ``P([customer, about_kind, about_id, ciphertext])``: who the text
  belongs to and what it is about (``"ticket"``/``"order"`` and an id, or empty) stay readable, so the
  scope check (``node.staff_auth.verify_text_scope``) runs before anything is decrypted;
- storing the same commitment again for the same customer is a harmless retry (nothing written); for another
  customer it is refused (409 ``text_exists``). A customer holds at most ``MAX_TEXTS_PER_CUSTOMER`` records
  here (409 ``text_quota``), so no key can fill the disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.exceptions

from ledger import codec
from ledger.commitments import TEXT_KIND, TextError, TextTooLong, encode_text, verify_text_commitment
from ledger.errors import LedgerError
from ledger.orders import is_valid_id
from node.vault import Vault, VaultCommitmentMismatch, VaultCorrupt, VaultErased, VaultError, VaultNotFound, write_atomic

MAX_TEXTS_PER_CUSTOMER = 10_000
ABOUT_KINDS = ("", "ticket", "order")


class TextTooLarge(VaultError):
    """A text longer than ``ledger.commitments.MAX_TEXT_BYTES``."""

    code = "text_too_large"
    http_status = 413


class TextExists(VaultError):
    """A record with this commitment is already stored for another customer."""

    code = "text_exists"
    http_status = 409


class TextQuota(VaultError):
    """The customer already holds ``MAX_TEXTS_PER_CUSTOMER`` text records here."""

    code = "text_quota"
    http_status = 409


@dataclass(frozen=True, slots=True)
class TextRecord:
    """One decrypted text record (``about_kind`` "" when the text is about no ticket or order)."""

    commitment: bytes
    customer: bytes
    kind: str
    salt: bytes
    text: str
    about_kind: str = ""
    about_id: str = ""


def verify_text_fields(commitment: bytes, salt: bytes, text: str, kind: str, about_kind: str,
                       about_id: str) -> None:
    """Raise ``VaultError`` (400/409/413) unless the fields make a well-formed record that opens ``commitment``."""
    if not isinstance(kind, str) or not TEXT_KIND.fullmatch(kind):
        raise VaultError(f"text kind {str(kind)[:40]!r}: expected lowercase letters, digits, _ (1..32), e.g. "
                         "ticket_message")
    if about_kind not in ABOUT_KINDS or (about_kind == "") != (about_id == "") or (
            about_id and not is_valid_id(about_id)):
        raise VaultError(f"about {about_kind[:20]!r}/{about_id[:80]!r}: expected 'ticket' or 'order' with an id, "
                         "or neither")
    try:
        encode_text(text)
    except TextTooLong as exc:
        raise TextTooLarge(str(exc)) from None
    except TextError as exc:
        raise VaultError(str(exc)) from None
    if not verify_text_commitment(commitment, salt, text):
        raise VaultCommitmentMismatch(f"salt and text do not open commitment {commitment.hex()[:16]}…: "
                                      "H('carecoin/v1/text', salt || utf-8 text) differs")


class VaultTexts:
    """The text records of ``vault`` (see the module docstring)."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.root = vault.root / "texts"
        self.counts = vault.root / "text-counts"  # both directories are made by ``Vault``

    def _path(self, commitment: bytes):
        if len(commitment) != 32:
            raise VaultError(f"commitment is {len(commitment)} bytes; expected 32")
        return self.root / commitment.hex()

    def put(self, record: TextRecord, key: bytes | None = None) -> bool:
        """Check and store ``record``; return False when the same customer's record was already here.

        ``key`` (replication): the customer key to adopt if this vault has none for them yet."""
        verify_text_fields(record.commitment, record.salt, record.text, record.kind, record.about_kind,
                           record.about_id)
        customer = record.customer
        onchain = self.vault.on_chain(customer)
        if self.vault.is_erased(customer) or (onchain is not None and onchain.erased):
            raise VaultErased(f"customer {customer.hex()[:16]}… was erased; their texts are never stored again")
        path = self._path(record.commitment)
        if path.exists():
            stored_for = self.read_header(record.commitment)[0]
            if stored_for != customer:
                raise TextExists(f"commitment {record.commitment.hex()[:16]}… is already stored for another "
                                 "customer; draw a fresh salt")
            return False
        count = self.count(customer)
        if count >= MAX_TEXTS_PER_CUSTOMER:
            raise TextQuota(f"customer {customer.hex()[:16]}… holds {count} text records here; at most "
                            f"{MAX_TEXTS_PER_CUSTOMER}")
        box = self.vault.box(customer, create=True, key=key)
        sealed = box.encrypt(codec.encode([record.kind, record.salt, record.text.encode("utf-8")]))
        write_atomic(path, codec.encode([customer, record.about_kind, record.about_id, bytes(sealed)]))
        write_atomic(self.counts / customer.hex(), str(count + 1).encode())
        return True

    def count(self, customer: bytes) -> int:
        """How many text records of ``customer`` this vault stored."""
        try:
            return int((self.counts / customer.hex()).read_bytes() or b"0")
        except (FileNotFoundError, ValueError):
            return 0

    def has(self, commitment: bytes) -> bool:
        """True iff a text record with this commitment is stored here."""
        return self._path(commitment).exists()

    def list_commitments(self) -> list[bytes]:
        """The commitments of every text record stored here, sorted."""
        return sorted(bytes.fromhex(p.name) for p in self.root.iterdir() if len(p.name) == 64)

    def read_sealed(self, commitment: bytes) -> tuple[bytes, str, str, bytes]:
        """(customer, about_kind, about_id, ciphertext under the customer key), as stored; ``VaultNotFound``."""
        return self._load(commitment)

    def read_header(self, commitment: bytes) -> tuple[bytes, str, str]:
        """(customer, about_kind, about_id) of a stored text, without decrypting; ``VaultNotFound`` if none."""
        return self._load(commitment)[:3]

    def _load(self, commitment: bytes) -> tuple[bytes, str, str, bytes]:
        try:
            raw = self._path(commitment).read_bytes()
        except FileNotFoundError:
            raise VaultNotFound(f"this node's vault holds no text for commitment {commitment.hex()[:16]}…") from None
        try:
            customer, about_kind, about_id, sealed = codec.decode(raw)
            if not (isinstance(customer, bytes) and len(customer) == 32 and isinstance(sealed, bytes)
                    and isinstance(about_kind, str) and isinstance(about_id, str)):
                raise ValueError("expected [customer, about_kind, about_id, ciphertext]")
        except (LedgerError, ValueError, TypeError) as exc:
            raise VaultCorrupt(f"text record {commitment.hex()[:16]}… is unreadable: {exc}") from None
        return customer, about_kind, about_id, sealed

    def get(self, commitment: bytes) -> TextRecord:
        """The decrypted record; ``VaultNotFound``, ``VaultErased`` (key shredded) or ``VaultCorrupt``."""
        customer, about_kind, about_id, sealed = self._load(commitment)
        box = self.vault.box(customer)
        try:
            kind, salt, text = codec.decode(box.decrypt(sealed))
            record = TextRecord(commitment, customer, kind, salt, text.decode("utf-8"), about_kind, about_id)
        except (nacl.exceptions.CryptoError, LedgerError, ValueError, TypeError, AttributeError) as exc:
            raise VaultCorrupt(f"text record {commitment.hex()[:16]}… does not decrypt: "
                               f"{type(exc).__name__}") from None
        if not verify_text_commitment(commitment, record.salt, record.text):
            raise VaultCorrupt(f"text record {commitment.hex()[:16]}… does not open its commitment")
        return record
