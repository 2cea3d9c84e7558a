"""A privacy scanner for stopped nodes: find marker strings anywhere a node keeps or prints anything.

``scan_network`` walks, for every node of a ``tests.e2e.conftest.Network`` whose processes are stopped:

- every key and value of its LevelDB (read through plyvel, so compressed table files are searched too), and
  every string inside a value that decodes as msgpack (recursively: a ``bin`` holding msgpack is opened);
- every block (the header and each tx's body and payload), every result and every decoded event;
- every file under the node's directory (config, keys, LevelDB files, the WAL file, the vault's files: an
  encrypted record must not hold a marker in clear either);
- every line the node printed (the fixture sends stdout and stderr to one log file).

Each needle is looked for case-insensitively as utf-8, utf-16 (both byte orders), hex of its utf-8 bytes and
as a JSON-escaped string (``json.dumps`` writes "ë" as ``\\u00eb``). A hit names the place and the form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import msgpack
import plyvel

from ledger.events import decode_event
from ledger.storage import Store
from ledger.tx import decode_tx

MAX_NESTING = 8  # msgpack inside msgpack is opened this deep at most


@dataclass(frozen=True, slots=True)
class Hit:
    """One needle found in one place, in one form (utf-8, utf-16-le, hex, ...)."""

    needle: str
    place: str
    form: str


def compute_forms(needle: str) -> list[tuple[str, bytes]]:
    """The lowercase byte forms of ``needle`` searched in lowercased bytes (ASCII case folds both ways)."""
    low = needle.lower()
    return [("utf-8", low.encode("utf-8")), ("utf-16-le", low.encode("utf-16-le")),
            ("utf-16-be", low.encode("utf-16-be")), ("hex", needle.encode("utf-8").hex().encode()),
            ("json", json.dumps(low)[1:-1].encode())]


class Scanner:
    """Looks for ``needles`` in bytes and strings; collects ``Hit``s."""

    def __init__(self, needles: Iterable[str]) -> None:
        self.needles = [n for n in dict.fromkeys(needles) if n]
        self._forms = {n: compute_forms(n) for n in self.needles}
        self.hits: list[Hit] = []
        self.places = 0  # how many places were searched (a scan that looked nowhere proves nothing)

    def scan_bytes(self, place: str, data: bytes) -> None:
        self.places += 1
        low = data.lower()
        for needle, forms in self._forms.items():
            for form, pattern in forms:
                if pattern in low:
                    self.hits.append(Hit(needle, place, form))

    def scan_text(self, place: str, text: str) -> None:
        self.places += 1
        folded = text.casefold()
        for needle in self.needles:
            if needle.casefold() in folded:
                self.hits.append(Hit(needle, place, "str"))
        self.scan_bytes(place, text.encode("utf-8", "surrogatepass"))

    def scan_value(self, place: str, raw: bytes, depth: int = 0) -> None:
        """``raw`` itself, and every string and bin inside it when it decodes as msgpack."""
        self.scan_bytes(place, raw)
        if depth >= MAX_NESTING or len(raw) < 2:
            return
        try:
            obj = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        except Exception:  # noqa: BLE001 - not msgpack (or not all of it): the raw bytes were searched
            return
        for item in walk(obj):
            if isinstance(item, str):
                self.scan_text(place + " (msgpack str)", item)
            elif isinstance(item, bytes) and item != raw:
                self.scan_value(place + " (msgpack bin)", item, depth + 1)


def walk(obj) -> Iterator:
    """Every scalar inside nested lists/tuples/dicts (bounded: msgpack itself bounds the depth)."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            yield item


def scan_leveldb(scanner: Scanner, name: str, data_dir: Path) -> int:
    """Every key and value of the node's LevelDB; return how many entries were read."""
    db = plyvel.DB(str(data_dir), create_if_missing=False)
    count = 0
    try:
        for key, value in db.iterator():
            count += 1
            place = f"{name} leveldb {key[:1]!r} {key[1:].hex()[:24]}"
            scanner.scan_value(place + " key", key)
            scanner.scan_value(place + " value", value)
    finally:
        db.close()
    return count


def scan_chain(scanner: Scanner, name: str, data_dir: Path) -> int:
    """Every block (header, tx bodies and payloads), result and decoded event; return the head height."""
    with Store.open(data_dir, create=False) as store:
        head = store.head().height
        for h in range(head + 1):
            block = store.get_block(h)
            scanner.scan_text(f"{name} block {h} header", repr(block.header))
            for i, raw in enumerate(block.txs):
                tx = decode_tx(raw)
                scanner.scan_text(f"{name} block {h} tx {i} {tx.body.kind}", repr(tx.body))
                scanner.scan_value(f"{name} block {h} tx {i} raw", raw)
            for i, result in enumerate(store.get_results(h)):
                scanner.scan_text(f"{name} result {h}/{i}", repr(result))
                for event in result.events:
                    scanner.scan_text(f"{name} event {h}/{i} {event[0]}", repr(decode_event(event)))
    return head


def scan_files(scanner: Scanner, name: str, root: Path) -> int:
    """Every file under ``root`` (raw bytes); return how many files were read."""
    count = 0
    for path in sorted(root.rglob("*")):
        if path.is_file():
            count += 1
            scanner.scan_bytes(f"{name} file {path.relative_to(root)}", path.read_bytes())
    return count


def scan_log(scanner: Scanner, name: str, log: Path) -> int:
    """Every line the node printed; return how many lines were read."""
    lines = log.read_bytes().splitlines()
    for i, line in enumerate(lines, 1):
        scanner.scan_text(f"{name} log line {i}", line.decode("utf-8", "replace"))
        scanner.scan_bytes(f"{name} log line {i} (bytes)", line)
    return len(lines)


@dataclass(frozen=True, slots=True)
class NodeScan:
    """What was read of one node (so a test can check the scan looked somewhere)."""

    name: str
    leveldb_entries: int
    head: int
    files: int
    log_lines: int


def scan_node(scanner: Scanner, name: str, node_dir: Path, log: Path) -> NodeScan:
    data_dir = node_dir / "data"
    return NodeScan(name, scan_leveldb(scanner, name, data_dir), scan_chain(scanner, name, data_dir),
                    scan_files(scanner, name, node_dir), scan_log(scanner, name, log))
