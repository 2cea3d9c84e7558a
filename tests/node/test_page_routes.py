"""The page's routes without a browser: ``/`` serves the page with a same-origin-only content security policy,
every file it loads is served with its type, nothing else is (no path outside node/static/), and the page loads
nothing from another origin (no CDN)."""

from __future__ import annotations

import re

import pytest
import pytest_asyncio

from node.app import create_node_app
from node.page import STATIC_DIR, list_files
from node.service import NodeService
from ledger.storage import Store
from tests.node.local_chain import LocalChain
from tests.node.test_service import FAST


@pytest_asyncio.fixture
async def client(aiohttp_client, tmp_path):
    chain = LocalChain(tmp_path / "db")
    chain.store.close()
    svc = NodeService(key=chain.node, genesis=chain.genesis, store=Store.open(tmp_path / "db"), options=FAST)
    client = await aiohttp_client(create_node_app(svc))
    yield client
    await client.close()
    svc.close()


@pytest.mark.asyncio
async def test_the_page_is_served_at_the_root_with_a_same_origin_only_policy(client):
    resp = await client.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    policy = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "<h2>Verify a receipt</h2>" in await resp.text()


@pytest.mark.asyncio
async def test_every_file_the_page_loads_is_served_with_its_type(client):
    html = (STATIC_DIR / "index.html").read_text()
    loaded = set(re.findall(r'(?:src|href)="/static/([^"]+)"', html))
    for script in STATIC_DIR.glob("*.js"):
        loaded |= set(re.findall(r'from "\./([^"]+)"', script.read_text()))
    assert loaded == {"ui.js", "api.js", "verify.js", "style.css"} and loaded <= set(list_files())
    for name in loaded:
        resp = await client.get(f"/static/{name}")
        assert resp.status == 200, name
        assert resp.content_type == ("text/css" if name.endswith(".css") else "text/javascript")
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["nothing.js", "index.html", "..%2Fpage.py", "%2e%2e%2fpage.py", "page.py",
                                  "UI.JS", ".hidden.js"])
async def test_a_name_that_is_not_one_of_the_pages_files_is_not_found(client, name):
    resp = await client.get(f"/static/{name}")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


def test_the_page_loads_nothing_from_another_origin():
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), f"{path.name} names another origin"
        assert "import(" not in text.replace('import("./', ""), f"{path.name} imports dynamically"
