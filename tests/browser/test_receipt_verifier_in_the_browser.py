"""The page's receipt verifier (node/static/verify.js, run in Chromium) against ledger/receipt.py: on every receipt
of a corpus — valid ones of several tree sizes and after validator-set changes, and one tampered receipt per
check — the browser's answer is the Python verifier's answer, the same failing check by name."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from ledger.block import CommitSeal
from ledger.errors import ReceiptError
from ledger.genesis import Genesis
from ledger.receipt import build_receipt, verify
from ledger.validator_sets import ValidatorSetChange
from tests.ledger.test_receipt import SIZES, TAMPERS
from tests.ledger.test_validator_sets import MID, NEW, OLD, receipt_at, resealed, with_entry
from tests.receipt_fixtures import customer_key, make_chain, make_change, make_genesis, validator_keys

pytestmark = pytest.mark.browser

# Every check a receipt can fail (ledger/receipt.py, ledger/validator_sets.py): the corpus must hit each one.
EVERY_CHECK = {
    "format", "version", "chain_id", "tx_hash", "tx_signature", "envelope_hash", "result", "events", "block_hash",
    "leaf_index", "audit_path", "validator_set_hash", "commit_unknown_validator", "commit_duplicate_validator",
    "commit_signature", "commit_quorum", "validator_set_change_order", "validator_set_change_chain_id",
    "validator_set_change_height", "validator_set_change_set_hash", "validator_set_change_validators",
    "validator_set_change_next_hash", "validator_set_change_no_change", "validator_set_change_unknown_validator",
    "validator_set_change_duplicate_validator", "validator_set_change_signature", "validator_set_change_quorum",
}


def python_answer(receipt: dict, genesis: Genesis) -> str:
    try:
        verify(receipt, genesis)
    except ReceiptError as exc:
        return exc.check
    return "valid"


def corpus() -> list[tuple[str, dict, Genesis]]:
    cases: list[tuple[str, dict, Genesis]] = []
    genesis = make_genesis()
    chain = make_chain(SIZES)
    for sb in chain:  # every index of every tree size
        for i in range(sb.block.header.tx_count):
            cases.append((f"valid {i} of {sb.block.header.tx_count}", build_receipt(sb.block, sb.results, i, sb.seals[:3]),
                          genesis))
    base = build_receipt(chain[4].block, chain[4].results, 4, chain[4].seals[:3])
    for name, (mutate, _) in TAMPERS.items():
        receipt = copy.deepcopy(base)
        mutate(receipt)
        cases.append((name, receipt, genesis))
    cases.append(("another network's genesis", base, make_genesis(chain_id="carecoin-other")))
    cases.append(("another validator set", base, make_genesis(validator_keys(5))))
    for key in ("tx", "commit", "header"):
        cases.append((f"missing {key}", {k: v for k, v in base.items() if k != key}, genesis))
    cases.append(("upper-case hex", {**base, "tx_hash": base["tx_hash"].upper()}, genesis))
    cases.append(("not an object", ["a list"], genesis))

    walk_genesis = make_genesis(OLD)
    walk = [make_change(3, OLD, MID, signers=3), make_change(6, MID, NEW, signers=4)]
    seal = walk[0].commit[1]
    above = receipt_at(5, MID, walk[:1])
    above["validator_set_changes"].append(walk[1].to_json())
    walked = {
        "after two changes": receipt_at(9, NEW, walk),
        "after one change": receipt_at(5, MID, walk[:1]),
        "changes reordered": receipt_at(9, NEW, walk[::-1]),
        "change of another chain": receipt_at(5, MID, [make_change(3, OLD, MID, chain_id="carecoin-elsewhere")]),
        "change above the receipt": above,
        "change skipping the first": receipt_at(9, NEW, [make_change(6, MID, NEW, signers=4)]),
        "change listing other validators": receipt_at(9, NEW, [ValidatorSetChange(
            walk[0].header, walk[0].header_raw, walk[0].commit, tuple(k.public_key for k in NEW))]),
        "change that changes nothing": receipt_at(5, OLD, [make_change(3, OLD, OLD)]),
        "change repeating a key": receipt_at(5, MID, [make_change(3, OLD, [MID[0], MID[0], MID[1]])]),
        "change below quorum": receipt_at(5, MID, [make_change(3, OLD, MID, signers=2)]),
        "change sealed twice by one": receipt_at(5, MID, [ValidatorSetChange(
            walk[0].header, walk[0].header_raw, walk[0].commit[:2] + walk[0].commit[:1], walk[0].validators)]),
        "change sealed by the incoming set": receipt_at(5, MID, [resealed(walk[0], MID[:4])]),
        "change with a forged seal": receipt_at(5, MID, [ValidatorSetChange(
            walk[0].header, walk[0].header_raw, (walk[0].commit[0], CommitSeal(seal.validator, bytes(64)),
                                                 walk[0].commit[2]), walk[0].validators)]),
        "change header edited": receipt_at(5, MID, [with_entry(walk[0], timestamp_ms=walk[0].header.timestamp_ms + 1)]),
        "old set sealing after the change": receipt_at(5, OLD, walk[:1]),
        "change omitted": receipt_at(5, MID, []),
        "new set below quorum": receipt_at(5, MID, walk[:1], signers=3),
    }
    cases.extend((name, receipt, walk_genesis) for name, receipt in walked.items())
    return cases


def test_the_browser_verifier_gives_the_python_verifiers_answer_on_every_receipt_of_the_corpus(page, story):
    cases = corpus()
    expected = {name: python_answer(receipt, genesis) for name, receipt, genesis in cases}
    assert set(expected.values()) >= EVERY_CHECK | {"valid"}, EVERY_CHECK - set(expected.values())
    page.goto(story.url + "/")
    answers = page.evaluate("""async (cases) => {
        const v = await import("/static/verify.js");
        const out = {};
        for (const [name, receipt, genesisText] of cases) {
            try { await v.verifyReceipt(receipt, await v.parseGenesis(genesisText)); out[name] = "valid"; }
            catch (e) { out[name] = e.check || `exception: ${e}`; }
        }
        return out;
    }""", [[name, receipt, json.dumps(genesis.to_json())] for name, receipt, genesis in cases])
    wrong = {name: (answers.get(name), expected[name]) for name in expected if answers.get(name) != expected[name]}
    assert not wrong, f"browser vs Python (name: (browser, python)): {wrong}"


def test_the_browser_refuses_signatures_libsodium_refuses(page, story):
    """WebCrypto alone would accept a small-order public key; the page refuses what the nodes refuse."""
    page.goto(story.url + "/")
    small_order = ["00" * 32, "01" + "00" * 31, "ec" + "ff" * 30 + "7f"]
    answers = page.evaluate("""async (keys) => {
        const v = await import("/static/verify.js");
        const out = [];
        for (const k of keys) out.push(await v.ed25519Verify(v.fromHex(k, "k", 32), new Uint8Array(32),
                                                                v.fromHex("01" + "00".repeat(63), "s", 64)));
        return out;
    }""", small_order)
    assert answers == [False, False, False]
    good = customer_key(1)
    ok = page.evaluate("""async ([pk, sig]) => {
        const v = await import("/static/verify.js");
        return await v.ed25519Verify(v.fromHex(pk, "pk", 32), new Uint8Array(32), v.fromHex(sig, "sig", 64));
    }""", [good.public_key.hex(), good.sign(bytes(32)).hex()])
    assert ok is True
