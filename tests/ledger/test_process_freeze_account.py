"""process_freeze_account / process_unfreeze_account: compliance freezes and lifts freezes, with reason codes."""

from __future__ import annotations

import pytest

from ledger import reasons
from ledger.limits import get_freeze
from ledger.errors import InvalidTransaction
from ledger.events import AccountFrozen, AccountUnfrozen
from ledger.process import compute_payload
from ledger.process.compliance import (
    FreezeChange, process_freeze_account,
    process_unfreeze_account,
)
from tests.strategies import ALICE, COMPLIANCE, STAFF, coin_ctx, coin_state, refusal


def frozen_state():
    state = coin_state()
    process_freeze_account(coin_ctx(state, COMPLIANCE, height=4), FreezeChange(ALICE.public_key, "aml-review"))
    return state


def test_compliance_freezes_an_account_and_the_record_keeps_why_and_who():
    state = coin_state()
    events = process_freeze_account(coin_ctx(state, COMPLIANCE, height=4), FreezeChange(ALICE.public_key, "aml-1"))
    assert events == [AccountFrozen(ALICE.public_key, "aml-1")]
    freeze = get_freeze(state, ALICE.public_key)
    assert (freeze.reason_code, freeze.frozen_by, freeze.height) == ("aml-1", COMPLIANCE.public_key, 4)


def test_freeze_by_non_compliance_is_unauthorized():
    assert refusal(process_freeze_account, coin_ctx(coin_state(), STAFF), FreezeChange(ALICE.public_key, "x")) \
        is reasons.UNAUTHORIZED


@pytest.mark.parametrize("code", ["", "r" * 65])
def test_freeze_without_a_usable_reason_code_is_invalid_name(code):
    assert refusal(process_freeze_account, coin_ctx(coin_state(), COMPLIANCE), FreezeChange(ALICE.public_key, code)) \
        is reasons.INVALID_NAME


def test_freezing_a_frozen_account_is_already_frozen_and_keeps_the_first_reason():
    state = frozen_state()
    assert refusal(process_freeze_account, coin_ctx(state, COMPLIANCE), FreezeChange(ALICE.public_key, "other")) \
        is reasons.ALREADY_FROZEN
    assert get_freeze(state, ALICE.public_key).reason_code == "aml-review"


def test_compliance_unfreezes_a_frozen_account():
    state = frozen_state()
    events = process_unfreeze_account(coin_ctx(state, COMPLIANCE), FreezeChange(ALICE.public_key, "cleared"))
    assert events == [AccountUnfrozen(ALICE.public_key, "cleared")]
    assert get_freeze(state, ALICE.public_key) is None


def test_unfreeze_by_non_compliance_is_unauthorized():
    assert refusal(process_unfreeze_account, coin_ctx(frozen_state(), ALICE), FreezeChange(ALICE.public_key, "x")) \
        is reasons.UNAUTHORIZED


def test_unfreeze_without_a_reason_code_is_invalid_name():
    assert refusal(process_unfreeze_account, coin_ctx(frozen_state(), COMPLIANCE), FreezeChange(ALICE.public_key, "")) \
        is reasons.INVALID_NAME


def test_unfreezing_an_active_account_is_not_frozen():
    assert refusal(process_unfreeze_account, coin_ctx(coin_state(), COMPLIANCE), FreezeChange(ALICE.public_key, "x")) \
        is reasons.NOT_FROZEN


@pytest.mark.parametrize("kind", ["freeze-account", "unfreeze-account"])
@pytest.mark.parametrize("payload", [[ALICE.public_key], [ALICE.public_key, 3], [ALICE.public_key[:8], "x"]])
def test_malformed_freeze_payload_is_bad_payload(kind, payload):
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload(kind, payload)
    assert exc.value.code == "bad_payload"


@pytest.mark.parametrize("kind", ["freeze-account", "unfreeze-account"])
@pytest.mark.parametrize("code", ["chargeback by Zoë Lindqvist", "Fraud_Check", "zoe@example.test", "a\nb",
                                  "fraud check"])
def test_a_reason_code_holding_free_text_is_bad_payload_and_never_echoed(kind, code):
    """Free text in a reason code would stay on chain for good (no erasure reaches a block): it is refused
    before admission, and the refusal does not repeat it."""
    with pytest.raises(InvalidTransaction) as exc:
        compute_payload(kind, [ALICE.public_key, code])
    assert exc.value.code == "bad_payload" and "not a code" in str(exc.value) and code not in str(exc.value)


@pytest.mark.parametrize("code", ["fraud_check", "aml-review", "aml-1", "kyc:expired", "x", "v1.2"])
def test_reason_codes_of_code_characters_reach_the_step(code):
    assert compute_payload("freeze-account", [ALICE.public_key, code]).reason_code == code
