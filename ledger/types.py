"""Domain scalars shared by every package (typed ints and byte strings)."""

from __future__ import annotations

from typing import NewType

Height = NewType("Height", int)
Round = NewType("Round", int)
Nonce = NewType("Nonce", int)
Amount = NewType("Amount", int)  # smallest coin unit; never a float
TimestampMs = NewType("TimestampMs", int)
AccountId = NewType("AccountId", bytes)  # 32-byte Ed25519 public key
Hash32 = NewType("Hash32", bytes)

ZERO_HASH = Hash32(b"\x00" * 32)
