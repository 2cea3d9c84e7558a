"""Browser tests of the page at ``/``: Playwright for Python driving Debian's Chromium (headless), against a node
served on 127.0.0.1 (a secure context: WebCrypto is available) whose chain holds a customer story.

Run with ``make test-browser`` (marker ``browser``; ``make test`` leaves them out). Screenshots go to
``artifacts/`` (gitignored). Playwright is imported inside the fixtures so ``make test`` collects this directory
without it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ledger.keys import KeyPair, save_key
from tests.node.live_node import LiveNode
from tests.node.local_chain import LocalChain, play_story

CHROMIUM = os.environ.get("CARECOIN_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
WAIT_MS = 20_000  # the longest a page step may take before the test fails


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (make test-browser does)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


class Story:
    """A node serving a one-branch chain with Alice's order and ticket; her key and the genesis as files."""

    def __init__(self, tmp: Path) -> None:
        self.chain = LocalChain(tmp / "db")
        story = play_story(self.chain)
        self.chain.store.close()
        self.alice: KeyPair = story["alice"]
        self.clerk: KeyPair = story["clerk"]
        self.node = LiveNode(self.chain.node, self.chain.genesis, tmp / "db")
        self.url = self.node.url
        self.alice_key = tmp / "alice.key"
        save_key(self.alice_key, self.alice)
        self.clerk_key = tmp / "clerk.key"
        save_key(self.clerk_key, self.clerk)
        self.genesis_file = tmp / "genesis.json"
        self.genesis_file.write_text(json.dumps(self.chain.genesis.to_json(), indent=2))


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    s = Story(tmp_path_factory.mktemp("page"))
    yield s
    s.node.close()


@pytest.fixture
def page(browser, story):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
