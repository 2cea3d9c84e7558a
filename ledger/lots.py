"""Coin lots with an expiry, the supply, and the contract every kind moves coins through.

Theory of operation
-------------------
**Lots.** An account's coins are a list of lots ``[expires_at_ms, amount]`` (state key ``b"l" + account``),
earliest expiry first; their amounts always sum to the balance in the account record (``b"a"``), which keeps
the node's account view and the nonce in one place. ``credit`` creates a lot expiring ``coin_lifetime_ms``
after the block time; ``spend`` takes the earliest-expiring ("oldest") lots first (``clawback`` the latest); a
transfer moves lots with their ORIGINAL expiry, so passing coins around never extends their life. Lots with
the same expiry are merged; past ``MAX_LOTS`` the two latest-expiring lots merge under the EARLIER expiry
(bounded state per account; coin life is only ever shortened, never extended).

**Expiry happens at block time.** A lot whose ``expires_at_ms <= block timestamp`` is dead: ``get_spendable``
never counts it. Every lot added to an account (``credit``, the receiving side of ``process_move``) schedules
a due entry ``(QUEUE_EXPIRY, expires_at_ms, account)`` (``ledger.due``); the first block whose time reaches it
sweeps the account's dead lots out in its ``block-sweep`` system tx (``ledger.sweeps``), recording
``["expired", account, amount]``, so no account needs to be touched for its coins to expire. A transaction
that touches an account with dead lots before that (credit, spend, clawback, transfer, either side) still
sweeps them first, in its own result; the entry then finds nothing to do. Until it is swept, a dead lot still
sits in the stored balance and in the supply; a failed transaction rolls its sweep back with everything else.

**Debt** (``ledger.debt``). A refund's clawback takes the LATEST-expiring lots first (so a refund never
leaves the customer with younger coins than before) and what it cannot take becomes a debt. While in debt,
``spend`` and ``process_move`` refuse (``in_debt``) except ``spend(..., repaying_debt=True)`` for the
``repay-debt`` kind; ``credit`` (of every source but refund returns and transfers) repays the debt first and
mints only the rest. ``return_lots`` gives a refunded payment back as the very lots ``take`` took, with their
original expiry (a lot already dead at the block time is swept at once, as an ``expired`` event).

**Supply accounting.** Counters (``b"n" + name``): ``minted`` (every coin ``credit`` creates, whatever its
source; ``credited:<source>`` splits it), ``burned`` (spent or clawed back), ``expired`` (swept). Always:
supply (``b"s"``) = minted − expired − burned = the sum of all stored balances (dead-but-unswept lots
included).

Freezes and outflow limits are ``ledger.limits``. A frozen account receives nothing: ``credit`` and the
receiving side of ``process_move`` raise ``account_frozen`` (a ``TxFailure``: a caller crediting many accounts
in one transaction, such as a sweep or a campaign, catches it per account if one frozen account must not fail
the rest). Sending is checked by the callers (``verify_not_frozen``, ``verify_outflow``): ``spend`` itself only
checks the balance.
"""

from __future__ import annotations

from ledger import codec, debt, due, reasons
from ledger.context import TxContext, get_policy_value, verify_rule
from ledger.customers import record_clawback, record_earning
from ledger.errors import SchemaError
from ledger.events import ClawedBack, Credited, Event, Expired, Spent
from ledger.limits import verify_not_frozen
from ledger.state import (
    Overlay, PREFIX_LOTS, StateReader, UINT_MAX, account_record_key, add_counter,
    encode_checked, get_balance_nonce, get_counter, get_supply, new_decode_memo, read_parsed, remember,
    set_balance_nonce, set_record, set_supply,
)

SOURCES = frozenset({"mint", "earn", "reward", "compensation", "refund", "coupon", "transfer",
                     "sla",  # sla: automatic compensation of an SLA breach (ledger.sla)
                     "campaign"})  # campaign: a campaign's bonus (ledger.campaigns)
EARNING_SOURCES = frozenset({"earn", "reward"})  # count toward earnings (tiers); compensation, SLA, campaigns never do
MAX_LOTS = 256

