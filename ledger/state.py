"""Ledger state: a key -> value map, its key layout, and a write overlay with per-transaction rollback.

Theory of operation
-------------------
State is a flat map of byte keys to canonical msgpack values (``ledger.codec``). The ``state_root`` in a
header is the sparse-Merkle root over this map, so every key and value here is part of consensus: the
layout below is a wire format — change it only with a new chain.

Key layout (one-byte prefix per kind; fixed-size keys where possible so prefix scans stay cheap):

    b"a" + account(32)            -> P([balance, nonce])       an account (absent = balance 0, nonce 0)
    b"r" + role_code(1) + acct(32) -> P(1)                     ``acct`` holds the role (absent = does not)
    b"s"                          -> P(total_supply)           coins in existence (absent = 0)
    b"p" + name(utf-8)            -> P(int | str)              a policy parameter (absent = code default)
    b"n" + name(utf-8)            -> P(int)                    a counter (minted, burned, expired,
                                                               policy_version, role:<role>, ...; absent = 0)
    b"l" + account(32)            -> P([[expires_at_ms, amount], ...])  coin lots, earliest expiry first;
                                                               their amounts sum to the account's balance
    b"c" + customer(32)           -> P([kyc, commitment, registered_by, branch, registered_at_ms, erased_at_ms])
    b"x" + account(32)            -> P(second_key: bin32)      the account's second-factor key
    b"f" + account(32)            -> P([reason_code, by, height])  a freeze (absent = not frozen)
    b"d" + account(32)            -> P([utc_day, outflow])     coins sent/redeemed on that UTC day
    b"e" + account(32)            -> P([lifetime, bucket_ms, [[bucket, amount], ...]])  earnings (earn, reward):
                                                               net lifetime total and the rolling tier window
    b"v" + account(32) + code(1)  -> P(expires_at_ms)          a bought privilege
    b"b" + account(32)            -> P(branch: str)            the branch a staff/admin account belongs to
    b"g" + version(8, big-endian) -> P([name, value, previous, height, sender])  a policy change
    b"k" + kind(1) + ...          -> coupons (``ledger.process.coupons``)
    b"q" + proposal_id(utf-8)     -> a governance proposal (``ledger.proposals``)
    b"u" + course_id(utf-8)       -> P(reward)                 a training course of the catalogue
    b"w" + which(1)               -> the validator set: current, pending change, history (``ledger.validator_sets``)
    b"h" + queue(1) + due_ms(8) + subject -> P(1)              a due-queue entry (``ledger.due``: expiry, SLA)
    b"i" + currency(utf-8)        -> P([rate, set_at_ms, set_by])  an FX rate set by treasury (``ledger.fx``)
    b"j" + account(32)            -> P(debt: int > 0)          coins owed after a refund (``ledger.debt``; absent = 0)
    b"m" + kind(1) + ...          -> campaigns: records, the active index, uses per customer (``ledger.campaigns``)
    b"C" + customer(32)           -> P([period_index, amount]) compensation paid to the customer in that period

Reserved for the customer-service flows (part B): b"o" orders, b"t" tickets, b"y" feedback, b"z" training.
Every key starts with a prefix from ``PREFIXES`` (a test checks this).

Typed getters and setters (accounts, lots, supply, counters, policy, outflow) go through the overlay's
decoded layer: a value is decoded at most once per block (``Overlay.get_parsed``), written in decoded form
(``set_parsed``: an immutable value plus its encoder) and encoded once, at the block end or when raw bytes
are read. Decode memos (``new_decode_memo``) map canonical bytes to decoded values across blocks; the
encoders seed them, so block N+1 reads what block N wrote without decoding it. None of this changes a
byte of state: the golden test (``tests/ledger/test_execution_golden.py``) pins the blocks of a workload.

Execution reads through an ``Overlay`` over any ``StateReader`` (the node's store, or a ``MemoryState``) and
collects writes in memory; nothing touches the base until the node commits the whole block. A transaction
takes a ``checkpoint()`` after its nonce bump and ``rollback()``s to it when a rule fails, so a failed
transaction leaves exactly one trace: its advanced nonce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Protocol


from ledger import codec
from ledger.errors import SchemaError
from ledger.genesis import ROLES
from ledger.types import Amount, Nonce

PREFIX_ACCOUNT = b"a"
PREFIX_ROLE = b"r"
PREFIX_SUPPLY = b"s"
PREFIX_POLICY = b"p"
PREFIX_COUNTER = b"n"
PREFIX_LOTS = b"l"
PREFIX_CUSTOMER = b"c"
PREFIX_SECOND_KEY = b"x"
PREFIX_FREEZE = b"f"
PREFIX_OUTFLOW = b"d"
PREFIX_EARNED = b"e"
PREFIX_PRIVILEGE = b"v"
PREFIX_BRANCH = b"b"
PREFIX_GOVERNANCE = b"g"
PREFIX_COUPON = b"k"
PREFIX_ORDER = b"o"
PREFIX_TICKET = b"t"
PREFIX_FEEDBACK = b"y"
PREFIX_TRAINING = b"z"
PREFIX_PROPOSAL = b"q"
PREFIX_COURSE = b"u"
PREFIX_VALIDATORS = b"w"
PREFIX_DUE = b"h"
PREFIX_FX = b"i"
PREFIX_DEBT = b"j"
PREFIX_CAMPAIGN = b"m"  # issue 12, campaigns
PREFIX_COMPENSATION = b"C"
PREFIXES: tuple[bytes, ...] = (
    PREFIX_ACCOUNT, PREFIX_ROLE, PREFIX_SUPPLY, PREFIX_POLICY, PREFIX_COUNTER, PREFIX_LOTS, PREFIX_CUSTOMER,
    PREFIX_SECOND_KEY, PREFIX_FREEZE, PREFIX_OUTFLOW, PREFIX_EARNED, PREFIX_PRIVILEGE, PREFIX_BRANCH,
    PREFIX_GOVERNANCE, PREFIX_COUPON, PREFIX_ORDER, PREFIX_TICKET, PREFIX_FEEDBACK, PREFIX_TRAINING,
    PREFIX_PROPOSAL, PREFIX_COURSE, PREFIX_VALIDATORS, PREFIX_DUE, PREFIX_FX, PREFIX_DEBT, PREFIX_CAMPAIGN,
    PREFIX_COMPENSATION,
)
if len(set(PREFIXES)) != len(PREFIXES):
    raise RuntimeError("ledger.state: a key prefix is used twice")

KEY_SUPPLY = PREFIX_SUPPLY
_PREFIX_SET = frozenset(PREFIXES)
UINT_MAX = 2**64 - 1  # the largest int the codec encodes

# Role codes are part of the key layout: append only.
ROLE_CODES: dict[str, int] = {"branch-admin": 1, "staff": 2, "issuer": 3, "compliance": 4, "auditor": 5,
                              "treasury": 6}
if set(ROLE_CODES) != set(ROLES):  # keep genesis.ROLES and the key layout in step
    raise RuntimeError(f"role codes {sorted(ROLE_CODES)} do not match genesis roles {sorted(ROLES)}")

_ROLE_PRESENT = codec.encode(1)


class StateReader(Protocol):
    """Anything that can read a state value: a ``Store``, a ``MemoryState``, an ``Overlay``.

    ``scan(start, stop, limit)`` returns at most ``limit`` ``(key, value)`` with ``start <= key < stop`` in key
    order; the block-time sweeps read their due queues with it (``ledger.due``).
    """

    def get_state(self, key: bytes) -> bytes | None: ...

    def scan(self, start: bytes, stop: bytes, limit: int) -> list[tuple[bytes, bytes]]: ...


@dataclass(frozen=True, slots=True)
class Account:
    """An account's coin balance (smallest unit) and the nonce of its last committed transaction."""

    balance: Amount = Amount(0)
    nonce: Nonce = Nonce(0)



