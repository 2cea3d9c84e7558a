"""Signed reads for the in-process API tests: the headers a reader's key adds (``node.vault``'s request
signature over chain id, method, path with its query, time and body hash), each with a fresh time stamp."""

from __future__ import annotations

import time
from typing import Any

from yarl import URL

from ledger.keys import KeyPair
from node.vault import compute_request_headers

_last_stamp = [0]


def next_stamp_ms() -> int:
    """Now in ms, at least 1 ms after the previous stamp this process handed out (no two requests alike)."""
    _last_stamp[0] = max(int(time.time() * 1000), _last_stamp[0] + 1)
    return _last_stamp[0]


def read_headers(key: KeyPair, chain: str, path_qs: str, method: str = "GET", body: bytes = b"") -> dict[str, str]:
    """The three signature headers of one request by ``key``."""
    return compute_request_headers(key, chain, method, path_qs, body, next_stamp_ms())


def signed_url(client: Any, path: str, params: dict | None = None) -> tuple[URL, str]:
    """(the relative URL to request, the raw path + query the node will see and the signature must cover)."""
    url = URL(path) if params is None else URL(path).with_query(params)
    return url, client.make_url(url).raw_path_qs


async def signed_get(client: Any, path: str, key: KeyPair, chain: str, params: dict | None = None,
                     headers: dict | None = None) -> Any:
    """GET ``path`` (with ``params``) signed by ``key``: the aiohttp response."""
    url, raw = signed_url(client, path, params)
    return await client.get(url, headers={**read_headers(key, chain, raw), **(headers or {})})
