"""The loyalty coin's shared rules: lots with an expiry, credit/spend/clawback, limits, customers, tiers.

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

**Limits.** ``verify_outflow`` caps what a registered customer sends or redeems per UTC day (of the block
time) by KYC level; staff and other non-customer accounts are exempt. ``verify_not_frozen`` refuses a frozen
sender. Callers run these checks: ``spend`` itself only checks the balance.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import codec, reasons
from ledger.context import DAY_MS, DEFAULT_POLICY, TxContext, get_policy_value, verify_rule
from ledger.errors import SchemaError
from ledger.events import ClawedBack, Credited, Event, Expired, Spent
from ledger.state import (
    PREFIX_BRANCH, PREFIX_CUSTOMER, PREFIX_EARNED, PREFIX_FREEZE, PREFIX_LOTS, PREFIX_OUTFLOW, PREFIX_PRIVILEGE,
    PREFIX_SECOND_KEY, Account, Overlay, StateReader, account_record_key, add_counter, get_account, get_balance_nonce, set_balance_nonce,
    get_counter, get_policy_int, get_record, get_supply, UINT_MAX, encode_checked, new_decode_memo, read_parsed, remember, set_account, set_record, set_supply,
)

SOURCES = frozenset({"mint", "earn", "reward", "compensation", "refund", "coupon", "transfer"})
EARNING_SOURCES = frozenset({"earn", "reward", "compensation"})  # count toward lifetime earnings (tiers)
TIERS = ("base", "silver", "gold", "platinum")
PRIVILEGE_CODES: dict[str, int] = {"priority": 1, "vip": 2}  # part of the key layout: append only
MAX_LOTS = 256
KYC_LEVELS = (0, 1, 2)

Lot = tuple[int, int]  # (expires_at_ms, amount)


@dataclass(frozen=True, slots=True)
class Customer:
    """A registered customer: KYC level and the commitment H(salt || personal data); no personal data."""

    account: bytes
    kyc_level: int
    commitment: bytes
    registered_by: bytes
    branch: str
    registered_at_ms: int
    erased_at_ms: int = 0  # 0 = the personal data behind the commitment has not been erased

    @property
    def erased(self) -> bool:
        return self.erased_at_ms != 0

    def to_list(self) -> list:
        return [self.kyc_level, self.commitment, self.registered_by, self.branch, self.registered_at_ms,
                self.erased_at_ms]


@dataclass(frozen=True, slots=True)
class Freeze:
    """Why and by whom an account was frozen."""

    reason_code: str
    frozen_by: bytes
    height: int


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
_OUTFLOWS = new_decode_memo()
_CUSTOMERS = new_decode_memo()


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
    ``EARNING_SOURCES`` add to lifetime earnings (tiers).
    """
    if source not in SOURCES:
        raise ValueError(f"credit source {source!r}; expected one of {sorted(SOURCES)}")
    if type(amount) is not int or amount < 0:
        raise ValueError(f"credit amount {amount!r}; expected an int >= 0 (the step checks amounts)")
    if amount == 0:
        return []
    events = process_sweep(ctx, account)
    expires = ctx.timestamp_ms + get_policy_value(ctx, "coin_lifetime_ms")
    key = account_record_key(PREFIX_LOTS, account)
    _set_lots(ctx.state, key, compute_add_lot(list(_read_lots(ctx.state, key)), expires, amount))
    _change_balance(ctx.state, account, amount)
    _change_supply(ctx.state, amount)
    add_counter(ctx.state, "minted", amount)
    add_counter(ctx.state, f"credited:{source}", amount)
    if source in EARNING_SOURCES:
        key = account_record_key(PREFIX_EARNED, account)
        set_record(ctx.state, key, get_earned(ctx.state, account) + amount)
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
    events.append(ClawedBack(account, taken, purpose))
    return taken, events


def process_move(ctx: TxContext, sender: bytes, to: bytes, amount: int) -> list[Event]:
    """Move ``amount`` from ``sender`` to ``to``, lots keeping their expiry; raise ``insufficient_balance``.

    Both accounts are swept first. Supply and counters do not change: no coin is created or destroyed.
    """
    state = ctx.state
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


# --- freezes, outflow, second factor -------------------------------------------------------------------------


def get_freeze(state: StateReader, account: bytes) -> Freeze | None:
    """Return the account's freeze, or None when it is not frozen."""
    value = get_record(state, account_record_key(PREFIX_FREEZE, account))
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)
            and isinstance(value[1], bytes) and type(value[2]) is int):
        raise SchemaError(f"state freeze of {account.hex()[:16]}…: expected [reason_code, by, height]")
    return Freeze(value[0], value[1], value[2])


def set_freeze(state: Overlay, account: bytes, freeze: Freeze | None) -> None:
    """Freeze the account (or lift its freeze with None)."""
    value = None if freeze is None else [freeze.reason_code, freeze.frozen_by, freeze.height]
    set_record(state, account_record_key(PREFIX_FREEZE, account), value)


