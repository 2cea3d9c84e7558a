"""The events sink: committed events written to SQL (SQLite embedded, or PostgreSQL) for BI tools.

Theory of operation
-------------------
``node.toml`` ``[sink] url = "sqlite:///PATH"`` (a relative PATH resolves against the node.toml's directory; no
``url`` = ``<data_dir>/events.sqlite3``) or ``url = "postgresql://user@host:port/db"`` (driver ``psycopg``, the
``sink`` extra). Without a ``[sink]`` section there is no sink. The follower (``SinkFollower``) reads the
committed blocks after the sink's own cursor (kept in the database, table ``carecoin_sink_cursor``), turns
their events into rows and writes a batch of blocks and the new cursor in **one transaction** on a worker
thread: a node that stops at any point resumes at the cursor, and rows are inserted with ``ON CONFLICT (id) DO
NOTHING`` (``id`` = the event id ``height:index:event``), so writing a block twice changes nothing. It never
runs on the consensus task (a commit only wakes it) and a database that is down delays only the sink: the
follower retries every ``RETRY_S`` and logs.

Tables and the view (the same on both databases)::

    carecoin_events(id PK, height, tx_index, event_index, tx_hash, time_ms, day 'YYYY-MM-DD' UTC, kind,
                    branch, accounts 'hex,hex', amount (NULL when the event has none), fields JSON text)
    carecoin_sink_cursor(name PK, height)
    carecoin_daily(day, branch, kind, events, amount)   -- a view: events and amounts per UTC day, branch, kind

``branch`` is the event's own branch field, else its ticket's or order's, else its first named account's
(``node.event_feed``), read from the state when the row is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any, Callable

from node.event_feed import CommittedEvent, get_event_records, read_block_events
from node.read_access import get_account_branch

log = logging.getLogger("carecoin.sink")

BATCH_BLOCKS = 200
PERIOD_S = 1.0
RETRY_S = 2.0
COLUMNS = ("id", "height", "tx_index", "event_index", "tx_hash", "time_ms", "day", "kind", "branch", "accounts",
           "amount", "fields")
_TABLES = (
    "CREATE TABLE IF NOT EXISTS carecoin_events (id TEXT PRIMARY KEY, height BIGINT NOT NULL, tx_index INTEGER "
    "NOT NULL, event_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, time_ms BIGINT NOT NULL, day TEXT NOT NULL, "
    "kind TEXT NOT NULL, branch TEXT NOT NULL, accounts TEXT NOT NULL, amount BIGINT, fields TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS carecoin_events_day ON carecoin_events (day, branch, kind)",
    "CREATE TABLE IF NOT EXISTS carecoin_sink_cursor (name TEXT PRIMARY KEY, height BIGINT NOT NULL)",
)
_VIEW = ("carecoin_daily AS SELECT day, branch, kind, COUNT(*) AS events, COALESCE(SUM(amount), 0) AS amount "
         "FROM carecoin_events GROUP BY day, branch, kind")


def compute_row(store: Any, event: CommittedEvent) -> tuple:
    """The ``carecoin_events`` row of one committed event."""
    ev = event.event
    branch = getattr(ev, "branch", "")
    if not isinstance(branch, str) or not branch:
        branch = next((r.branch for r in get_event_records(store, ev) if r.branch), "")
    accounts = ev.accounts()
    if not branch:
        branch = next((b for b in map(lambda a: get_account_branch(store, a), accounts) if b), "")
    day = dt.datetime.fromtimestamp(event.time_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d")
    return (str(event.id), event.id.height, event.id.index, event.id.event, event.tx_hash.hex(), event.time_ms, day,
            event.kind, branch, ",".join(a.hex() for a in accounts), event.amount(),
            json.dumps(event.fields(), separators=(",", ":")))


class SqlSink:
    """One database connection: create the schema, read the cursor, write a batch (one transaction)."""

    placeholder = "?"

    def __init__(self, connect: Callable[[], Any], view_ddl: str) -> None:
        self.connect, self.view_ddl = connect, view_ddl
        self.conn: Any = None

    def open(self) -> None:
        if self.conn is not None:
            return
        self.conn = self.connect()
        with self._transaction() as cur:
            for ddl in _TABLES:
                cur.execute(ddl)
            cur.execute(self.view_ddl + _VIEW)

    @contextlib.contextmanager
    def _transaction(self):
        cur = self.conn.cursor()
        try:
            yield cur
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        finally:
            cur.close()

    def cursor_height(self) -> int:
        self.open()
        with self._transaction() as cur:
            cur.execute(f"SELECT height FROM carecoin_sink_cursor WHERE name = {self.placeholder}", ("events",))
            row = cur.fetchone()
        return row[0] if row else 0

    def write(self, rows: list[tuple], height: int) -> None:
        """Insert ``rows`` (idempotent per event id) and move the cursor to ``height``, atomically."""
        self.open()
        p = self.placeholder
        with self._transaction() as cur:
            if rows:
                cur.executemany(f"INSERT INTO carecoin_events ({', '.join(COLUMNS)}) VALUES "
                                f"({', '.join([p] * len(COLUMNS))}) ON CONFLICT (id) DO NOTHING", rows)
            cur.execute(f"INSERT INTO carecoin_sink_cursor (name, height) VALUES ({p}, {p}) ON CONFLICT (name) "
                        "DO UPDATE SET height = excluded.height", ("events", height))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def open_sink(url: str) -> SqlSink:
    """The sink of ``url``: ``sqlite:///PATH`` or ``postgresql://...`` (``postgres://`` too)."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqlSink(lambda: sqlite3.connect(path, check_same_thread=False), "CREATE VIEW IF NOT EXISTS ")
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg  # the ``sink`` extra: imported only by a node whose sink is PostgreSQL

        sink = SqlSink(lambda: psycopg.connect(url, connect_timeout=5), "CREATE OR REPLACE VIEW ")
        sink.placeholder = "%s"
        return sink
    raise ValueError(f"sink url {url[:40]!r}: expected sqlite:///PATH or postgresql://...")


class SinkFollower:
    """Writes committed events to ``sink`` from its cursor on (see the module docstring)."""

    def __init__(self, store: Any, sink: SqlSink, on_written: Callable[[int], None] = lambda n: None) -> None:
        self.store, self.sink, self.on_written = store, sink, on_written
        self.height: int | None = None  # the sink's cursor, once read
        self._wake: asyncio.Event | None = None

    def on_commit(self, height: int, results: list) -> None:
        if self._wake is not None:
            self._wake.set()

    async def step(self) -> bool:
        """Write the next batch of blocks; False when the sink is at the head."""
        if self.height is None:
            self.height = await asyncio.to_thread(self.sink.cursor_height)
        head = self.store.head().height
        if self.height >= head:
            return False
        stop = min(head, self.height + BATCH_BLOCKS)
        rows = [compute_row(self.store, e) for h in range(self.height + 1, stop + 1)
                for e in read_block_events(self.store, h)]
        await asyncio.to_thread(self.sink.write, rows, stop)
        self.height = stop
        self.on_written(len(rows))
        return True

    async def run(self, is_closed: Callable[[], bool]) -> None:
        """Follow commits until cancelled or the store closes."""
        self._wake = asyncio.Event()
        while not is_closed():
            self._wake.clear()
            try:
                while await self.step():
                    if is_closed():
                        return
                delay = PERIOD_S
            except Exception as exc:  # a database down or refusing: retry, never stop the node
                log.warning("events sink: %s: %s; retrying in %.0f s", type(exc).__name__, exc, RETRY_S)
                self.height = None
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.sink.close)
                delay = RETRY_S
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
