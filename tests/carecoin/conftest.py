"""A live one-validator node (its own thread, a loopback port) for the client library's tests."""

from __future__ import annotations

import pytest

from ledger.keys import KeyPair, save_key
from tests.node.live_node import LiveNode
from tests.node.local_chain import LocalChain


@pytest.fixture
def live(tmp_path):
    c = LocalChain(tmp_path / "db")
    c.store.close()
    node = LiveNode(c.node, c.genesis, tmp_path / "db")
    node.chain = c
    node.alice = KeyPair.generate()
    node.issuer_file = str(tmp_path / "issuer.key")
    node.alice_file = str(tmp_path / "alice.key")
    save_key(node.issuer_file, c.issuer)
    save_key(node.alice_file, node.alice)
    yield node
    node.close()
