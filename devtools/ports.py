"""A loopback port for a server a test (or bench) starts in another process.

Binding port 0 hands out a port from the kernel's ephemeral range
(`/proc/sys/net/ipv4/ip_local_port_range`, 32768-60999 by default) and releases it when the
probe closes; between that and the server's own bind, any outgoing connection on the machine
(a client to PostgreSQL, another test's httpx) may be given the same port, and the server then
dies with `EADDRINUSE` (CI saw it once in ~2,000 tests). Ports below the ephemeral range are
never handed to outgoing connections, so a free one stays free unless another server binds it:
`free_port()` draws one at random from below the range and checks it is free.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 20000
RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 when the file cannot be read)."""
    try:
        return int(RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` below the ephemeral range that nothing listens on now.

    Raises `OSError` when 200 random draws all found a port in use."""
    top = ephemeral_low()
    low = LOWEST if top > LOWEST else 1024
    draw = random.SystemRandom()
    for _ in range(200):
        port = draw.randrange(low, top)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {low}..{top - 1} on {host}")
