"""ResourceQuota totals: exact integers, one rule for the capacity check and the catalog."""

from __future__ import annotations

from catalog.parse import _quota
from gitops.quota import quota_total
from gitops.yaml import load_all
from scaffolder.capacity import quota_of

MULTI = b"""\
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute}
spec:
  hard: {requests.cpu: 1500m, requests.memory: 3Gi}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: storage}
spec:
  hard: {requests.storage: 10Gi, requests.cpu: "1"}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute}
spec:
  hard: {requests.memory: 1.5Gi}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: best-effort}
spec:
  scopes: [BestEffort]
  hard: {pods: "10", cpu: 100m}
---
apiVersion: v1
kind: LimitRange
metadata: {name: defaults}
spec: {limits: []}
"""
# compute: cpu 1500m, memory 1.5Gi (the later `compute` replaces 3Gi); storage: cpu 1, 10Gi;
# every quota is enforced, so cpu is bounded by the smaller one; the scoped quota bounds only
# BestEffort pods, never the namespace.
EXPECTED = {"cpu": 1000, "memory": 3 * 2**29, "storage": 10 * 2**30}


def test_multi_document_total_in_exact_integers() -> None:
    total = quota_total(MULTI)
    assert total == EXPECTED
    assert all(type(v) is int for v in total.values())


def test_the_capacity_check_and_the_catalog_agree() -> None:
    problems: list[str] = []
    assert _quota(load_all(MULTI), "q.yaml", problems) == EXPECTED and problems == []
    assert quota_of(MULTI) == (EXPECTED["cpu"], EXPECTED["memory"], EXPECTED["storage"])


def test_sub_millicore_and_odd_bytes_round_up_exactly() -> None:
    text = b"kind: ResourceQuota\nspec:\n  hard: {cpu: 0.0001, memory: '1.0000001'}\n"
    assert quota_total(text) == {"cpu": 1, "memory": 2}


def test_bad_quantities_are_problems_not_guesses() -> None:
    problems: list[str] = []
    text = b"kind: ResourceQuota\nspec:\n  hard: {requests.cpu: lots, requests.memory: -1Gi}\n"
    assert quota_total(text, problems=problems, where="q.yaml") == {}
    assert problems == ["q.yaml: spec.hard.requests.cpu: not a Kubernetes quantity: 'lots' "
                        "(e.g. 500m, 2)", "q.yaml: spec.hard.requests.memory: '-1Gi' is negative"]
    assert quota_total(b"a: [1\n") == {}
