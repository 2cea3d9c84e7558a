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


def make_genesis(*, issuers: tuple[KeyPair, ...] = (ISSUER,), policy: dict | None = None,
                 chain_id: str = CHAIN_ID, validators: tuple[KeyPair, ...] = VALIDATORS) -> Genesis:
    """A genesis with four validators, the given issuers and policy overrides."""
    return Genesis(
        chain_id=chain_id,
        genesis_time_ms=GENESIS_TIME_MS,
        validators=tuple(Validator(f"branch-{i}", k.public_key) for i, k in enumerate(validators)),
        roles={"issuer": tuple(k.public_key for k in issuers)},
        policy=dict(policy or {}),
    )


# --- strategies --------------------------------------------------------------------------------------------

account_ids = st.binary(min_size=32, max_size=32)
#: amounts around the interesting edges: negative, zero, small, and large enough to hit caps and balances
amounts = st.one_of(st.integers(min_value=-5, max_value=0), st.integers(min_value=1, max_value=400),
                    st.integers(min_value=2**40, max_value=2**63))
memos = st.one_of(st.text(max_size=20), st.text(min_size=139, max_size=142))
#: payloads with a wrong shape for any kind: wrong arity or wrong field types
bad_payload_fields = st.one_of(st.integers(), st.text(max_size=4), st.binary(max_size=40))
