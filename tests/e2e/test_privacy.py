"""Privacy on 4 real nodes: personal data reaches a branch vault, never a block or the state; erasure shreds it.

After a short story (two customers registered through two branches, their records replicated to every vault, an order, a ticket with free text,
one erasure), every node is stopped and its store is read directly: no block, result or state value holds
any registered personal data string (nor the ticket's text, which goes on chain only as a hash). The erased
customer's vault entry can no longer be decrypted while the other customer's still opens, and the
on-chain commitment and the registration receipt stay valid.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.customers import get_customer
from ledger.genesis import load_genesis
from ledger.receipt import verify as verify_receipt
from ledger.storage import Store
from node.vault import Vault, VaultErased, compute_commitment, compute_personal_data
from tests.e2e.conftest import Network
from tests.e2e.test_customer_story import Story, cli

CAROL = {"name": "Carol Schneider-Østergaard", "email": "carol.private@mailbox.example", "phone": "+49 30 9876 5432",
         "address": "Karl-Marx-Allee 93, 10243 Berlin"}
DAVE = {"name": "Dave Okonkwo", "email": "dave.o@inbox.example", "phone": "+234 803 555 0199"}
TICKET_TEXT = "my card ending 4242 was charged twice"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    network = Network(tmp_path_factory.mktemp("privacy-net"), 4)
    try:
        network.start_all()
        yield network
    finally:
        network.close()


def register(s: Story, who: str, staff_file: str, data: dict, node: int) -> dict:
    fields = [a for k, v in data.items() for a in ("--field", f"{k}={v}")]
    return json.loads(cli("customer", "register", "--key", staff_file, "--customer", s.keys[who].hex,
                          "--kyc-level", "1", *fields, "--node", s.net.apis[node], "--wait", "--json"))


def test_personal_data_never_reaches_a_block_or_the_state_and_erasure_shreds_the_vault_key(net, tmp_path):
    s = Story(net, tmp_path)
    carol, dave = s.new_key("carol"), s.new_key("dave")
    staff0 = str(net.dir / net.names[0] / "keys" / "staff.key")
    staff1 = str(net.dir / net.names[1] / "keys" / "staff.key")
    s.files["staff1"] = staff1
    reg_carol = register(s, "carol", staff0, CAROL, node=0)
    reg_dave = register(s, "dave", staff1, DAVE, node=1)
    assert reg_carol["outcome"] == reg_dave["outcome"] == "applied"

    # The commitment on chain opens with the vault's salt and data (before erasure).
    vault_doc = json.loads(cli("customer", "data", carol.hex, "--key", staff0, "--node", net.apis[0], "--json"))
    assert vault_doc["data"] == CAROL
    assert compute_commitment(bytes.fromhex(vault_doc["salt"]), compute_personal_data(CAROL)).hex() == \
        reg_carol["commitment"]
    # The vault is replicated: branch 2's node holds Carol's record too, and serves it to her branch's staff.
    def replicated() -> bool:
        result = CliRunner().invoke(main, ["customer", "data", carol.hex, "--key", staff0, "--node", net.apis[1],
                                           "--json"])
        return result.exit_code == 0 and json.loads(result.output)["data"] == CAROL
    net.wait_until("carol's record replicated to node 1", replicated, timeout_s=15)
    # And branch 2's staff may not read a branch-1 customer at all.
    other = CliRunner().invoke(main, ["customer", "data", carol.hex, "--key", staff1, "--node", net.apis[0]])
    assert other.exit_code == 3 and "403" in other.output and "wrong_branch" in other.output

    s.ok("mint", "issuer", "--to", carol.hex, "--amount", "500")
    s.ok("create-order", "staff", "--order-id", "P1", "--customer", carol.hex, "--fiat-amount", "4000")
    s.ok("pay-order", "carol", "--order-id", "P1", "--coins", "200", node=2)
    s.ok("open-ticket", "carol", "--ticket-id", "PT1", "--category", "complaint", "--order-id", "P1",
         "--content", TICKET_TEXT, node=3)
    s.ok("erase-customer-data", "carol", "--customer", carol.hex, node=2)

    # Node 0 sees the committed erasure and deletes Carol's key: the vault answers 410 from then on.
    def shredded() -> bool:
        result = CliRunner().invoke(main, ["customer", "data", carol.hex, "--key", staff0, "--node", net.apis[0]])
        return result.exit_code == 3 and "customer_erased" in result.output
    net.wait_until("carol's vault key shredded on node 0", shredded, timeout_s=10)
    record = s.read("customer", "show", carol.hex, node=3)
    assert record["erased"] and record["commitment"] == reg_carol["commitment"]
    genesis = load_genesis(net.dir / "genesis.json")
    _, receipt = net.get(0, f"/v1/tx/{reg_carol['tx_hash']}/receipt")
    assert verify_receipt(receipt, genesis).status == 0  # the registration receipt stays valid
    net.wait_height(range(4), s.read("status")["height"])

    net.close()  # stop every node: read their stores and vaults directly
    needles = [v.encode() for v in (*CAROL.values(), *DAVE.values(), TICKET_TEXT)]
    for name in net.names:
        data_dir = net.dir / name / "data"
        with Store.open(data_dir, create=False) as store:
            head = store.head().height
            chunks = []
            for h in range(head + 1):
                chunks.append(store.get_block(h).encode())
                chunks.extend(r.encode() for r in store.get_results(h))
            chunks.extend(value for _, value in store.iter_state())
            blob = b"\x00".join(chunks)
            for needle in needles:
                assert needle not in blob, (name, needle)
            assert get_customer(store, carol.public_key).erased
        vault_files = b"".join(p.read_bytes() for p in (data_dir / "vault").rglob("*") if p.is_file())
        for needle in needles:
            assert needle not in vault_files, (name, needle)

    for name in net.names:  # erasure shredded Carol's key on every node, replicas included
        with pytest.raises(VaultErased):
            Vault(net.dir / name / "data" / "vault").get(carol.public_key)
    assert Vault(net.dir / net.names[1] / "data" / "vault").get(dave.public_key)[0] == DAVE
