"""Typed errors of the consensus package.

``ConsensusError`` is the root; every class has a stable ``code`` (never renamed) and messages that name
what was seen and what was expected. Two families are kept apart on purpose:

- remote faults (``WireError`` and subclasses): a peer's bytes or message are bad; the caller drops the
  message, counts it and may penalise the peer. ``Replica.handle`` never raises for these; only the decoder
  (``consensus.wire``) raises them, before a message reaches the replica.
- local faults (``ConsensusSafetyError``): this replica is about to break a voting rule itself (sign a
  conflicting vote, go back to a lower round, run from a WAL that is ahead of its chain). The node must stop
  loudly; carrying on could fork the chain.
"""

from __future__ import annotations


class ConsensusError(Exception):
    """Root of every error raised by the consensus package."""

    code = "consensus_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class WireError(ConsensusError):
    """Bytes from a peer that are not a well-formed consensus message (remote fault)."""

    code = "consensus_wire"


class MessageTooLarge(WireError):
    """A frame larger than the configured limit; refused before decoding."""

    code = "consensus_message_too_large"


class MalformedMessage(WireError):
    """A frame that decodes but has the wrong type tag, field count, field types or sizes."""

    code = "consensus_malformed"


class WalError(ConsensusError):
    """A write-ahead record that cannot be decoded (local fault: the node's own disk)."""

    code = "consensus_wal"


class ConsensusSafetyError(ConsensusError):
    """This replica is about to violate a voting rule itself; stop the node."""

    code = "consensus_safety"


class ReplicaMisuse(ConsensusError):
    """The caller broke the replica's contract (e.g. an event before ``Restarted``)."""

    code = "consensus_misuse"
