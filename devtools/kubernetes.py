"""kmock's Kubernetes emulator plus what a real API server does for server-side apply.

kmock stores objects and merges PATCH bodies, but a PATCH of a missing object is a 404 there,
while a real API server *creates* the object on an apply patch
(``application/apply-patch+yaml``). This subclass adds exactly that, and writes kubeconfigs
that point the official client at the emulator; :func:`running_emulator` serves one outside
pytest (the benches).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml

APPLY_PATCH = "application/apply-patch+yaml"


@attrs.define(kw_only=True)
class ApplyingEmulator(kmock.KubernetesEmulator):
    """Creates objects on server-side apply, as the real API server does."""

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        content_type = request.headers.get("Content-Type", "")
        if (request.method == kmock.method.PATCH and content_type.startswith(APPLY_PATCH)
                and request.resource is not None and request.name is not None
                and isinstance(request.data, dict)):
            key = (request.resource, request.namespace, request.name)
            if key not in self.objects or self.objects[key].deleted:
                self.objects[key] = {}  # the patch below then fills it in
        return await super()._handle(request)


def write_kubeconfig(path: Path, url: str, *, context: str = "fake") -> Path:
    """A kubeconfig with one context pointing at ``url`` with a bearer token."""
    config: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "fake", "cluster": {"server": url.rstrip("/")}}],
        "users": [{"name": "portal", "user": {"token": "fake-token"}}],
        "contexts": [{"name": context, "context": {"cluster": "fake", "user": "portal"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def serve_namespace(server: kmock.KubernetesEmulator, name: str, phase: str | None) -> None:
    """Serve ``GET /api/v1/namespaces/<name>`` (``phase=None``: a 404, as for a missing one).

    kmock's path parser reads ``/api/v1/namespaces/<name>`` as a namespace prefix, not as the
    Namespace object, so the object is declared as an explicit reaction.
    """
    path = f"get /api/v1/namespaces/{name}"
    if phase is None:
        server[path] << 404 << {"apiVersion": "v1", "kind": "Status", "status": "Failure",
                                "code": 404, "reason": "NotFound",
                                "message": f'namespaces "{name}" not found'}
    else:
        server[path] << {"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": name}, "status": {"phase": phase}}


@contextmanager
def running_emulator() -> Iterator[tuple[ApplyingEmulator, str]]:
    """An :class:`ApplyingEmulator` served on a loopback port by its own event loop in a
    background thread, for code outside pytest (the kmock fixture does this inside it): yields
    the emulator and its URL."""
    ready: queue.Queue[tuple[ApplyingEmulator, str] | BaseException] = queue.Queue()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        try:
            async with ApplyingEmulator() as emulator, kmock.Server(emulator):
                ready.put((emulator, str(emulator.url)))
                await stop.wait()
        except BaseException as exc:  # reported to the caller waiting on ``ready``
            ready.put(exc)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),),
                              name="kmock-emulator", daemon=True)
    thread.start()
    started = ready.get(timeout=30)
    if isinstance(started, BaseException):
        raise RuntimeError("the Kubernetes emulator did not start") from started
    try:
        yield started
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()
