"""portal.listeners: every server process listens on a socket of its own on one port, and the
kernel spreads a burst of connections over them (real sockets, real spawned processes)."""

from __future__ import annotations

import asyncio
import errno
import multiprocessing
import pickle
import socket
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler

import pytest

from devtools.ports import free_port
from portal import listeners


def _accept_and_count(listener: socket.socket, ready: Connection, done: Connection) -> None:
    """A spawned "worker": listen on the socket it was handed, count what it accepts. It stops
    once told the burst is over AND its accept queue is empty (every client connection was
    established, so queued, before it is told)."""
    listener.listen(128)
    listener.settimeout(0.2)
    ready.send(True)
    accepted = []
    while True:
        try:
            accepted.append(listener.accept()[0])
        except TimeoutError:
            if done.poll():
                break
    done.recv()
    done.send(len(accepted))


def test_each_spawned_process_gets_its_own_socket_and_a_share_of_the_connections() -> None:
    port = free_port()
    parent_socket = listeners.ReusePortListener("127.0.0.1", port)
    spawn = multiprocessing.get_context("spawn")  # as uvicorn's supervisor starts workers
    workers = []
    for _ in range(2):
        ready_here, ready_there = spawn.Pipe()
        done_here, done_there = spawn.Pipe()
        process = spawn.Process(target=_accept_and_count,
                                args=(parent_socket, ready_there, done_there))
        process.start()
        assert ready_here.poll(60) and ready_here.recv()
        workers.append((process, done_here))
    clients = []
    try:
        for _ in range(64):  # a burst, as a load balancer or wrk opens its connections
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        counts = []
        for process, done in workers:
            done.send(True)
            assert done.poll(30)
            counts.append(done.recv())
            process.join(30)
    finally:
        for client in clients:
            client.close()
        parent_socket.close()
    assert sum(counts) == 64
    # The 4-tuple hash spreads them: with one shared socket, one process took all 64.
    assert min(counts) >= 8, counts


def test_the_supervisor_socket_never_takes_a_connection() -> None:
    port = free_port()
    held = listeners.ReusePortListener("127.0.0.1", port)
    try:
        with socket.socket() as client:  # bound, never listening: refused, not queued
            assert client.connect_ex(("127.0.0.1", port)) != 0
    finally:
        held.close()


def test_a_pickled_listener_is_a_new_socket_on_the_same_port() -> None:
    port = free_port()
    held = listeners.ReusePortListener("127.0.0.1", port)
    try:
        copy = pickle.loads(bytes(ForkingPickler.dumps(held)))  # noqa: S301 (our own bytes)
        try:
            assert copy.fileno() != held.fileno()
            assert copy.getsockname() == ("127.0.0.1", port)
            assert copy.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        finally:
            copy.close()
    finally:
        held.close()


def test_a_port_held_without_reuseport_is_refused() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(OSError) as refused:
            listeners.bind("127.0.0.1", port)
        assert refused.value.errno == errno.EADDRINUSE


async def test_accepted_connections_send_small_responses_at_once() -> None:
    """asyncio sets TCP_NODELAY only on sockets whose proto says TCP; a socket made with proto 0
    left Nagle on and every small response waited ~40 ms for the client's delayed ACK."""
    sock = listeners.bind("127.0.0.1", free_port())
    nodelay: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = writer.get_extra_info("socket")
        nodelay.append(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(handle, sock=sock)
    try:
        _reader, writer = await asyncio.open_connection(*sock.getsockname())
        for _ in range(100):
            if nodelay:
                break
            await asyncio.sleep(0.02)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert nodelay == [1]
