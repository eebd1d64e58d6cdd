"""One listening socket per server process, all on one port (``SO_REUSEPORT``).

uvicorn's ``--workers`` binds one socket in its supervisor and hands it to every worker, so
the workers share one accept queue and the one that wakes first takes every pending
connection (asyncio accepts up to the backlog at once). A burst of new connections — a load
balancer opening its pool, ``wrk`` starting 64 — then lands entirely in one process: the other
idles, and its per-process caches (``catalog.list_cache``) stay cold for the next burst that
lands there (``bench/catalog.py``: all 64 connections in one of two processes, half the
throughput, p99 150 ms while the cold process computed every page again).

With ``SO_REUSEPORT`` (Linux ``socket(7)``: "incoming connections and datagrams are distributed
to the server sockets using a hash based on the 4-tuple of the connection") each worker listens
on a socket of its own, bound to the same address, and the kernel spreads new connections over
them. The supervisor keeps a bound, never-listening ``ReusePortListener`` (it holds the port and
is what uvicorn's ``Multiprocess`` hands to each worker); pickled into a spawned worker it
becomes a new socket bound the same way (:func:`bind`), which uvicorn then listens on. Only
sockets of the same effective user may join the port (``socket(7)``), and ``caas serve``
refuses a port another socket holds before binding (``portal.startup.check_port``).

Public API: ``ReusePortListener(host, port)``; ``bind(host, port) -> socket.socket``.
"""

from __future__ import annotations

import socket
from typing import Any


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` with ``SO_REUSEADDR`` and ``SO_REUSEPORT``, not yet
    listening. Its protocol is stated (``IPPROTO_TCP``, not 0): asyncio sets ``TCP_NODELAY`` only
    on accepted sockets whose ``proto`` says TCP, and without it every small response waited
    ~40 ms for the client's delayed ACK (Nagle). Raises ``OSError`` (``EADDRINUSE``) when a
    socket without ``SO_REUSEPORT``, or of another user, holds the address."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class ReusePortListener(socket.socket):
    """The supervisor's socket on ``(host, port)``: bound with ``SO_REUSEPORT``, never listening
    (so the kernel never queues a connection on it). Pickling it (multiprocessing's spawn, as
    uvicorn passes sockets to its workers) yields a fresh socket from :func:`bind` in the
    receiving process — one accept queue per worker — rather than a duplicate of this one."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.address = (host, port)
        try:
            self.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            self.bind(self.address)
        except OSError:
            self.close()
            raise

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return bind, self.address
