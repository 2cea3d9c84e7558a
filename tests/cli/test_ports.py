"""Free ports for local networks are found below the kernel's ephemeral range, and really free."""

import random
import socket

import pytest

from cli import ports


def test_a_base_lies_below_the_ephemeral_range_and_every_port_of_it_binds():
    for _ in range(20):
        base = ports.free_port_base(8)
        assert ports.LOWEST <= base and base + 8 <= ports.ephemeral_low()
        for port in range(base, base + 8):
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_handed_out(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        busy.listen()
        assert not ports.port_is_free(taken)

        free = ports.free_port_base(2)

        class Fixed(random.Random):
            picks = [taken, taken - 1, free]  # the first two would hand out the busy port

            def randrange(self, *_):
                return self.picks.pop(0)

        monkeypatch.setattr(ports, "ephemeral_low", lambda: 65_000)
        assert ports.free_port_base(2, rng=Fixed(), attempts=3) == free


def test_an_unreadable_or_odd_range_falls_back_to_the_linux_default(monkeypatch, tmp_path):
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE_FILE", tmp_path / "missing")
    assert ports.ephemeral_low() == 32_768
    odd = tmp_path / "range"
    odd.write_text("1024\t65535\n")
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE_FILE", odd)
    assert ports.ephemeral_low() == 32_768
    odd.write_text("40000\t60999\n")
    assert ports.ephemeral_low() == 40_000


def test_no_free_base_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(ports, "port_is_free", lambda port, host="127.0.0.1": False)
    with pytest.raises(RuntimeError, match="no 4 consecutive free loopback ports found in 3 tries"):
        ports.free_port_base(4, attempts=3)
    with pytest.raises(ValueError, match="count must be at least 1, got 0"):
        ports.free_port_base(0)