Lot = tuple[int, int]  # (expires_at_ms, amount)


# --- lots ------------------------------------------------------------------------------------------------


def get_lots(state: StateReader, account: bytes) -> list[Lot]:
    """Return the account's lots as (expires_at_ms, amount), earliest expiry first (dead lots included)."""
    return list(_read_lots(state, account_record_key(PREFIX_LOTS, account)))


def _read_lots(state: StateReader, key: bytes) -> tuple[Lot, ...]:
    # Hot path: an Overlay decodes each account's lots once per block, whatever the number of reads.
    value = state.get_parsed(key, _decode_lots) if type(state) is Overlay else read_parsed(state, key, _decode_lots)
    return () if value is None else value  # type: ignore[return-value]


def _decode_lots(raw: bytes) -> tuple[Lot, ...]:
    # A pure function of the bytes, so memoising is safe; the encoder seeds the memo for the next block.
    lots = _LOTS.get(raw)
    if lots is None:
        lots = _parse_lots(raw)
        remember(_LOTS, raw, lots)
    return lots



_LOTS = new_decode_memo()


def _parse_lots(raw: bytes) -> tuple[Lot, ...]:
    value = codec.decode(raw)
    if not (isinstance(value, list) and all(
            isinstance(v, list) and len(v) == 2 and all(type(x) is int and x >= 0 for x in v) for v in value)):
        raise SchemaError(f"state lots: expected [[expires_at_ms, amount], ...], got {value!r:.60}")
    return tuple((v[0], v[1]) for v in value)


def _set_lots(state: Overlay, key: bytes, lots: list[Lot] | tuple[Lot, ...]) -> None:
    # ``key`` = PREFIX_LOTS + account. Checked now (as codec.encode would), encoded once at the block end.
    if not lots:
        state.set_state(key, None)
        return
    for expires, amount in lots:
        if not (0 <= expires <= UINT_MAX and 0 <= amount <= UINT_MAX):
            codec.encode([list(lot) for lot in lots])  # raises the codec's own error
    if type(state) is Overlay:
        state.set_parsed(key, tuple(lots), _decode_lots, _encode_lots)
    else:
        set_record(state, key, [list(lot) for lot in lots])


def _encode_lots(lots: tuple[Lot, ...]) -> bytes:
    raw = encode_checked(lots)  # tuples pack as arrays: the same bytes as codec.encode([[e, a], ...])
    remember(_LOTS, raw, lots)
    return raw


def compute_add_lot(lots: list[Lot], expires_at_ms: int, amount: int) -> list[Lot]:
    """Return ``lots`` with a lot added in expiry order (merging equal expiries, at most ``MAX_LOTS``)."""
    merged = dict(lots)
    merged[expires_at_ms] = merged.get(expires_at_ms, 0) + amount
    out = sorted(merged.items())
    while len(out) > MAX_LOTS:
        # Merge the two latest-expiring lots under the earlier expiry: never extends a coin's life.
        (e1, a1), (_, a2) = out[-2], out[-1]
        out[-2:] = [(e1, a1 + a2)]
    return out


def compute_take_lots(lots: list[Lot], amount: int) -> tuple[list[Lot], list[Lot]]:
    """Split ``lots`` into (taken, remaining), taking ``amount`` from the earliest-expiring lots first."""
    taken: list[Lot] = []
    remaining = list(lots)
    need = amount
    while need > 0:
        if not remaining:
            raise ValueError(f"cannot take {amount} from lots holding {sum(a for _, a in lots)}")
        expires, have = remaining[0]
        part = min(have, need)
        taken.append((expires, part))
        need -= part
        remaining = remaining[1:] if part == have else [(expires, have - part)] + remaining[1:]
    return taken, remaining


def compute_take_latest_lots(lots: list[Lot], amount: int) -> list[Lot]:
    """Return ``lots`` less ``amount`` taken from the LATEST-expiring lots first (``amount`` <= their sum)."""
    _, reversed_remaining = compute_take_lots(lots[::-1], amount)
    return reversed_remaining[::-1]