# --- keys ----------------------------------------------------------------------------------------------


def account_key(account: bytes) -> bytes:
    """State key of an account's [balance, nonce]."""
    if type(account) is not bytes or len(account) != 32:
        _check_account(account)
    return PREFIX_ACCOUNT + account


def role_key(role: str, account: bytes) -> bytes:
    """State key recording that ``account`` holds ``role``."""
    code = ROLE_CODES.get(role)
    if code is None:
        raise SchemaError(f"unknown role {role!r}; expected one of {', '.join(ROLE_CODES)}")
    _check_account(account)
    return PREFIX_ROLE + bytes([code]) + account


def policy_key(name: str) -> bytes:
    """State key of the policy parameter ``name``."""
    try:
        return _POLICY_KEYS[name]  # hot path: policy keys are read several times per transaction
    except (KeyError, TypeError):
        return _new_named_key(PREFIX_POLICY, _POLICY_KEYS, "policy", name)


def counter_key(name: str) -> bytes:
    """State key of the counter ``name``."""
    try:
        return _COUNTER_KEYS[name]
    except (KeyError, TypeError):
        return _new_named_key(PREFIX_COUNTER, _COUNTER_KEYS, "counter", name)


_POLICY_KEYS: dict[str, bytes] = {}  # name -> key
_COUNTER_KEYS: dict[str, bytes] = {}


