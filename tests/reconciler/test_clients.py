"""``reconciler.clients``: a client is kept while its key is the same, rebuilt when it changes,
never kept when building it failed, and dropped by ``clear``."""

from __future__ import annotations

import pytest

from reconciler.clients import Clients


def test_kept_while_the_key_is_the_same_and_rebuilt_when_it_changes() -> None:
    clients, built = Clients(), []

    def make(tag: str) -> object:
        built.append(tag)
        return object()

    first = clients.get("kube", ("a", 1), lambda: make("a1"))
    assert clients.get("kube", ("a", 1), lambda: make("again")) is first
    second = clients.get("kube", ("a", 2), lambda: make("a2"))  # e.g. the kubeconfig changed
    assert second is not first
    assert clients.get("keycloak", ("a", 2), lambda: make("k")) is not second  # by name too
    assert built == ["a1", "a2", "k"]


def test_a_failed_build_keeps_nothing_and_clear_drops_everything() -> None:
    clients = Clients()
    clients.get("kube", 1, object)

    def broken() -> object:
        raise RuntimeError("unusable kubeconfig")

    with pytest.raises(RuntimeError):
        clients.get("kube", 2, broken)
    assert "kube" not in clients  # not the old client under the new key either
    kept = clients.get("keycloak", 1, object)
    clients.clear()
    assert "keycloak" not in clients
    assert clients.get("keycloak", 1, object) is not kept
