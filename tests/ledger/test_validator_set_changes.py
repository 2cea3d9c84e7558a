"""Validator-set changes decided by governance, on a ledger-level chain: a change decided in block H is named by
header H+1 and seals from H+2; receipts before, between and after two changes verify with genesis only."""

from __future__ import annotations

import pytest

from ledger.block import make_seal, validator_set_hash
from ledger.chain import build_block, genesis_block, validate_block
from ledger.errors import InvalidBlock
from ledger.receipt import build_receipt, verify
from ledger.smt import MemoryNodes
from ledger.state import MemoryState
from ledger.tx import make_tx
from ledger.validator_sets import (
    get_pending_change, get_validator_info, get_validator_set_changes, get_validators_at,
)
from tests.ledger.governance_world import ADMINS, ALICE, ISSUER, make_gov_genesis
from tests.strategies import CHAIN_ID, VALIDATORS, key

NEW = key(70)  # the node key of an added branch
ALL_KEYS = {k.public_key: k for k in (*VALIDATORS, NEW)}


class SealedChain:
    """A chain kept like a node's store (state, headers, blocks, results, certificates), sealed by the set in force."""

    def __init__(self) -> None:
        self.genesis = make_gov_genesis()
        block, execution = genesis_block(self.genesis)
        self.state = MemoryState(execution.state_writes)
        self.nodes = MemoryNodes(execution.smt_nodes)
        self.headers = {0: block.header}
        self.blocks, self.results, self.certs = {0: block}, {0: []}, {0: ()}
        self.nonces: dict[bytes, int] = {}

    @property
    def height(self) -> int:
        return max(self.headers)

    def tx(self, sender, kind: str, payload: list):
        n = self.nonces[sender.public_key] = self.nonces.get(sender.public_key, 0) + 1
        return make_tx(CHAIN_ID, kind, sender, n, payload)

    def block(self, *txs):
        parent = self.headers[self.height]
        signers = get_validators_at(self.state, parent.height + 1)
        execution, rejected = build_block(self.state, self.nodes, parent, list(txs), parent.timestamp_ms + 1000,
                                          signers[0])
        assert not rejected, rejected
        assert all(r.status == 0 for r in execution.results), [r.reason for r in execution.results]
        validate_block(self.state, self.nodes, parent, execution.block, execution.header.timestamp_ms, 10**9)
        h = execution.header.height
        self.certs[h] = tuple(make_seal(ALL_KEYS[k], CHAIN_ID, h, execution.block.hash) for k in signers)
        self.state.apply(execution.state_writes)
        self.nodes.put_many(execution.smt_nodes)
        self.headers[h], self.blocks[h], self.results[h] = execution.header, execution.block, execution.results
        return execution

    # the store interface get_validator_set_changes reads
    def get_state(self, key: bytes):
        return self.state.get_state(key)

    def get_header(self, height: int):
        return self.headers[height]

    def get_certificate(self, height: int):
        return self.certs[height]

    def decide(self, action: str, args: list, pid: str, branches: int = 3):
        """Propose and approve by ``branches - 1`` admins in one block; the last approval decides in the next."""
        self.block(self.tx(ADMINS[0], f"propose-{action}", [pid, *args]),
                   *(self.tx(a, "approve-proposal", [pid]) for a in ADMINS[1:branches - 1]))
        return self.block(self.tx(ADMINS[branches - 1], "approve-proposal", [pid]))

    def receipt(self, height: int):
        return build_receipt(self.blocks[height], self.results[height], 0, self.certs[height],
                             get_validator_set_changes(self, height))