def get_spendable(state: StateReader, account: bytes, now_ms: int) -> int:
    """Return the balance excluding lots expired at ``now_ms`` (a lot expiring exactly at now_ms is dead)."""
    return sum(amount for expires, amount in _read_lots(state, account_record_key(PREFIX_LOTS, account))
               if expires > now_ms)


def get_expiring(state: StateReader, account: bytes, now_ms: int, within_ms: int) -> list[Lot]:
    """Return the live lots that expire within ``within_ms`` after ``now_ms`` (for "expiring soon" views)."""
    return [(e, a) for e, a in get_lots(state, account) if now_ms < e <= now_ms + within_ms]


def _change_balance(state: Overlay, account: bytes, delta: int) -> None:
    balance, nonce = get_balance_nonce(state, account)
    set_balance_nonce(state, account, balance + delta, nonce)


def _change_supply(state: Overlay, delta: int) -> None:
    set_supply(state, get_supply(state) + delta)


def process_sweep(ctx: TxContext, account: bytes) -> list[Event]:
    """Remove the account's lots expired at the block time; return ``[["expired", account, amount]]`` or []."""
    return _sweep(ctx, account, account_record_key(PREFIX_LOTS, account))


def _sweep(ctx: TxContext, account: bytes, key: bytes) -> list[Event]:
    # ``key`` = the account's lots key
    return _sweep_lots(ctx, account, key)[0]


def _sweep_lots(ctx: TxContext, account: bytes, key: bytes) -> tuple[list[Event], tuple[Lot, ...] | list[Lot]]:
    # The sweep's events and the account's lots after it (so the caller need not read them again).
    lots = _read_lots(ctx.state, key)
    now = ctx.timestamp_ms
    if not lots or lots[0][0] > now:  # earliest expiry first: nothing is dead
        return [], lots
    dead = sum(a for e, a in lots if e <= now)
    if dead == 0:
        return [], lots
    live = [(e, a) for e, a in lots if e > now]
    _set_lots(ctx.state, key, live)
    _change_balance(ctx.state, account, -dead)
    _change_supply(ctx.state, -dead)
    add_counter(ctx.state, "expired", dead)
    return [Expired(account, dead)], live


def _schedule_expiry(state: Overlay, lots: list[Lot] | tuple[Lot, ...], expires: int, account: bytes) -> None:
    # A lot added to ``account`` expires at block time (``ledger.sweeps``): schedule its due entry, unless a lot
    # of the same expiry is already there (every lot an account holds has its entry until the sweep removes both).
    if not any(e == expires for e, _ in lots):
        due.schedule(state, due.QUEUE_EXPIRY, expires, account)


# --- the contract: credit, spend, clawback, move ------------------------------------------------------------


def credit(ctx: TxContext, account: bytes, amount: int, source: str) -> list[Event]:
    """Create ``amount`` new coins for ``account`` in a lot expiring ``coin_lifetime_ms`` after the block time.

    Returns the events: the account's sweep (if any) then ``["credited", account, amount, source,
    expires_at_ms]``. A zero amount credits nothing and returns []. ``source`` in ``SOURCES``; the
    ``EARNING_SOURCES`` add to the account's earnings (tiers). Raises ``TxFailure``: ``account_frozen`` when
    the account is frozen, ``mint_cap_exceeded`` past the supply cap.
    """
    if source not in SOURCES:
        raise ValueError(f"credit source {source!r}; expected one of {sorted(SOURCES)}")
    if type(amount) is not int or amount < 0:
        raise ValueError(f"credit amount {amount!r}; expected an int >= 0 (the step checks amounts)")
    if amount == 0:
        return []
    # A frozen account receives nothing, whatever the source
    verify_not_frozen(ctx, account)
    earned = amount
    # A debt is repaid first: that part is never minted (ledger.debt; refund returns and transfers excepted)
    repaid, events = debt.process_repay_from_credit(ctx, account, amount, source)
    amount -= repaid
    if amount == 0:
        _record_earning(ctx, account, earned, source)
        return events
    # Every coin creation (mint, earning, rewards, compensation, returned payments) stays within the supply cap
    supply, cap = get_supply(ctx.state), get_policy_value(ctx, "mint_cap")
    verify_rule(supply + amount <= cap, reasons.MINT_CAP_EXCEEDED,
                f"supply {supply} + {amount} ({source}) = {supply + amount}; the mint cap is {cap}")
    events += process_sweep(ctx, account)
    expires = ctx.timestamp_ms + get_policy_value(ctx, "coin_lifetime_ms")
    key = account_record_key(PREFIX_LOTS, account)
    lots = list(_read_lots(ctx.state, key))
    _set_lots(ctx.state, key, compute_add_lot(lots, expires, amount))
    _schedule_expiry(ctx.state, lots, expires, account)
    _change_balance(ctx.state, account, amount)
    _change_supply(ctx.state, amount)
    add_counter(ctx.state, "minted", amount)
    add_counter(ctx.state, f"credited:{source}", amount)
    _record_earning(ctx, account, earned, source)
    events.append(Credited(account, amount, source, expires))
    return events