def _new_named_key(prefix: bytes, cache: dict[str, bytes], what: str, name: str) -> bytes:
    """Build (and remember, bounded) the key ``prefix + name`` after checking the name."""
    if not name or len(name) > 64:
        raise SchemaError(f"{what} name {name!r}: expected 1..64 chars")
    key = prefix + name.encode()
    if type(name) is str and len(cache) < 4096:
        cache[name] = key
    return key


def account_record_key(prefix: bytes, account: bytes) -> bytes:
    """State key of a per-account record: ``prefix`` (one of ``PREFIXES``) + the 32-byte account id."""
    if not (type(prefix) is bytes and prefix in _PREFIX_SET) and prefix not in PREFIXES:
        raise SchemaError(f"unknown state prefix {prefix!r}")
    if type(account) is not bytes or len(account) != 32:
        _check_account(account)
    return prefix + account


def _check_account(account: bytes) -> None:
    if not isinstance(account, bytes) or len(account) != 32:
        raise SchemaError(f"account id must be 32 bytes, got {account!r:.40}")


# --- readers -------------------------------------------------------------------------------------------


class MemoryState:
    """A dict-backed ``StateReader`` for tests and tools; ``apply`` takes a block's state writes."""

    __slots__ = ("data",)

    def __init__(self, data: Mapping[bytes, bytes] | None = None) -> None:
        self.data: dict[bytes, bytes] = dict(data or {})

    def get_state(self, key: bytes) -> bytes | None:
        """Return the value at ``key`` or None."""
        return self.data.get(key)

    def scan(self, start: bytes, stop: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """At most ``limit`` ``(key, value)`` with ``start <= key < stop``, in key order (O(size): tests and tools)."""
        return sorted((k, v) for k, v in self.data.items() if start <= k < stop)[:max(limit, 0)]

    def apply(self, writes: Mapping[bytes, bytes | None]) -> None:
        """Apply state writes (None deletes), as the store does when it commits a block."""
        for key, value in writes.items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) in key order."""
        return iter(sorted(self.data.items()))


_MISSING = object()
_packb = codec.fast_pack  # msgpack.packb without building a Packer per call (the same bytes)


class Overlay:
    """Reads through to ``base``, keeps writes in memory, and rolls back to a checkpoint in O(writes since).

    Besides raw bytes, typed getters and setters (accounts, lots, supply, counters, policy) read and write
    decoded values through ``get_parsed``/``set_parsed``: a value is decoded once per block and encoded once,
    when its bytes are needed (``get_state`` or ``get_changes``), not at every write of every transaction.
    """

    __slots__ = ("_base", "_writes", "_cache", "_journal", "_parsed")

    def __init__(self, base: StateReader) -> None:
        self._base = base
        # bytes, None (deleted), or (value, parse, encode) for a value written decoded (encoded when needed)
        self._writes: dict[bytes, object] = {}
        self._cache: dict[bytes, bytes | None] = {}  # base values already read (the base never changes under us)
        self._journal: list[tuple[bytes, object]] = []  # (key, previous write or _MISSING), for rollback
        self._parsed: dict[bytes, tuple[object, object]] = {}  # key -> (parse, parse(base value))

    def get_state(self, key: bytes) -> bytes | None:
        """Return the value of ``key`` as seen after the writes so far (None if absent)."""
        value = self._writes.get(key, _MISSING)
        if value is _MISSING:
            # ``_get_base`` inline (the hottest read of execution); a first read is a miss, not an exception
            value = self._cache.get(key, _MISSING)
            if value is _MISSING:
                value = self._cache[key] = self._base.get_state(key)
            return value  # type: ignore[return-value]
        if type(value) is tuple:
            raw = value[2](value[0])
            self._writes[key] = raw  # the same value, now in bytes (rollback restores older entries only)
            return raw
        return value  # type: ignore[return-value]

    def _get_base(self, key: bytes) -> bytes | None:
        value = self._cache.get(key, _MISSING)
        if value is _MISSING:
            value = self._cache[key] = self._base.get_state(key)
        return value  # type: ignore[return-value]

    def get_parsed(self, key: bytes, parse: Callable[[bytes], object]) -> object | None:
        """Return ``parse(bytes at key)`` (None when absent), decoding each base value once per overlay.

        ``parse`` must be a pure function of the bytes returning an immutable value.
        """
        value = self._writes.get(key, _MISSING)
        if value is _MISSING:
            hit = self._parsed.get(key)
            if hit is not None and hit[0] is parse:
                return hit[1]
            raw = self._cache.get(key, _MISSING)
            if raw is _MISSING:
                raw = self._cache[key] = self._base.get_state(key)
            parsed = None if raw is None else parse(raw)
            self._parsed[key] = (parse, parsed)
            return parsed
        if value is None:
            return None
        if type(value) is tuple:
            if value[1] is parse:
                return value[0]
            return parse(value[2](value[0]))
        return parse(value)  # type: ignore[arg-type]

    def scan(self, start: bytes, stop: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """At most ``limit`` ``(key, value)`` with ``start <= key < stop`` as seen after the writes so far."""
        writes = {k: self.get_state(k) for k in self._writes if start <= k < stop}
        return merge_scan(self._base, writes, start, stop, limit)

    def set_state(self, key: bytes, value: bytes | None) -> None:
        """Write ``value`` (canonical msgpack bytes) at ``key``; None deletes the key."""
        if value is not None and not isinstance(value, bytes):
            raise SchemaError(f"state value must be bytes or None, got {type(value).__name__}")
        self._journal.append((key, self._writes.get(key, _MISSING)))
        self._writes[key] = value

    def set_parsed(self, key: bytes, value: object, parse: Callable[[bytes], object],
                   encode: Callable[[object], bytes]) -> None:
        """Write the decoded ``value`` at ``key`` (None deletes); ``encode(value)`` runs once, when needed.

        ``value`` must be immutable, already checked to encode, and equal to ``parse(encode(value))``.
        """
        writes = self._writes
        self._journal.append((key, writes.get(key, _MISSING)))
        writes[key] = None if value is None else (value, parse, encode)

    def checkpoint(self) -> int:
        """Mark the current writes; ``rollback`` to the mark undoes everything written after it."""
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        """Undo every write made since ``checkpoint()`` returned ``mark``."""
        if not 0 <= mark <= len(self._journal):
            raise ValueError(f"checkpoint {mark} is outside 0..{len(self._journal)}")
        journal, writes = self._journal, self._writes
        while len(journal) > mark:
            key, previous = journal.pop()
            if previous is _MISSING:
                del writes[key]
            else:
                writes[key] = previous

    def get_changes(self) -> dict[bytes, bytes | None]:
        """Return the net writes against the base: keys whose value differs, None for deletions."""
        out: dict[bytes, bytes | None] = {}
        get_base = self._get_base
        for key, value in sorted(self._writes.items()):
            if type(value) is tuple:
                value = value[2](value[0])
            if value != get_base(key):
                out[key] = value  # type: ignore[assignment]
        return out


def merge_scan(base: StateReader, writes: Mapping[bytes, bytes | None], start: bytes, stop: bytes,
               limit: int) -> list[tuple[bytes, bytes]]:
    """``base.scan`` with pending ``writes`` (None deletes) laid over it; ``writes`` may hold keys out of range.

    At most ``len(writes in range)`` base entries can be hidden or replaced, so reading that many more from the
    base than ``limit`` is always enough.
    """
    if limit <= 0:
        return []
    pending = {k: v for k, v in writes.items() if start <= k < stop}
    merged = dict(base.scan(start, stop, limit + len(pending)))
    for key, value in pending.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return sorted(merged.items())[:limit]


def read_parsed(state: StateReader, key: bytes, parse: Callable[[bytes], object]) -> object | None:
    """Return ``parse(state value at key)`` or None when absent; an ``Overlay`` answers from its decoded cache."""
    if type(state) is Overlay:
        return state.get_parsed(key, parse)
    raw = state.get_state(key)
    return None if raw is None else parse(raw)


# --- typed getters and setters -------------------------------------------------------------------------


def _decode_int(raw: bytes, what: str) -> int:
    value = codec.decode(raw)
    if type(value) is not int or value < 0:
        raise SchemaError(f"state {what}: expected a non-negative int, got {value!r:.40}")
    return value


# --- decode memos: canonical bytes -> decoded value, shared by every overlay, seeded by the encoders -------
# A value written by block N is read back (as base state) by block N+1: the encoder that produced its bytes
# records the decoded value, so the next block never decodes it. Pure functions of the bytes: always safe.

_MEMO_MAX = 50_000
_DECODE_MEMOS: list[dict] = []


def new_decode_memo() -> dict:
    """Return a new bytes -> decoded value memo that ``clear_decode_caches`` empties."""
    memo: dict = {}
    _DECODE_MEMOS.append(memo)
    return memo


def remember(memo: dict, raw: bytes, value: object) -> None:
    """Record ``raw`` decodes to ``value`` in ``memo`` (bounded: a full memo starts afresh)."""
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[raw] = value


def clear_decode_caches() -> None:
    """Empty every decode memo (benchmarks start cold; never needed for correctness)."""
    for memo in _DECODE_MEMOS:
        memo.clear()


_INTS = new_decode_memo()  # non-negative ints (supply, counters)
_ACCOUNTS = new_decode_memo()
_POLICIES = new_decode_memo()


def _encode_int(value: int) -> bytes:
    raw = _packb(value)
    remember(_INTS, raw, value)
    return raw


def encode_checked(value: object) -> bytes:
    """Encode a value a typed setter already checked (non-negative 64-bit ints, arrays of them, no str/bin).

    For such values plain msgpack is canonical: the same bytes as ``codec.encode``, without its walk.
    """
    return _packb(value)


def _check_uint(*values: object) -> None:
    # Raise exactly what codec.encode would for a value it cannot encode (eagerly, at the write).
    for v in values:
        if type(v) is not int or not 0 <= v <= UINT_MAX:
            codec.encode(list(values))


def get_account(state: StateReader, account: bytes) -> Account:
    """Return the account's balance and nonce (zeroes for an account never seen)."""
    balance, nonce = get_balance_nonce(state, account)
    return Account(balance, nonce)