def test_a_change_decided_at_h_is_named_at_h_plus_1_and_in_force_at_h_plus_2():
    c = SealedChain()
    genesis_set = tuple(v.public_key for v in VALIDATORS)
    decided = c.decide("add-validator", ["branch-4", NEW.public_key, "ws://127.0.0.1:9/v1/peer"], "add")
    H = decided.header.height
    scheduled = [e for e in decided.results[0].events if e[0] == "validator_set_scheduled"]
    assert scheduled == [["validator_set_scheduled", "add", "branch-4", NEW.public_key, H + 2,
                          validator_set_hash(genesis_set + (NEW.public_key,))]]
    assert decided.header.validator_set_hash == decided.header.next_validator_set_hash == validator_set_hash(genesis_set)
    # answerable up to head + 2 from the state at head
    assert get_validators_at(c.state, H + 1) == genesis_set
    assert get_validators_at(c.state, H + 2) == genesis_set + (NEW.public_key,)
    assert get_pending_change(c.state).effective_height == H + 2
    assert get_validator_info(c.state)[-1] == ("branch-4", NEW.public_key, "ws://127.0.0.1:9/v1/peer")
    announce = c.block(c.tx(ISSUER, "mint", [ALICE.public_key, 1]))
    assert announce.header.validator_set_hash == validator_set_hash(genesis_set)
    assert announce.header.next_validator_set_hash == validator_set_hash(genesis_set + (NEW.public_key,))
    first = c.block(c.tx(ISSUER, "mint", [ALICE.public_key, 1]))
    assert first.header.validator_set_hash == validator_set_hash(genesis_set + (NEW.public_key,))
    assert get_pending_change(c.state) is None  # promoted when block H+2 executed


def test_a_second_change_while_one_is_pending_is_validator_change_pending():
    c = SealedChain()
    c.block(c.tx(ADMINS[0], "propose-add-validator", ["add", "branch-4", NEW.public_key, "ws://127.0.0.1:9/v1/peer"]),
            c.tx(ADMINS[0], "propose-remove-validator", ["rm", VALIDATORS[3].public_key]),
            c.tx(ADMINS[1], "approve-proposal", ["add"]), c.tx(ADMINS[1], "approve-proposal", ["rm"]))
    # In one block: the add is decided (branch-4 has no admin yet, so the quorum stays 3 of the 4 governing
    # branches), then the remove reaches its quorum while the add is pending: refused, by each approver
    parent = c.headers[c.height]
    execution, _ = build_block(c.state, c.nodes, parent, [c.tx(ADMINS[2], "approve-proposal", ["add"]),
                                                          c.tx(ADMINS[2], "approve-proposal", ["rm"]),
                                                          c.tx(ADMINS[3], "approve-proposal", ["rm"])],
                               parent.timestamp_ms + 1000, VALIDATORS[0].public_key)
    assert [r.reason for r in execution.results] == ["", "validator_change_pending", "validator_change_pending"]


def test_the_set_never_goes_below_one_member():
    from tests.ledger.governance_world import Gov
    g = Gov(branches=1)
    assert g.refused(ADMINS[0], "propose-remove-validator", ["p", VALIDATORS[0].public_key]) == "last_validator"
    assert g.refused(ADMINS[0], "propose-remove-validator", ["q", NEW.public_key]) == "unknown_validator"
    assert g.refused(ADMINS[0], "propose-add-validator", ["r", "branch-0", NEW.public_key, "ws://x"]) \
        == "validator_exists"
    assert g.refused(ADMINS[0], "propose-add-validator", ["s", "branch-9", NEW.public_key, ""]) == "invalid_address"


def test_a_header_naming_a_set_nobody_decided_is_refused():
    c = SealedChain()
    c.decide("add-validator", ["branch-4", NEW.public_key, "ws://127.0.0.1:9/v1/peer"], "add")
    parent = c.headers[c.height]
    execution, _ = build_block(c.state, c.nodes, parent, [], parent.timestamp_ms + 1000, VALIDATORS[0].public_key)
    from dataclasses import replace

    from ledger.block import Block
    forged = replace(execution.header, next_validator_set_hash=parent.validator_set_hash)  # hides the change
    with pytest.raises(InvalidBlock) as exc:
        validate_block(c.state, c.nodes, parent, Block(forged, execution.block.txs), forged.timestamp_ms, 10**9)
    assert exc.value.check == "next_validator_set_hash"


