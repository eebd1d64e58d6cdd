"""Names of generated objects: one unit per name, and the scheme parses back."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from gitops import object_names

LABEL = st.from_regex(re.compile(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?"), fullmatch=True)


@given(LABEL, LABEL, LABEL, LABEL)
def test_application_names_determine_their_parts(a: str, b: str, c: str, d: str) -> None:
    """Equal names only from equal (kind, parts): a dot cannot occur inside a DNS label."""
    names = {
        ("tenant", a, b): object_names.tenant_application(a, b),
        ("tenant", c, d): object_names.tenant_application(c, d),
        ("app", a, b): object_names.team_application(a, b),
        ("app", c, d): object_names.team_application(c, d),
    }
    for key, name in names.items():
        assert tuple(name.split(".")) == key
    assert len(set(names.values())) == len(set(names))


def test_generated_names_per_unit() -> None:
    long_a, long_b = "t" * 30 + "-" + "a" * 32, "t" * 30 + "-" + "a" * 31 + "b"
    assert object_names.generated_names(f"tenants/t/{long_a}")[1] == (
        "Grafana dashboard uid", long_a[:40])
    # Two namespaces that share 40 characters share a dashboard uid: the check must see it.
    assert object_names.dashboard_uid(long_a) == object_names.dashboard_uid(long_b)
    assert object_names.generated_names("applications/pay/web") == [
        ("ArgoCD Application", "app.pay.web")]
    assert object_names.generated_names("teams/pay") == [("ArgoCD AppProject", "pay")]
    assert "default" in object_names.RESERVED_PROJECTS
    assert object_names.units_in(("tenants/pay/pay-web/base/ns.yaml", "teams/pay/team.yaml",
                                  "applications/pay/web/application.yaml", "envs/dev/infra.yaml",
                                  "README.md")) == {
        "tenants/pay/pay-web", "teams/pay", "applications/pay/web", "envs/dev"}