def get_balance_nonce(state: StateReader, account: bytes) -> tuple[int, int]:
    """Return the account's ``(balance, nonce)``, ``(0, 0)`` if never seen (``get_account`` for hot paths)."""
    key = PREFIX_ACCOUNT + account if type(account) is bytes and len(account) == 32 else account_key(account)
    if type(state) is Overlay:
        value = state.get_parsed(key, _decode_account)
    else:
        raw = state.get_state(key)
        value = None if raw is None else _decode_account(raw)
    return _ZERO_PAIR if value is None else value  # type: ignore[return-value]


_ZERO_PAIR = (0, 0)


def _decode_account(raw: bytes) -> tuple[int, int]:
    # A pure function of the bytes, so memoising it is safe; the encoder seeds the memo for the next block.
    pair = _ACCOUNTS.get(raw)
    if pair is None:
        value = codec.decode(raw)
        if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int and v >= 0 for v in value)):
            raise SchemaError(f"state account: expected [balance, nonce], got {value!r:.60}")
        pair = (value[0], value[1])
        remember(_ACCOUNTS, raw, pair)
    return pair


def set_account(state: Overlay, account: bytes, value: Account) -> None:
    """Store the account; an all-zero account is deleted so the state has one form for 'never seen'."""
    set_balance_nonce(state, account, value.balance, value.nonce)