def verify_not_frozen(ctx: TxContext, account: bytes) -> None:
    """Raise ``account_frozen`` if compliance froze ``account``."""
    freeze = get_freeze(ctx.state, account)
    verify_rule(freeze is None, reasons.ACCOUNT_FROZEN,
                lambda: f"account {account.hex()[:16]}… is frozen ({freeze.reason_code if freeze else ''}); "
                "expected an active account")


def get_outflow(state: StateReader, account: bytes, now_ms: int) -> int:
    """Return what the account has sent or redeemed so far on the UTC day of ``now_ms``."""
    value = read_parsed(state, account_record_key(PREFIX_OUTFLOW, account), _parse_outflow)
    if value is None:
        return 0
    if value is _BAD:
        raise SchemaError(f"state outflow of {account.hex()[:16]}…: expected [utc_day, amount]")
    return value[1] if value[0] == now_ms // DAY_MS else 0  # type: ignore[index]


_BAD = object()  # a typed parser's answer for bytes of the wrong shape (the getter raises, naming the account)


def _parse_outflow(raw: bytes) -> object:
    parsed = _OUTFLOWS.get(raw)
    if parsed is None:
        value = codec.decode(raw)
        if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int and v >= 0 for v in value)):
            parsed = _BAD
        else:
            parsed = (value[0], value[1])
        remember(_OUTFLOWS, raw, parsed)
    return parsed


def _encode_outflow(value: tuple[int, int]) -> bytes:
    raw = encode_checked(value)
    remember(_OUTFLOWS, raw, value)
    return raw