def _record_earning(ctx: TxContext, account: bytes, amount: int, source: str) -> None:
    # Earnings count the whole credit, the part that repaid a debt included (it was earned); repaying a debt
    # takes the same amount back from earnings (ledger.debt), so the tier = window earnings - debt is unchanged
    # by the repayment itself.
    if source in EARNING_SOURCES:
        record_earning(ctx.state, account, amount, ctx.timestamp_ms)


def return_lots(ctx: TxContext, account: bytes, lots: list[Lot] | tuple[Lot, ...]) -> list[Event]:
    """Give back a refunded payment as the lots ``take`` took, each with its ORIGINAL expiry.

    Counted like a credit of source "refund" (minted, within the supply cap; it never repays a debt). A lot
    already dead at the block time is swept at once: the events end with the account's ``expired`` event.
    Returns ``["credited", account, amount, "refund", expires_at_ms]`` per lot, then the sweep's event.
    """
    amount = sum(a for _, a in lots)
    if amount == 0:
        return []
    # Returned coins are coins again: they stay within the supply cap like every other creation
    supply, cap = get_supply(ctx.state), get_policy_value(ctx, "mint_cap")
    verify_rule(supply + amount <= cap, reasons.MINT_CAP_EXCEEDED,
                f"supply {supply} + {amount} (refund) = {supply + amount}; the mint cap is {cap}")
    key = account_record_key(PREFIX_LOTS, account)
    held = list(_read_lots(ctx.state, key))
    events: list[Event] = []
    for expires, part in lots:
        _schedule_expiry(ctx.state, held, expires, account)
        held = compute_add_lot(held, expires, part)
        events.append(Credited(account, part, "refund", expires))
    _set_lots(ctx.state, key, held)
    _change_balance(ctx.state, account, amount)
    _change_supply(ctx.state, amount)
    add_counter(ctx.state, "minted", amount)
    add_counter(ctx.state, "credited:refund", amount)
    return events + process_sweep(ctx, account)


def spend(ctx: TxContext, account: bytes, amount: int, purpose: str, *, repaying_debt: bool = False) -> list[Event]:
    """Burn ``amount`` of the account's coins, earliest-expiring lots first; raise ``insufficient_balance``.

    Sweeps dead lots first (their events come first). Refuses an account in debt (``in_debt``) unless
    ``repaying_debt``. Does not check freezes or outflow limits: callers do (``verify_not_frozen``,
    ``verify_outflow``). Ends with ``["spent", account, amount, purpose]``.
    """
    return take(ctx, account, amount, purpose, repaying_debt=repaying_debt)[1]