def set_balance_nonce(state: Overlay, account: bytes, balance: int, nonce: int) -> None:
    """``set_account`` without an ``Account``: store ``[balance, nonce]``, deleting an all-zero account."""
    if balance < 0 or nonce < 0:
        raise SchemaError(f"account {account.hex()[:16]}…: balance {balance} and nonce {nonce} "
                          "must be non-negative")
    key = PREFIX_ACCOUNT + account if type(account) is bytes and len(account) == 32 else account_key(account)
    if balance == 0 and nonce == 0:
        state.set_state(key, None)
        return
    if type(balance) is not int or type(nonce) is not int or balance > UINT_MAX or nonce > UINT_MAX:
        codec.encode([balance, nonce])  # raises the codec's own error, at the write
    if type(state) is Overlay:
        state.set_parsed(key, (balance, nonce), _decode_account, _encode_account)
    else:
        state.set_state(key, codec.encode([balance, nonce]))


def _encode_account(pair: tuple[int, int]) -> bytes:
    raw = _packb(pair)
    remember(_ACCOUNTS, raw, pair)
    return raw


def get_balance(state: StateReader, account: bytes) -> int:
    """Return the account's balance in the smallest coin unit."""
    return get_balance_nonce(state, account)[0]


def get_nonce(state: StateReader, account: bytes) -> int:
    """Return the nonce of the account's last committed transaction (0 if none)."""
    return get_balance_nonce(state, account)[1]


