"""Who may take room in the mempool: the nonce-gap bound, fair shares, the gapped share and the reserve.

Fresh keys cost an attacker nothing, so neither txs that cannot run nor many fresh keys may take the room
that role holders and customers need. ``RoomPolicy`` decides, from the pool's fill (``Fill``), whether one
more tx may enter; every refusal is a typed error naming what was seen and what was allowed, and is counted
(``refused_<reason>``) in the pool's counters.

* Bounded gap: a nonce more than ``max_nonce_gap`` past the sender's next runnable nonce is refused
  (``NonceGapTooLarge``), so one key parks at most ``max_nonce_gap`` gapped txs.
* Fair share: below ``pressure_fraction`` fill every sender may hold ``max_per_sender`` txs; above it the
  cap shrinks linearly with the fill, down to ``min_per_sender`` at a full pool, so under pressure the
  remaining room is spread over more senders instead of going to whoever arrived first with many txs.
  Privileged senders keep the full ``max_per_sender``.
* Gapped share: gapped txs together may hold at most ``max_gapped_fraction`` of the count/byte bounds;
  past that a gapped tx is refused with 503 while runnable txs still get in.
* Reserve (with ``is_privileged``): the last ``reserve_fraction`` of the count and byte bounds is only for
  senders the predicate accepts (role holders and registered customers), so a flood from fresh keys gets
  ``mempool_full`` (503 + Retry-After) while a staff member's or issuer's tx is still admitted. The
  predicate is asked only when the public part is full (or a sender is over its pressure share), so the
  hot path never reads the ledger for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from node.errors import MempoolFull, NonceGapTooLarge, SenderLimit
from node.mempool_records import MempoolLimits

SenderPredicate = Callable[[bytes], bool]


@dataclass(frozen=True, slots=True)
class Fill:
    """How full the pool is now: all txs and the gapped ones, by count and bytes."""

    count: int
    size: int
    gapped_count: int
    gapped_size: int


class RoomPolicy:
    """The admission bounds of one pool (see the module docstring); counts refusals in ``counters``."""

    def __init__(self, limits: MempoolLimits, is_privileged: SenderPredicate | None, counters: Counter) -> None:
        self.limits = limits
        self.is_privileged = is_privileged
        self.counters = counters
        self.public_count = int(limits.max_count * (1 - limits.reserve_fraction))
        self.public_bytes = int(limits.max_bytes * (1 - limits.reserve_fraction))
        self.gapped_max_count = int(limits.max_count * limits.max_gapped_fraction)
        self.gapped_max_bytes = int(limits.max_bytes * limits.max_gapped_fraction)

    def refuse(self, reason: str) -> None:
        """Count a refusal (``refused_<reason>``)."""
        self.counters[f"refused_{reason}"] += 1

    def is_privileged_sender(self, sender: bytes) -> bool:
        return self.is_privileged is not None and self.is_privileged(sender)

    def compute_fill_ratio(self, fill: Fill) -> float:
        """The fuller of count and bytes, as a share of the bounds."""
        return max(fill.count / self.limits.max_count, fill.size / self.limits.max_bytes)

    def get_sender_share(self, fill: Fill) -> int:
        """How many pending txs one (unprivileged) sender may hold at this fill."""
        limits = self.limits
        ratio = self.compute_fill_ratio(fill)
        if ratio <= limits.pressure_fraction:
            return limits.max_per_sender
        floor = min(limits.min_per_sender, limits.max_per_sender)
        left = max(0.0, 1.0 - ratio) / max(1e-9, 1.0 - limits.pressure_fraction)  # 1 at the threshold, 0 full
        return floor + int((limits.max_per_sender - floor) * left)

    def check_gap(self, sender: bytes, nonce: int, next_nonce: int) -> None:
        """Refuse a nonce more than ``max_nonce_gap`` past the sender's next runnable nonce."""
        highest = next_nonce + self.limits.max_nonce_gap
        if nonce > highest:
            self.refuse("nonce_gap")
            raise NonceGapTooLarge(
                f"nonce {nonce} is {nonce - next_nonce} past sender {sender.hex()[:16]}…'s next runnable nonce "
                f"{next_nonce}; the mempool takes nonces up to {highest} (max_nonce_gap "
                f"{self.limits.max_nonce_gap})", nonce, highest)

    def check_room(self, sender: bytes, pending: int, size: int, gapped: bool, fill: Fill) -> None:
        """Per-sender share, gapped share, global bounds and the reserve; raise ``MempoolFull``/``SenderLimit``."""
        limits = self.limits
        retry = limits.retry_after_s
        if pending >= limits.max_per_sender:
            self.refuse("sender_limit")
            raise SenderLimit(
                f"sender {sender.hex()[:16]}… has {pending} txs pending; the limit per sender is "
                f"{limits.max_per_sender}", retry)
        floor = min(limits.min_per_sender, limits.max_per_sender)  # the share never drops below it
        if pending >= floor and pending >= (share := self.get_sender_share(fill)) \
                and not self.is_privileged_sender(sender):
            self.refuse("sender_share")
            raise SenderLimit(
                f"sender {sender.hex()[:16]}… has {pending} txs pending; with the mempool "
                f"{self.compute_fill_ratio(fill):.0%} full a sender may hold {share} (limit per sender "
                f"{limits.max_per_sender}); retry after {retry} s", retry)
        if gapped and (fill.gapped_count >= self.gapped_max_count
                       or fill.gapped_size + size > self.gapped_max_bytes):
            self.refuse("gapped_full")
            raise MempoolFull(
                f"txs waiting on a nonce gap fill their share: {fill.gapped_count}/{self.gapped_max_count} txs, "
                f"{fill.gapped_size}+{size}/{self.gapped_max_bytes} bytes; send the missing nonces first or "
                f"retry after {retry} s", retry)
        count, used = fill.count, fill.size
        if count >= limits.max_count or used + size > limits.max_bytes:
            self.refuse("full")
            raise MempoolFull(
                f"mempool is full: {count}/{limits.max_count} txs, {used}+{size}/{limits.max_bytes} bytes; "
                f"retry after {retry} s", retry)
        if self.is_privileged is not None and (count >= self.public_count or used + size > self.public_bytes):
            if not self.is_privileged(sender):
                self.refuse("full")
                raise MempoolFull(
                    f"mempool is full for senders without a role or registration: {count}/{self.public_count} "
                    f"txs, {used}+{size}/{self.public_bytes} bytes (the rest is reserved); retry after "
                    f"{retry} s", retry)
