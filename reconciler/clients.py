"""Adapter clients a worker keeps from job to job (the Kubernetes API client, the Keycloak admin
client), instead of building them for every job.

Building one is most of a small job's cost: a TLS context with the system's CA bundle
(~20 ms of CPU each, python-keycloak builds two per connection, the Kubernetes client one),
the kubeconfig parsed, a Keycloak token fetched; and every job then opened new TCP connections.
A kept client keeps its connection pool and, for Keycloak, its token (python-keycloak renews
it at 90 % of its lifetime and, when Keycloak answers 401 because it was revoked, fetches a new
one and repeats the call once).

``Clients.get(name, key, make) -> T``: the client kept under ``name`` when it was built for the
same ``key`` (the settings it depends on: URL, credentials, the kubeconfig's path and
modification time, …), else ``make()``, kept. A ``make`` that raises keeps nothing.
``clear()`` drops every client: the worker calls it after a job that raised, so a retry starts
from fresh clients as it did before clients were kept.

One ``Clients`` belongs to one ``reconciler.worker.Worker``, which runs one job at a time: a
client is never used by two threads at once. A ``JobContext`` built without one gets its own
(nothing is kept beyond that job).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class Clients:
    def __init__(self) -> None:
        self._kept: dict[str, tuple[Hashable, Any]] = {}

    def get(self, name: str, key: Hashable, make: Callable[[], T]) -> T:
        kept = self._kept.get(name)
        if kept is not None and kept[0] == key:
            return cast(T, kept[1])
        self._kept.pop(name, None)
        client = make()
        self._kept[name] = (key, client)
        return client

    def clear(self) -> None:
        self._kept.clear()

    def __contains__(self, name: str) -> bool:
        return name in self._kept
