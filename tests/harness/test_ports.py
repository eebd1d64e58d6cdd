"""devtools.ports: a server's port comes from below the kernel's ephemeral range."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devtools import ports


def test_a_port_below_the_ephemeral_range_that_is_free() -> None:
    for _ in range(50):
        port = ports.free_port()
        assert ports.LOWEST <= port < ports.ephemeral_low()
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))


def test_the_range_is_read_from_the_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    fake = tmp_path / "ip_local_port_range"
    fake.write_text("40000\t60999\n")
    monkeypatch.setattr(ports, "RANGE_FILE", fake)
    assert ports.ephemeral_low() == 40000
    fake.write_text("garbage")
    assert ports.ephemeral_low() == 32768


def test_a_port_in_use_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports.free_port()))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(ports, "LOWEST", busy)
        monkeypatch.setattr(ports, "ephemeral_low", lambda: busy + 1)
        with pytest.raises(OSError, match="no free port"):
            ports.free_port()
