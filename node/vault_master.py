"""The vault master key kept outside the data dir (``load_master_key``): environment or a file node.toml names.

``CARECOIN_VAULT_MASTER_KEY`` holds 32 bytes as 64 hex digits or base64; the file ``vault_master_key_file``
holds the raw 32 bytes, 64 hex digits or base64, and must be mode 0600. Neither set: the vault keeps its own
``master.key`` (local networks and tests; a copy of the data dir then opens the vault, so production sets one).
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Mapping

from node.vault import KEY_BYTES, MASTER_KEY_ENV, VaultCorrupt


def load_master_key(path: str | Path | None, environ: Mapping[str, str] = os.environ) -> bytes | None:
    """The vault master key kept outside the data dir: ``CARECOIN_VAULT_MASTER_KEY`` or the file ``path``.

    Both hold 32 bytes as 64 hex digits or base64 (the file may also hold the raw 32 bytes, and must not be
    readable by others). None when neither is set (the vault then keeps ``master.key`` itself). Setting both
    is refused: which one wraps the keys must never be a guess. Raises ``VaultCorrupt`` naming the source.
    """
    text = environ.get(MASTER_KEY_ENV, "")
    if text and path is not None:
        raise VaultCorrupt(f"both {MASTER_KEY_ENV} and vault_master_key_file ({path}) are set; expected one")
    if text:
        return _parse_master(text.encode(), f"environment {MASTER_KEY_ENV}")
    if path is None:
        return None
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise VaultCorrupt(f"vault_master_key_file {path}: {exc.strerror or exc}; expected a file of 32 bytes "
                           "(raw, 64 hex digits or base64)") from None
    if path.stat().st_mode & 0o077:
        raise VaultCorrupt(f"vault master key {path} is readable by others; expected mode 0600")
    return raw if len(raw) == KEY_BYTES else _parse_master(raw, f"vault_master_key_file {path}")


def _parse_master(raw: bytes, where: str) -> bytes:
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode("ascii")) if len(text) == 2 * KEY_BYTES else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        key = b""
    if len(key) != KEY_BYTES:
        raise VaultCorrupt(f"{where} does not hold a master key: expected {KEY_BYTES} bytes as 64 hex digits or "
                           f"base64, got {len(text)} characters")
    return key
