"""Fixtures of the node tests: ``story`` is a LocalChain that already holds a customer story."""

from __future__ import annotations

import pytest

from tests.node.local_chain import LocalChain, play_story


@pytest.fixture
def story(tmp_path):
    c = LocalChain(tmp_path / "db")
    s = play_story(c)
    yield c, s
    c.store.close()