def test_receipts_before_between_and_after_two_changes_verify_with_genesis_only():
    c = SealedChain()
    before = c.block(c.tx(ISSUER, "mint", [ALICE.public_key, 1])).header.height
    c.decide("add-validator", ["branch-4", NEW.public_key, "ws://127.0.0.1:9/v1/peer"], "add")
    c.block(c.tx(ISSUER, "mint", [ALICE.public_key, 1]))  # H+1 announces
    between = c.block(c.tx(ISSUER, "mint", [ALICE.public_key, 1])).header.height  # sealed by the 5
    # 5 branches now, but branch-4 has no admin yet: the 4 governing branches decide with a quorum of 3
    c.decide("remove-validator", [VALIDATORS[1].public_key], "rm")
    c.block(c.tx(ISSUER, "mint", [ALICE.public_key, 1]))
    after = c.block(c.tx(ISSUER, "mint", [ALICE.public_key, 1])).header.height
    final = tuple(v.public_key for v in VALIDATORS if v != VALIDATORS[1]) + (NEW.public_key,)
    assert get_validators_at(c.state, after) == final
    changes = get_validator_set_changes(c, after + 1)
    assert [len(ch.validators) for ch in changes] == [5, 4]
    for height, count in ((before, 0), (between, 1), (after, 2)):
        receipt = c.receipt(height)
        assert len(receipt["validator_set_changes"]) == count
        assert verify(receipt, c.genesis).tx_hash  # only the genesis file is trusted
    # a receipt of the post-change block without the changes is refused
    bare = dict(c.receipt(after), validator_set_changes=[])
    with pytest.raises(Exception, match="validator_set_hash"):
        verify(bare, c.genesis)


def _gov_without_an_admin_in(branch_index: int):
    """A four-branch Gov whose branch ``branch_index`` has no admin (e.g. a branch added before its admin)."""
    import dataclasses

    from ledger.chain import genesis_state
    from ledger.state import Overlay
    from tests.ledger.governance_world import Gov
    g = Gov()
    roles = dict(g.genesis.roles)
    roles["branch-admin"] = tuple(k for k in roles["branch-admin"] if k != ADMINS[branch_index].public_key)
    g.genesis = dataclasses.replace(g.genesis, roles=roles)
    g.state = Overlay(MemoryState(genesis_state(g.genesis)))
    return g


def test_a_branch_without_an_admin_does_not_count_towards_the_quorum_so_governance_never_deadlocks():
    # The attack found on a live network: add a branch nobody administers, then remove one that has admins;
    # when every branch counted, the quorum then needed a branch that can never approve: no decision could
    # ever be taken again. Only branches with an admin govern.
    from ledger.proposals import get_governance_quorum
    g = _gov_without_an_admin_in(3)  # branches 0..2 have admins, branch-3 none
    assert get_governance_quorum(g.state) == (2, 3)  # ceil(2*3/3) of the three governing branches
    g.decide("remove-validator", [VALIDATORS[2].public_key], approvers=ADMINS[:2])
    g.tick()
    assert get_governance_quorum(g.state) == (2, 2)  # branches 0 and 1 still decide (2 of 2)
    g.decide("grant-role", [ISSUER.public_key, "branch-admin", "branch-3"], approvers=ADMINS[:2])
    assert get_governance_quorum(g.state) == (2, 3)  # branch-3 governs once its first admin is granted


def test_a_node_key_that_cannot_sign_or_an_address_nobody_can_dial_is_refused():
    from tests.ledger.governance_world import Gov
    g = Gov()
    for bogus in (b"\x00" * 32, b"\x01" + b"\x00" * 31):  # small-order points: no signature verifies under them
        assert g.refused(ADMINS[0], "propose-add-validator", ["k", "branch-9", bogus, "ws://127.0.0.1:9/v1/peer"]) \
            == "invalid_node_key"
    for address in ("garbage", "http://evil.example.com:80/x", "ws://:9/v1/peer", "ws://127.0.0.1:0/v1/peer",
                    "ws://127.0.0.1/v1/peer", "ws://127.0.0.1:9 /v1/peer"):
        assert g.refused(ADMINS[0], "propose-add-validator", ["a", "branch-9", NEW.public_key, address]) \
            == "invalid_address", address
    g.ok(ADMINS[0], "propose-add-validator", ["ok", "branch-9", NEW.public_key, "wss://branch9.example:443/v1/peer"])


def test_a_removed_branch_name_cannot_be_reused_to_bring_its_old_admins_back():
    from tests.ledger.governance_world import Gov
    g = Gov()
    g.decide("remove-validator", [VALIDATORS[3].public_key])
    g.tick()
    assert g.refused(ADMINS[0], "propose-add-validator", ["back", "branch-3", NEW.public_key,
                                                          "ws://127.0.0.1:9/v1/peer"]) == "branch_name_retired"
