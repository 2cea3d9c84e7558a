"""Coin lots with an expiry, the supply, and the contract every kind moves coins through.

Theory of operation
-------------------
**Lots.** An account's coins are a list of lots ``[expires_at_ms, amount]`` (state key ``b"l" + account``),
earliest expiry first; their amounts always sum to the balance in the account record (``b"a"``), which keeps
the node's account view and the nonce in one place. ``credit`` creates a lot expiring ``coin_lifetime_ms``
after the block time; ``spend`` and ``clawback`` take the earliest-expiring ("oldest") lots first; a
transfer moves lots with their ORIGINAL expiry, so passing coins around never extends their life. Lots with
the same expiry are merged; past ``MAX_LOTS`` the two latest-expiring lots merge under the EARLIER expiry
(bounded state per account; coin life is only ever shortened, never extended).

**Expiry is lazy but deterministic at block time.** A lot whose ``expires_at_ms <= block timestamp`` is dead:
``get_spendable`` never counts it, and the next transaction that touches the account (credit, spend,
clawback, transfer, either side) sweeps it out first and records ``["expired", account, amount]`` in that
transaction's result, so the expiry is visible, provable by receipt, and the same on every validator. A
block-level sweep is not possible: ``results_root`` only has leaves for transactions. Until it is swept, a
dead lot still sits in the stored balance and in the supply; a failed transaction rolls its sweep back with
everything else.

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

from ledger import codec, reasons
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

SOURCES = frozenset({"mint", "earn", "reward", "compensation", "refund", "coupon", "transfer"})
EARNING_SOURCES = frozenset({"earn", "reward"})  # count toward earnings (tiers); compensation never does
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
    # Every coin creation (mint, earning, rewards, compensation, returned payments) stays within the supply cap
    supply, cap = get_supply(ctx.state), get_policy_value(ctx, "mint_cap")
    verify_rule(supply + amount <= cap, reasons.MINT_CAP_EXCEEDED,
                f"supply {supply} + {amount} ({source}) = {supply + amount}; the mint cap is {cap}")
    events = process_sweep(ctx, account)
    expires = ctx.timestamp_ms + get_policy_value(ctx, "coin_lifetime_ms")
    key = account_record_key(PREFIX_LOTS, account)
    _set_lots(ctx.state, key, compute_add_lot(list(_read_lots(ctx.state, key)), expires, amount))
    _change_balance(ctx.state, account, amount)
    _change_supply(ctx.state, amount)
    add_counter(ctx.state, "minted", amount)
    add_counter(ctx.state, f"credited:{source}", amount)
    if source in EARNING_SOURCES:
        record_earning(ctx.state, account, amount, ctx.timestamp_ms)
    events.append(Credited(account, amount, source, expires))
    return events


def spend(ctx: TxContext, account: bytes, amount: int, purpose: str) -> list[Event]:
    """Burn ``amount`` of the account's coins, earliest-expiring lots first; raise ``insufficient_balance``.

    Sweeps dead lots first (their events come first). Does not check freezes or outflow limits: callers do
    (``verify_not_frozen``, ``verify_outflow``). Ends with ``["spent", account, amount, purpose]``.
    """
    if type(amount) is not int or amount <= 0:
        raise ValueError(f"spend amount {amount!r}; expected an int > 0 (the step checks amounts)")
    events = process_sweep(ctx, account)
    key = account_record_key(PREFIX_LOTS, account)
    lots = list(_read_lots(ctx.state, key))
    balance = sum(a for _, a in lots)
    # The account must hold the amount in live coins
    verify_rule(balance >= amount, reasons.INSUFFICIENT_BALANCE,
                lambda: f"spendable balance is {balance}; {purpose} needs {amount}")
    _, remaining = compute_take_lots(lots, amount)
    _set_lots(ctx.state, key, remaining)
    _change_balance(ctx.state, account, -amount)
    _change_supply(ctx.state, -amount)
    add_counter(ctx.state, "burned", amount)
    events.append(Spent(account, amount, purpose))
    return events


def clawback(ctx: TxContext, account: bytes, amount: int, purpose: str) -> tuple[int, list[Event]]:
    """Burn up to ``amount`` of the account's live coins (never below zero); return (taken, events)."""
    if type(amount) is not int or amount < 0:
        raise ValueError(f"clawback amount {amount!r}; expected an int >= 0")
    events = process_sweep(ctx, account)
    key = account_record_key(PREFIX_LOTS, account)
    lots = list(_read_lots(ctx.state, key))
    taken = min(amount, sum(a for _, a in lots))
    if taken == 0:
        return 0, events
    _, remaining = compute_take_lots(lots, taken)
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