def has_role(state: StateReader, role: str, account: bytes) -> bool:
    """True iff ``account`` holds ``role``."""
    return state.get_state(role_key(role, account)) is not None


def set_role(state: Overlay, role: str, account: bytes, present: bool) -> None:
    """Grant (``present=True``) or revoke ``role`` for ``account``, keeping the role's holder count."""
    if has_role(state, role, account) == present:
        return
    state.set_state(role_key(role, account), _ROLE_PRESENT if present else None)
    add_counter(state, role_count_name(role), 1 if present else -1)


def role_count_name(role: str) -> str:
    """Name of the counter of accounts holding ``role`` (genesis writes it; ``set_role`` keeps it)."""
    if role not in ROLE_CODES:
        raise SchemaError(f"unknown role {role!r}; expected one of {', '.join(ROLE_CODES)}")
    return f"role:{role}"


def get_role_count(state: StateReader, role: str) -> int:
    """Return how many accounts hold ``role``."""
    return get_counter(state, role_count_name(role))


def get_supply(state: StateReader) -> int:
    """Return the total coin supply."""
    value = read_parsed(state, KEY_SUPPLY, _parse_supply)
    return 0 if value is None else value  # type: ignore[return-value]


def _parse_supply(raw: bytes) -> int:
    value = _INTS.get(raw)
    if value is None:
        value = _decode_int(raw, "supply")
        remember(_INTS, raw, value)
    return value