def take(ctx: TxContext, account: bytes, amount: int, purpose: str, *,
         repaying_debt: bool = False) -> tuple[list[Lot], list[Event]]:
    """``spend``, also returning the lots it burned ((expires_at_ms, amount), earliest first) for a refund."""
    if type(amount) is not int or amount <= 0:
        raise ValueError(f"spend amount {amount!r}; expected an int > 0 (the step checks amounts)")
    # An account in debt spends nothing but the repayment itself
    if not repaying_debt:
        debt.verify_not_in_debt(ctx, account, purpose)
    events = process_sweep(ctx, account)
    key = account_record_key(PREFIX_LOTS, account)
    lots = list(_read_lots(ctx.state, key))
    balance = sum(a for _, a in lots)
    # The account must hold the amount in live coins
    verify_rule(balance >= amount, reasons.INSUFFICIENT_BALANCE,
                lambda: f"spendable balance is {balance}; {purpose} needs {amount}")
    taken, remaining = compute_take_lots(lots, amount)
    _set_lots(ctx.state, key, remaining)
    _change_balance(ctx.state, account, -amount)
    _change_supply(ctx.state, -amount)
    add_counter(ctx.state, "burned", amount)
    events.append(Spent(account, amount, purpose))
    return taken, events


def clawback(ctx: TxContext, account: bytes, amount: int, purpose: str) -> tuple[int, list[Event]]:
    """Burn up to ``amount`` of the account's live coins (never below zero); return (taken, events).

    Takes the LATEST-expiring lots first: what the customer keeps is never younger than before (a clawback
    that took the oldest lots would swap coins about to expire for the refunded order's fresh ones).
    The shortfall (``amount - taken``) is the caller's to record as a debt (``ledger.debt``).
    """
    if type(amount) is not int or amount < 0:
        raise ValueError(f"clawback amount {amount!r}; expected an int >= 0")
    events = process_sweep(ctx, account)
    key = account_record_key(PREFIX_LOTS, account)
    lots = list(_read_lots(ctx.state, key))
    taken = min(amount, sum(a for _, a in lots))
    if taken == 0:
        return 0, events
    remaining = compute_take_latest_lots(lots, taken)
    _set_lots(ctx.state, key, remaining)
    _change_balance(ctx.state, account, -taken)
    _change_supply(ctx.state, -taken)
    add_counter(ctx.state, "burned", taken)
    record_clawback(ctx.state, account, taken, ctx.timestamp_ms)  # what is taken back was earned: tiers drop
    events.append(ClawedBack(account, taken, purpose))
    return taken, events


def process_move(ctx: TxContext, sender: bytes, to: bytes, amount: int) -> list[Event]:
    """Move ``amount`` from ``sender`` to ``to``, lots keeping their expiry; raise ``insufficient_balance``.

    Both accounts are swept first. Supply and counters do not change: no coin is created or destroyed.
    Raises ``account_frozen`` when either side is frozen (a frozen account neither sends nor receives).
    """
    state = ctx.state
    # Neither side is frozen
    verify_not_frozen(ctx, sender)
    verify_not_frozen(ctx, to)
    # An account in debt sends nothing
    debt.verify_not_in_debt(ctx, sender, "a transfer")
    sender_key, to_key = account_record_key(PREFIX_LOTS, sender), account_record_key(PREFIX_LOTS, to)
    events, lots = _sweep_lots(ctx, sender, sender_key)
    if to != sender:  # (a step refuses self-transfers; this keeps the general contract exact)
        events += _sweep(ctx, to, to_key)
    balance = sum(a for _, a in lots)
    # The sender must hold the amount in live coins
    verify_rule(balance >= amount, reasons.INSUFFICIENT_BALANCE,
                lambda: f"spendable balance is {balance}; the transfer needs {amount}")
    taken, remaining = compute_take_lots(lots, amount)
    _set_lots(state, sender_key, remaining)
    received = _read_lots(state, to_key)
    for expires, part in taken:
        _schedule_expiry(state, received, expires, to)  # the lot keeps its expiry, now for ``to``
        received = compute_add_lot(received, expires, part)
    _set_lots(state, to_key, received)
    _change_balance(state, sender, -amount)
    _change_balance(state, to, amount)
    return events




# --- supply ----------------------------------------------------------------------------------------------


def get_coin_totals(state: StateReader) -> dict[str, int]:
    """Return the supply and its counters: minted, burned, expired and minted per credit source."""
    totals = {"supply": get_supply(state)}
    for name in ("minted", "burned", "expired", *(f"credited:{s}" for s in sorted(SOURCES))):
        totals[name] = get_counter(state, name)
    return totals


