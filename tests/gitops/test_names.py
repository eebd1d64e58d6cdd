"""DNS-1123 labels: one rule for teams, namespaces, environments and template folders."""

from __future__ import annotations

import pytest

from gitops.names import DNS_LABEL_MAX, is_dns_label


@pytest.mark.parametrize("name", ["a", "payments", "team-1", "0abc", "a" * DNS_LABEL_MAX])
def test_labels(name: str) -> None:
    assert is_dns_label(name)


@pytest.mark.parametrize("name", ["", "-a", "a-", "A", "a_b", "a.b", "payments\n", "p\u0430yments",
                                  "a" * (DNS_LABEL_MAX + 1), None, 7])
def test_not_labels(name: object) -> None:
    assert not is_dns_label(name)