def verify_outflow(ctx: TxContext, account: bytes, amount: int) -> None:
    """Record ``amount`` against the customer's daily limit (by KYC level); raise ``daily_limit_exceeded``.

    Accounts that are not registered customers (staff, issuers) are exempt and nothing is recorded.
    """
    customer = read_parsed(ctx.state, account_record_key(PREFIX_CUSTOMER, account), _parse_customer)
    if customer is None:
        return
    if customer is _BAD:
        get_customer(ctx.state, account)  # raises, naming the account
    kyc_level = customer[0]  # type: ignore[index]
    used, limit = get_outflow(ctx.state, account, ctx.timestamp_ms), get_policy_value(
        ctx, _OUTFLOW_POLICY.get(kyc_level) or f"daily_outflow_kyc{kyc_level}")
    # A customer's outflow on one UTC day stays within the limit of their KYC level
    verify_rule(used + amount <= limit, reasons.DAILY_LIMIT_EXCEEDED,
                lambda: f"already {used} out today + {amount} = {used + amount}; the KYC {kyc_level} "
                f"daily limit is {limit}")
    key, value = account_record_key(PREFIX_OUTFLOW, account), (ctx.timestamp_ms // DAY_MS, used + amount)
    if type(ctx.state) is Overlay and 0 <= value[0] <= UINT_MAX and 0 <= value[1] <= UINT_MAX:
        ctx.state.set_parsed(key, value, _parse_outflow, _encode_outflow)
    else:
        set_record(ctx.state, key, list(value))


_OUTFLOW_POLICY = {level: f"daily_outflow_kyc{level}" for level in KYC_LEVELS}


def get_second_key(state: StateReader, account: bytes) -> bytes | None:
    """Return the account's registered second-factor key, or None."""
    value = get_record(state, account_record_key(PREFIX_SECOND_KEY, account))
    if value is not None and not (isinstance(value, bytes) and len(value) == 32):
        raise SchemaError(f"state second key of {account.hex()[:16]}…: expected 32 bytes")
    return value


def verify_second_factor(ctx: TxContext, account: bytes, what: str) -> None:
    """Raise ``second_factor_required`` unless the account's second key co-signed this tx."""
    second = get_second_key(ctx.state, account)
    # The account's registered second key signed too (signatures were verified at admission)
    verify_rule(second is not None and second in ctx.signers[1:], reasons.SECOND_FACTOR_REQUIRED,
                f"{what} needs a second signature by "
                + (f"key {second.hex()[:16]}…" if second else "a second key, and none is registered")
                + f"; signed by {len(ctx.signers)} key(s)")


# --- customers, branches, tiers, privileges ------------------------------------------------------------------


def get_customer(state: StateReader, account: bytes) -> Customer | None:
    """Return the registered customer ``account`` (None if it is not one)."""
    value = read_parsed(state, account_record_key(PREFIX_CUSTOMER, account), _parse_customer)
    if value is None:
        return None
    if value is _BAD:
        raise SchemaError(f"state customer {account.hex()[:16]}…: expected [kyc, commitment, by, branch, at, erased]")
    return Customer(account, *value)  # type: ignore[misc]


def _parse_customer(raw: bytes) -> object:
    parsed = _CUSTOMERS.get(raw)
    if parsed is None:
        value = codec.decode(raw)
        if not (isinstance(value, list) and len(value) == 6 and type(value[0]) is int
                and isinstance(value[1], bytes) and isinstance(value[2], bytes) and isinstance(value[3], str)
                and type(value[4]) is int and type(value[5]) is int):
            parsed = _BAD
        else:
            parsed = tuple(value)
        remember(_CUSTOMERS, raw, parsed)
    return parsed


def set_customer(state: Overlay, customer: Customer) -> None:
    """Store the customer record."""
    set_record(state, account_record_key(PREFIX_CUSTOMER, customer.account), customer.to_list())


def verify_customer(ctx: TxContext, account: bytes) -> None:
    """Raise ``unknown_customer`` unless ``account`` is a registered customer."""
    verify_rule(get_customer(ctx.state, account) is not None, reasons.UNKNOWN_CUSTOMER,
                f"account {account.hex()[:16]}… is not a registered customer")


def get_branch_of(state: StateReader, account: bytes) -> str:
    """Return the branch a staff/admin account belongs to ("" if none was recorded)."""
    value = get_record(state, account_record_key(PREFIX_BRANCH, account))
    if value is not None and not isinstance(value, str):
        raise SchemaError(f"state branch of {account.hex()[:16]}…: expected a str")
    return value or ""


def set_branch_of(state: Overlay, account: bytes, branch: str) -> None:
    """Record the branch of a staff/admin account ("" forgets it)."""
    set_record(state, account_record_key(PREFIX_BRANCH, account), branch or None)


def get_earned(state: StateReader, account: bytes) -> int:
    """Return the account's lifetime earnings (earn, reward and compensation credits)."""
    value = get_record(state, account_record_key(PREFIX_EARNED, account))
    if value is not None and not (type(value) is int and value >= 0):
        raise SchemaError(f"state earnings of {account.hex()[:16]}…: expected a non-negative int")
    return value or 0


def _policy(state: StateReader, name: str) -> int:
    default = DEFAULT_POLICY[name]
    if type(default) is not int:
        raise TypeError(f"policy {name} default is not an int")
    return get_policy_int(state, name, default)


def get_tier(state: StateReader, account: bytes) -> str:
    """Return the account's tier from lifetime earnings and the policy thresholds: base..platinum."""
    earned = get_earned(state, account)
    for tier in reversed(TIERS[1:]):
        if earned >= _policy(state, f"tier_{tier}_threshold"):
            return tier
    return "base"


def get_tier_multiplier_pct(ctx: TxContext, account: bytes) -> int:
    """Return the earn multiplier (percent) of the account's tier."""
    return get_policy_value(ctx, f"tier_{get_tier(ctx.state, account)}_multiplier_pct")


def privilege_key(account: bytes, privilege: str) -> bytes:
    """State key of the expiry of ``account``'s ``privilege``."""
    code = PRIVILEGE_CODES.get(privilege)
    if code is None:
        raise SchemaError(f"unknown privilege {privilege!r}; expected one of {', '.join(PRIVILEGE_CODES)}")
    return account_record_key(PREFIX_PRIVILEGE, account) + bytes([code])


def get_privilege_expiry(state: StateReader, account: bytes, privilege: str) -> int:
    """Return when the account's ``privilege`` expires (0 if never bought)."""
    value = get_record(state, privilege_key(account, privilege))
    if value is not None and not (type(value) is int and value >= 0):
        raise SchemaError(f"state privilege {privilege} of {account.hex()[:16]}…: expected an int")
    return value or 0


def has_privilege(state: StateReader, account: bytes, privilege: str, now_ms: int) -> bool:
    """True iff the account holds ``privilege`` ("priority" | "vip") at ``now_ms``."""
    return get_privilege_expiry(state, account, privilege) > now_ms


# --- read views (node API, CLI, reports) ---------------------------------------------------------------------

EXPIRING_WINDOW_MS = 30 * DAY_MS  # "lots expiring in the next 30 days" in an account view


def get_coin_totals(state: StateReader) -> dict[str, int]:
    """Return the supply and its counters: minted, burned, expired and minted per credit source."""
    totals = {"supply": get_supply(state)}
    for name in ("minted", "burned", "expired", *(f"credited:{s}" for s in sorted(SOURCES))):
        totals[name] = get_counter(state, name)
    return totals


def get_account_view(state: StateReader, account: bytes, now_ms: int) -> dict[str, object]:
    """Return what a customer or agent sees of an account at ``now_ms`` (use the head block's time).

    ``balance`` is the spendable balance: lots dead at ``now_ms`` are never shown, swept or not.
    """
    customer = get_customer(state, account)
    freeze = get_freeze(state, account)
    return {
        "balance": get_spendable(state, account, now_ms),
        "nonce": get_account(state, account).nonce,
        "expiring": [[e, a] for e, a in get_expiring(state, account, now_ms, EXPIRING_WINDOW_MS)],
        "tier": get_tier(state, account),
        "lifetime_earned": get_earned(state, account),
        "privileges": {p: get_privilege_expiry(state, account, p) for p in PRIVILEGE_CODES
                       if has_privilege(state, account, p, now_ms)},
        "customer": None if customer is None else {
            "kyc_level": customer.kyc_level, "commitment": customer.commitment.hex(), "branch": customer.branch,
            "registered_at_ms": customer.registered_at_ms, "erased_at_ms": customer.erased_at_ms},
        "frozen": None if freeze is None else {"reason_code": freeze.reason_code, "height": freeze.height},
        "branch": get_branch_of(state, account),
        "has_second_factor": get_second_key(state, account) is not None,
    }
