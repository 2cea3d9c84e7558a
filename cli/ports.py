"""Free loopback ports for local networks (the demo, the benches, the tests).

A port is chosen *below* the kernel's ephemeral range: a port the kernel may hand out as the source port of any
outgoing connection (one node dialling another, a client, the test itself) can be taken between the moment it
was found free and the moment a node binds it, which made "address already in use" a rare start failure. Ports
below the range are only ever taken by an explicit bind. The base is drawn at random so that concurrent runs
seldom try the same ports, and every port is checked by binding it.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10_000  # below this sit well-known services and common development servers
DEFAULT_EPHEMERAL_LOW = 32_768  # Linux's default when the range cannot be read


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 unless the machine says otherwise)."""
    try:
        low = int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_LOW
    return low if low > LOWEST + 1_000 else DEFAULT_EPHEMERAL_LOW


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port_base(count: int, hosts: tuple[str, ...] = ("127.0.0.1",), rng: random.Random | None = None,
                   attempts: int = 200) -> int:
    """A base port with ``count`` consecutive ports free on every one of ``hosts``, below the ephemeral range."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    high = ephemeral_low() - count
    if high <= LOWEST:
        raise RuntimeError(f"no room for {count} ports between {LOWEST} and the ephemeral range")
    rng = rng or random.SystemRandom()
    for _ in range(attempts):
        base = rng.randrange(LOWEST, high)
        if all(port_is_free(base + i, host) for i in range(count) for host in hosts):
            return base
    raise RuntimeError(f"no {count} consecutive free loopback ports found in {attempts} tries")


def free_port(host: str = "127.0.0.1") -> int:
    """One free port below the ephemeral range."""
    return free_port_base(1, (host,))
