"""Salted commitments to free texts: what a ``ContentHash`` payload field holds.

No free text goes on chain. A ticket message, a staff response, a resolution, a refund or reopen reason, a
transfer memo... is committed as

    commitment = H("carecoin/v1/text", salt || utf-8 text)        (H as in DESIGN "Wire formats")

with a fresh random ``salt`` of ``SALT_BYTES`` (32) bytes per text, and only the 32-byte commitment is put in
the transaction. The salt makes the commitment useless for guessing: without it, a short text ("yes", a
product name, an amount) could be found by hashing candidates. The text and its salt are kept in the vault of
a branch node, encrypted under the customer's vault key (``node.vault_texts``), so erasing the customer
destroys them too; the commitment and every receipt stay valid.

Anyone holding the salt and the text (the customer, the branch) can later prove what was said: they reveal
both and anyone recomputes the commitment (``verify_text_commitment``; ``carecoin text verify`` offline).

An optional text field left out is ``NO_TEXT`` (32 zero bytes): a commitment that opens to nothing.
This module is pure (no randomness, no I/O): callers draw the salt.
"""

from __future__ import annotations

import hmac
import re

from ledger.hashing import H

TAG_TEXT = "carecoin/v1/text"
SALT_BYTES = 32
MAX_TEXT_BYTES = 4096  # utf-8 bytes of one text record (a ticket message fits; a document does not)
NO_TEXT = bytes(32)  # an optional text that was not given
TEXT_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")

# Text kinds by (transaction kind, payload field); any other ContentHash field is labelled by its name
# without "_hash" (``compute_text_kind``).
TEXT_KINDS: dict[tuple[str, str], str] = {
    ("open-ticket", "content_hash"): "ticket_message",
    ("respond-ticket", "content_hash"): "ticket_response",
    ("resolve-ticket", "resolution_hash"): "resolution",
    ("reopen-ticket", "reason_hash"): "reopen_reason",
    ("request-refund", "reason_hash"): "refund_reason",
    ("submit-feedback", "comment_hash"): "feedback_comment",
    ("create-order", "items_hash"): "order_items",
    ("transfer", "memo_hash"): "memo",
}


class TextError(ValueError):
    """A text, salt or commitment of the wrong shape (the message names what was seen and expected)."""


class TextTooLong(TextError):
    """A text of more than ``MAX_TEXT_BYTES`` utf-8 bytes."""


def encode_text(text: str) -> bytes:
    """The utf-8 bytes of ``text``; raise ``TextError`` if it is not text or is longer than ``MAX_TEXT_BYTES``."""
    if not isinstance(text, str):
        raise TextError(f"text is a {type(text).__name__}; expected a str")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise TextError("text holds an unpaired surrogate; expected valid unicode text") from None
    if not data:
        raise TextError(f"text is empty; expected 1..{MAX_TEXT_BYTES} utf-8 bytes (leave an optional text out)")
    if len(data) > MAX_TEXT_BYTES:
        raise TextTooLong(f"text is {len(data)} utf-8 bytes; expected at most {MAX_TEXT_BYTES}")
    return data


def compute_text_commitment(salt: bytes, text: str) -> bytes:
    """Return ``H("carecoin/v1/text", salt || utf-8 text)``; raise ``TextError`` for a bad salt or text."""
    if type(salt) is not bytes or len(salt) != SALT_BYTES:
        raise TextError(f"salt is {len(salt) if isinstance(salt, bytes) else type(salt).__name__} bytes; "
                        f"expected {SALT_BYTES}")
    return H(TAG_TEXT, salt + encode_text(text))


def verify_text_commitment(commitment: bytes, salt: bytes, text: str) -> bool:
    """True iff ``salt`` and ``text`` open ``commitment`` (a malformed salt or text opens nothing)."""
    try:
        return hmac.compare_digest(compute_text_commitment(salt, text), commitment)
    except TextError:
        return False


def compute_text_kind(tx_kind: str, field: str) -> str:
    """The label of the text behind payload field ``field`` of ``tx_kind`` (e.g. ``ticket_message``)."""
    return TEXT_KINDS.get((tx_kind, field), field.removesuffix("_hash"))
