"""An asyncio TCP proxy per directed peer link, with faults at websocket-frame level.

Theory of operation
-------------------
Node ``i``'s ``[[peers]]`` entry for node ``j`` points at ``LinkProxy(i, j)``, which forwards to ``j``'s real
peer listener. Every byte between validators (the peer websockets and the catch-up HTTP requests) therefore
crosses exactly one proxy, and the proxy can:

- **partition**: ``blocked`` links either *close* (abort both sockets at once, refuse new connections: the
  nodes see the loss at once and redial) or *blackhole* (stop forwarding and hold new connections: the
  nodes see silence until their heartbeat gives up; held bytes flow again on heal, like a stalled route);
- **delay** every chunk by ``delay_ms`` ± ``jitter_ms`` with the order kept (release times never decrease);
- **drop** and **duplicate** whole websocket messages. A TCP stream cannot lose or repeat bytes and stay a
  valid websocket, so both are done on complete data frames (the proxy parses frame headers after it has
  seen the ``101 Switching Protocols`` answer): a dropped frame vanishes whole, a duplicated one is sent
  twice byte for byte (a client frame keeps its mask). Control frames (ping/pong/close), the first two data
  frames in each direction (the peer handshake) and plain HTTP (catch-up) are never dropped or duplicated.

The proxy also reads what crosses it: every consensus frame is decoded and its vote recorded in the
``VoteAuditor``, which finds any validator that signed two different block hashes for one
(kind, height, round) — the "never sign a conflicting vote" promise, checked on the wire.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from collections import defaultdict
from dataclasses import dataclass, field

from consensus.messages import Commit, Prepare, Proposal
from consensus.wire import decode_message
from ledger import codec

HANDSHAKE_FRAMES = 2  # data frames per direction that belong to the peer handshake
CONNECT_TIMEOUT_S = 2.0
MAX_HELD_S = 60.0  # a blackholed connection is never held longer than this
READ_CHUNK = 65536


@dataclass(slots=True)
class LinkFaults:
    """The faults of one directed link now (mutated by the scenario runner)."""

    blocked: bool = False
    mode: str = "close"  # "close" | "blackhole" while blocked
    drop_p: float = 0.0
    dup_p: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0

    def clear(self) -> None:
        self.blocked, self.drop_p, self.dup_p, self.delay_ms, self.jitter_ms = False, 0.0, 0.0, 0.0, 0.0


@dataclass(slots=True)
class VoteAuditor:
    """Every PROPOSAL/PREPARE/COMMIT seen on any link: signer -> (kind, height, round) -> block hashes."""

    votes: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))
    decoded: int = 0
    undecodable: int = 0

    def observe(self, frame_payload: bytes) -> None:
        try:
            channel, payload = codec.decode(frame_payload)
        except Exception:
            return  # handshake or non-frame bytes: not ours to judge here
        if channel != "consensus":
            return
        try:
            msg = decode_message(payload)
        except Exception:
            self.undecodable += 1
            return
        self.decoded += 1
        if isinstance(msg, Proposal):
            self.votes[msg.signer][("PROPOSAL", msg.height, msg.round)].add(msg.block.hash)
        elif isinstance(msg, (Prepare, Commit)):
            kind = "PREPARE" if isinstance(msg, Prepare) else "COMMIT"
            self.votes[msg.signer][(kind, msg.height, msg.round)].add(msg.block_hash)

    def conflicts(self, signers: set[bytes] | None = None) -> list[dict]:
        """Every (signer, kind, height, round) with more than one block hash, for ``signers`` (default all)."""
        out = []
        for signer, slots in self.votes.items():
            if signers is not None and signer not in signers:
                continue
            for (kind, height, round_), hashes in slots.items():
                if len(hashes) > 1:
                    out.append({"signer": signer.hex()[:16], "kind": kind, "height": height, "round": round_,
                                "hashes": sorted(h.hex()[:16] for h in hashes)})
        return out


def parse_frames(buf: bytearray) -> list[tuple[bytes, int, bool, bytes]]:
    """Cut complete websocket frames off the front of ``buf``: (raw frame, opcode, fin, unmasked payload)."""
    out = []
    while len(buf) >= 2:
        b0, b1 = buf[0], buf[1]
        length, hdr = b1 & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                break
            length, hdr = struct.unpack_from(">H", buf, 2)[0], 4
        elif length == 127:
            if len(buf) < 10:
                break
            length, hdr = struct.unpack_from(">Q", buf, 2)[0], 10
        masked = bool(b1 & 0x80)
        mask = bytes(buf[hdr:hdr + 4]) if masked else b""
        start = hdr + (4 if masked else 0)
        total = start + length
        if len(buf) < total:
            break
        raw = bytes(buf[:total])
        payload = raw[start:]
        if masked and payload:
            key = (mask * (length // 4 + 1))[:length]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
        del buf[:total]
        out.append((raw, b0 & 0x0F, bool(b0 & 0x80), payload))
    return out


class _Flow:
    """One proxied TCP connection: two pumps (dialer->listener, listener->dialer), each with a delayed writer."""

    def __init__(self, proxy: "LinkProxy", c_reader, c_writer, s_reader, s_writer) -> None:
        self.proxy = proxy
        self.c_reader, self.c_writer, self.s_reader, self.s_writer = c_reader, c_writer, s_reader, s_writer
        self.upgraded = False
        self.tasks: list[asyncio.Task] = []
        self.closed = False

    def start(self) -> None:
        for reader, writer, upstream in ((self.c_reader, self.s_writer, True), (self.s_reader, self.c_writer, False)):
            queue: asyncio.Queue = asyncio.Queue()
            self.tasks.append(asyncio.create_task(self._pump(reader, queue, upstream)))
            self.tasks.append(asyncio.create_task(self._writer(writer, queue)))

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        for w in (self.c_writer, self.s_writer):
            try:
                w.transport.abort()
            except Exception:
                pass
        for t in self.tasks:
            t.cancel()
        self.proxy.flows.discard(self)

    async def _pump(self, reader: asyncio.StreamReader, queue: asyncio.Queue, upstream: bool) -> None:
        faults, rng = self.proxy.faults, self.proxy.rng
        header = bytearray()
        frames = bytearray()
        state = "http"  # http -> (frames | raw)
        data_frames = 0
        last_release = 0.0
        try:
            while True:
                chunk = await reader.read(READ_CHUNK)
                if not chunk:
                    break
                out: list[bytes] = []
                if state == "http" and upstream and self.upgraded:
                    state = "frames"
                if state == "http" and not upstream:
                    header += chunk
                    end = header.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    head, rest = bytes(header[:end + 4]), bytes(header[end + 4:])
                    out.append(head)
                    if b" 101 " in head.split(b"\r\n", 1)[0]:
                        self.upgraded, state = True, "frames"
                        frames += rest
                    else:
                        state = "raw"
                        if rest:
                            out.append(rest)
                elif state == "frames":
                    frames += chunk
                else:
                    out.append(chunk)
                if state == "frames" and frames:
                    for raw, opcode, fin, payload in parse_frames(frames):
                        if opcode == 0x2 and fin:
                            data_frames += 1
                            self.proxy.auditor.observe(payload)
                            if data_frames > HANDSHAKE_FRAMES:
                                if faults.drop_p and rng.random() < faults.drop_p:
                                    self.proxy.stats["dropped"] += 1
                                    continue
                                if faults.dup_p and rng.random() < faults.dup_p:
                                    self.proxy.stats["duplicated"] += 1
                                    out.append(raw)
                        out.append(raw)
                if not out:
                    continue
                delay = faults.delay_ms + (rng.uniform(-faults.jitter_ms, faults.jitter_ms) if faults.jitter_ms else 0)
                release = max(time.monotonic() + max(0.0, delay) / 1000.0, last_release)
                last_release = release
                queue.put_nowait((release, b"".join(out)))
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        finally:
            queue.put_nowait((0.0, None))

    async def _writer(self, writer: asyncio.StreamWriter, queue: asyncio.Queue) -> None:
        faults = self.proxy.faults
        try:
            while True:
                release, data = await queue.get()
                if data is None:
                    break
                wait = release - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                held_until = time.monotonic() + MAX_HELD_S
                while faults.blocked and faults.mode == "blackhole" and time.monotonic() < held_until:
                    await asyncio.sleep(0.05)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            raise
        self.abort()


class LinkProxy:
    """The proxy of the directed link ``src -> dst`` (``src`` dials ``dst`` through it)."""

    def __init__(self, src: int, dst: int, target_port: int, rng: random.Random, auditor: VoteAuditor) -> None:
        self.src, self.dst, self.target_port = src, dst, target_port
        self.rng, self.auditor = rng, auditor
        self.faults = LinkFaults()
        self.flows: set[_Flow] = set()
        self.stats: dict[str, int] = defaultdict(int)
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for flow in list(self.flows):
            flow.abort()

    def block(self, mode: str) -> None:
        self.faults.blocked, self.faults.mode = True, mode
        if mode == "close":
            for flow in list(self.flows):
                flow.abort()

    def unblock(self) -> None:
        self.faults.blocked = False

    def cut(self) -> None:
        """Close every live connection now (a TCP reset), without blocking new ones."""
        for flow in list(self.flows):
            flow.abort()

    async def _on_conn(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.stats["connections"] += 1
        if self.faults.blocked:
            if self.faults.mode == "close":
                self.stats["refused"] += 1
                c_writer.transport.abort()
                return
            deadline = time.monotonic() + MAX_HELD_S  # blackhole: hold the dialer in silence until heal
            while self.faults.blocked and time.monotonic() < deadline and not c_reader.at_eof():
                await asyncio.sleep(0.05)
            c_writer.transport.abort()
            return
        try:
            s_reader, s_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.target_port), CONNECT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError):
            self.stats["upstream_down"] += 1
            c_writer.transport.abort()
            return
        flow = _Flow(self, c_reader, c_writer, s_reader, s_writer)
        self.flows.add(flow)
        flow.start()


class ProxyMesh:
    """One ``LinkProxy`` per directed pair of ``n`` nodes, with partition and lossy-link controls."""

    def __init__(self, n: int, peer_ports: list[int], rng: random.Random) -> None:
        self.n = n
        self.auditor = VoteAuditor()
        self.links: dict[tuple[int, int], LinkProxy] = {
            (i, j): LinkProxy(i, j, peer_ports[j], random.Random(rng.random()), self.auditor)
            for i in range(n) for j in range(n) if i != j}

    async def start(self) -> None:
        for link in self.links.values():
            await link.start()

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()

    def port(self, src: int, dst: int) -> int:
        return self.links[(src, dst)].port

    def partition(self, groups: list[list[int]], mode: str = "close") -> None:
        """Block every link between two different groups (a node in no group is cut from everyone)."""
        where = {i: g for g, members in enumerate(groups) for i in members}
        for (i, j), link in self.links.items():
            if where.get(i, -1 - i) != where.get(j, -1 - j):
                link.block(mode)
            else:
                link.unblock()

    def set_lossy(self, drop_p: float, dup_p: float, delay_ms: float, jitter_ms: float,
                  nodes: set[int] | None = None) -> None:
        for (i, j), link in self.links.items():
            if nodes is None or i in nodes or j in nodes:
                f = link.faults
                f.drop_p, f.dup_p, f.delay_ms, f.jitter_ms = drop_p, dup_p, delay_ms, jitter_ms

    def cut_node(self, node: int) -> None:
        """Reset every connection to and from ``node`` (what the peers see when it dies)."""
        for (i, j), link in self.links.items():
            if node in (i, j):
                link.cut()

    def heal(self) -> None:
        for link in self.links.values():
            link.faults.clear()

    def stats(self) -> dict[str, int]:
        total: dict[str, int] = defaultdict(int)
        for link in self.links.values():
            for k, v in link.stats.items():
                total[k] += v
        return dict(total)
