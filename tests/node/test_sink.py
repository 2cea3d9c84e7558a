"""The events sink: committed events in SQL (embedded SQLite, and a real PostgreSQL server started here), a view
BI tools read, one row per event id however often a block is written, resumed from its cursor after a restart.
"""

from __future__ import annotations

import itertools
import sqlite3

import pytest

from ledger.storage import Store
from node.config import config_from_dict
from node.errors import ConfigError
from node.service import NodeService
from node.sink import SinkFollower, compute_row, open_sink
from node.event_feed import read_block_events
from tests.node.events_helpers import commit
from tests.node.pg_server import PgServer, find_pg_bin
from tests.node.test_read_access import build_chain
from tests.node.test_service import FAST
from tests.strategies import ALICE, ISSUER, VALIDATORS

_db_numbers = itertools.count()


@pytest.fixture(scope="module")
def pg():
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb); `make test` installs the "
                    "postgresql package with apt-get")
    pytest.importorskip("psycopg", reason="the sink extra (psycopg) is not installed: pip install -e '.[sink]'")
    server = PgServer(bin_dir)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def sink_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sink' / 'events.sqlite3'}"
    server = request.getfixturevalue("pg")
    import psycopg

    name = f"sink_{next(_db_numbers)}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def svc(tmp_path):
    built = build_chain(tmp_path / "db")
    node = NodeService(key=VALIDATORS[0], genesis=built["genesis"], store=Store.open(tmp_path / "db"), options=FAST)
    yield node
    node.close()


def query(url: str, sql: str) -> list[tuple]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///"):]) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    import psycopg

    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


async def drain(follower: SinkFollower) -> None:
    for _ in range(100):
        if not await follower.step():
            return
    raise AssertionError("the sink never caught up")


@pytest.mark.asyncio
async def test_every_committed_event_is_one_row_and_the_daily_view_sums_them(svc, sink_url):
    sink = open_sink(sink_url)
    written = []
    await drain(SinkFollower(svc.store, sink, on_written=written.append))
    sink.close()
    rows = query(sink_url, "SELECT id, kind, branch, amount FROM carecoin_events ORDER BY height, tx_index, "
                           "event_index")
    assert [r[0] for r in rows] == ["1:0:0", "1:1:0", "2:0:0", "3:0:0", "4:0:0", "4:0:1", "5:0:0"]
    assert rows[1][1:3] == ("customer_registered", "branch-2") and rows[2][1:] == ("credited", "branch-1", 100)
    assert sum(written) == 7
    daily = query(sink_url, "SELECT branch, kind, events, amount FROM carecoin_daily WHERE kind = 'credited'")
    assert daily == [("branch-1", "credited", 1, 100)]
    assert query(sink_url, "SELECT height FROM carecoin_sink_cursor") == [(5,)]


@pytest.mark.asyncio
async def test_a_block_written_twice_adds_no_row_and_a_restarted_sink_goes_on_from_its_cursor(svc, sink_url):
    sink = open_sink(sink_url)
    await drain(SinkFollower(svc.store, sink))
    again = [compute_row(svc.store, e) for e in read_block_events(svc.store, 2)]
    sink.write(again, 2)  # a replay of block 2 (as after a crash between the write and a cursor read)
    sink.close()
    commit(svc, (ISSUER, "mint", [ALICE.public_key, 40]))
    reopened = open_sink(sink_url)
    follower = SinkFollower(svc.store, reopened)
    await drain(follower)
    reopened.close()
    assert query(sink_url, "SELECT COUNT(*), COUNT(DISTINCT id) FROM carecoin_events") == [(8, 8)]
    assert query(sink_url, "SELECT amount FROM carecoin_daily WHERE kind = 'credited'") == [(140,)]
    assert follower.height == 6


def test_node_toml_sink_section_defaults_to_sqlite_in_the_data_dir_and_refuses_other_urls(tmp_path):
    base = {"node": {"name": "b1", "data_dir": "data"}, "api": {"port": 1}, "peer": {"port": 2}}
    assert config_from_dict(base, tmp_path / "node.toml").sink_url is None
    cfg = config_from_dict({**base, "sink": {}}, tmp_path / "node.toml")
    assert cfg.sink_url == f"sqlite:///{(tmp_path / 'data' / 'events.sqlite3').resolve()}"
    cfg = config_from_dict({**base, "sink": {"url": "postgresql://bi@127.0.0.1:5432/carecoin"}}, tmp_path / "node.toml")
    assert cfg.sink_url == "postgresql://bi@127.0.0.1:5432/carecoin"
    with pytest.raises(ConfigError, match="sink.url must be sqlite:///PATH or postgresql://"):
        config_from_dict({**base, "sink": {"url": "mysql://x"}}, tmp_path / "node.toml")
