"""The block pipeline of a (not started) single-validator service: cached executions answer only for the
very block they executed."""

from __future__ import annotations

from consensus.events import RequestBlock, ValidateBlock
from ledger.block import Block
from ledger.keys import KeyPair
from ledger.tx import make_tx
from tests.node.test_service import CHAIN, keys, open_service  # noqa: F401


def test_a_corrupted_copy_with_the_honest_header_never_rides_on_the_honest_copys_verdict(tmp_path, keys):  # noqa: F811
    svc = open_service(tmp_path / "db", *keys)
    _, issuer = keys
    try:
        for nonce in (1, 2):
            svc.admission.submit_tx(make_tx(CHAIN, "mint", issuer, nonce, [KeyPair.generate().public_key, 5]).raw)
        honest = svc.pipeline.process_request_block(RequestBlock(1, 0)).block  # built here: its execution is cached
        assert len(honest.txs) == 2
        swapped = Block(honest.header, honest.txs[::-1])
        forged = Block(honest.header, (honest.txs[0], make_tx(CHAIN, "mint", issuer, 2, [issuer.public_key, 9]).raw))
        for corrupted in (swapped, forged):
            assert corrupted.hash == honest.hash  # the header hash alone cannot tell the copies apart
            verdict = svc.pipeline.process_validate_block(ValidateBlock(1, corrupted))
            assert not verdict.valid and verdict.reason, verdict
        assert svc.pipeline.process_validate_block(ValidateBlock(1, honest)).valid
    finally:
        svc.close()