def set_supply(state: Overlay, supply: int) -> None:
    """Store the total coin supply."""
    if supply < 0:
        raise SchemaError(f"total supply {supply} must be non-negative")
    _check_uint(supply)
    if type(state) is Overlay:
        state.set_parsed(KEY_SUPPLY, supply, _parse_supply, _encode_int)
    else:
        state.set_state(KEY_SUPPLY, codec.encode(supply))


def get_policy(state: StateReader, name: str, default: int | str) -> int | str:
    """Return the policy parameter ``name`` (``default`` when the chain never set it)."""
    value = read_parsed(state, policy_key(name), _parse_policy)
    if value is None:
        return default
    if value is _BAD_POLICY:
        value = codec.decode(state.get_state(policy_key(name)))  # type: ignore[arg-type]
        raise SchemaError(f"state policy {name}: expected an int or str, got {value!r:.40}")
    return value  # type: ignore[return-value]


_BAD_POLICY = object()


def _parse_policy(raw: bytes) -> object:
    value = _POLICIES.get(raw)
    if value is None:
        value = codec.decode(raw)
        value = value if type(value) in (int, str) else _BAD_POLICY
        remember(_POLICIES, raw, value)
    return value


def get_policy_int(state: StateReader, name: str, default: int) -> int:
    """Return the integer policy parameter ``name``; raise ``SchemaError`` if the chain stored a str."""
    key = policy_key(name)
    value = state.get_parsed(key, _parse_policy) if type(state) is Overlay else read_parsed(state, key, _parse_policy)
    if value is None:
        value = default
    elif value is _BAD_POLICY:
        value = get_policy(state, name, default)  # raises, naming the value
    if type(value) is not int:
        raise SchemaError(f"state policy {name}: expected an int, got {value!r:.40}")
    return value


def get_counter(state: StateReader, name: str) -> int:
    """Return the counter ``name`` (0 when never written)."""
    value = read_parsed(state, counter_key(name), _parse_counter)
    if value is _BAD_COUNTER:
        _decode_int(state.get_state(counter_key(name)), f"counter {name}")  # type: ignore[arg-type]  # raises
    return 0 if value is None else value  # type: ignore[return-value]


_BAD_COUNTER = object()


def _parse_counter(raw: bytes) -> object:
    value = _INTS.get(raw)
    if value is not None:
        return value
    value = codec.decode(raw)
    if type(value) is int and value >= 0:
        remember(_INTS, raw, value)
        return value
    return _BAD_COUNTER


def add_counter(state: Overlay, name: str, delta: int) -> int:
    """Add ``delta`` to the counter ``name`` and return the new value; a counter never goes below zero."""
    value = get_counter(state, name) + delta
    if value < 0:
        raise SchemaError(f"counter {name} would become {value}; counters are non-negative")
    key = counter_key(name)
    if value == 0:
        state.set_state(key, None)
    elif type(state) is Overlay:
        _check_uint(value)
        state.set_parsed(key, value, _parse_counter, _encode_int)
    else:
        state.set_state(key, codec.encode(value))
    return value


def get_record(state: StateReader, key: bytes) -> object | None:
    """Return the decoded value at ``key`` (None when absent); the caller checks its shape."""
    raw = state.get_state(key)
    return None if raw is None else codec.decode(raw)


def set_record(state: Overlay, key: bytes, value: object | None) -> None:
    """Store ``value`` canonically encoded at ``key``; None deletes the key."""
    state.set_state(key, None if value is None else codec.encode(value))
