"""Shared test builders and hypothesis strategies: deterministic keys, genesis files, tx payloads."""

from __future__ import annotations

from hypothesis import strategies as st

from ledger.genesis import Genesis, Validator
from ledger.keys import KeyPair

CHAIN_ID = "carecoin-test"
GENESIS_TIME_MS = 1_700_000_000_000


def key(i: int) -> KeyPair:
    """A deterministic key pair: ``key(i)`` is the same in every test run."""
    if not 0 <= i < 256:
        raise ValueError(f"key index {i} outside 0..255")
    return KeyPair.from_seed(bytes([i]) * 31 + b"\x01")


VALIDATORS = tuple(key(i) for i in range(4))
ISSUER = key(10)
ALICE = key(11)
BOB = key(12)
CAROL = key(13)


ADMIN = key(14)  # a branch admin
STAFF = key(15)
COMPLIANCE = key(16)
SECOND = key(17)  # a second-factor key


def make_genesis(*, issuers: tuple[KeyPair, ...] = (ISSUER,), policy: dict | None = None,
                 chain_id: str = CHAIN_ID, validators: tuple[KeyPair, ...] = VALIDATORS,
                 roles: dict[str, tuple[KeyPair, ...]] | None = None) -> Genesis:
    """A genesis with four validators, the given issuers, other ``roles`` and policy overrides."""
    all_roles = {"issuer": tuple(k.public_key for k in issuers)}
    all_roles.update({role: tuple(k.public_key for k in keys) for role, keys in (roles or {}).items()})
    return Genesis(
        chain_id=chain_id,
        genesis_time_ms=GENESIS_TIME_MS,
        validators=tuple(Validator(f"branch-{i}", k.public_key) for i, k in enumerate(validators)),
        roles=all_roles,
        policy=dict(policy or {}),
    )


#: every role held by one account each: the usual cast of the coin tests
CAST_ROLES = {"branch-admin": (ADMIN,), "staff": (STAFF,), "compliance": (COMPLIANCE,)}


# --- strategies --------------------------------------------------------------------------------------------

account_ids = st.binary(min_size=32, max_size=32)
#: amounts around the interesting edges: negative, zero, small, and large enough to hit caps and balances
amounts = st.one_of(st.integers(min_value=-5, max_value=0), st.integers(min_value=1, max_value=400),
                    st.integers(min_value=2**40, max_value=2**63))
memos = st.binary(min_size=32, max_size=32)  # transfer memo commitments (the text stays off chain)
#: payloads with a wrong shape for any kind: wrong arity or wrong field types
bad_payload_fields = st.one_of(st.integers(), st.text(max_size=4), st.binary(max_size=40))


# --- a coin world for the pure process tests ----------------------------------------------------------------

NOW_MS = GENESIS_TIME_MS + 1_000  # a block time in the tests of single steps


def coin_state(policy: dict | None = None, roles: dict[str, tuple[KeyPair, ...]] | None = None):
    """A state overlay on a genesis with the usual cast (``CAST_ROLES`` unless ``roles``) and policy overrides."""
    from ledger.chain import genesis_state
    from ledger.state import MemoryState, Overlay

    genesis = make_genesis(policy=policy, roles=CAST_ROLES if roles is None else roles)
    return Overlay(MemoryState(genesis_state(genesis)))


def coin_ctx(state, sender: KeyPair, *cosigners: KeyPair, ts: int = NOW_MS, height: int = 1):
    """A ``TxContext`` for ``sender`` (plus second-factor ``cosigners``) in a block at ``ts``."""
    from ledger.process.common import TxContext

    signers = (sender.public_key,) + tuple(k.public_key for k in cosigners)
    return TxContext(state, sender.public_key, signers, b"\x00" * 32, height, ts)


def fund(state, account: KeyPair | bytes, amount: int, ts: int = NOW_MS, source: str = "mint") -> list[list]:
    """Credit ``amount`` new coins to ``account`` at block time ``ts`` (a lot expiring a lifetime later)."""
    from ledger.lots import credit

    who = account if isinstance(account, bytes) else account.public_key
    return credit(coin_ctx(state, ISSUER, ts=ts), who, amount, source)


def register(state, customer: KeyPair, kyc_level: int = 1) -> None:
    """Register ``customer`` directly in state, as ``STAFF`` would: in STAFF's branch (the register-customer kind
    has its own tests)."""
    from ledger.customers import Customer, get_branch_of, set_customer

    branch = get_branch_of(state, STAFF.public_key) or "north"
    set_customer(state, Customer(customer.public_key, kyc_level, b"\x11" * 32, STAFF.public_key, branch, NOW_MS))


def refusal(step, ctx, tx):
    """Run a ``process_*`` step that must fail; return its ``Reason`` (and the message, for detail checks)."""
    import pytest

    from ledger.reasons import TxFailure

    with pytest.raises(TxFailure) as exc:
        step(ctx, tx)
    return exc.value.reason
