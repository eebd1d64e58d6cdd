"""``scaffolder.review.action_decisions``: what a viewer may do with a change and why not — the
rules approve/merge/close apply, which the change page shows on its disabled buttons."""

from __future__ import annotations

from typing import Any

from portal.auth.models import Role
from portal.auth.principal import Principal
from scaffolder.models import Change
from scaffolder.review import action_decisions, failing_checks, merge_decision

GREEN = [{"name": "schema", "state": "success"}, {"name": "capacity", "state": "success"}]


def _change(**values: Any) -> Change:
    base: dict[str, Any] = {
        "template": "tenant", "template_version": "v1", "unit_key": "tenants/pay/pay-web",
        "branch": "caas/x", "title": "t", "author": "dana", "team": "payments", "tier": "dev",
        "status": "open", "number": 7, "checks": GREEN, "checks_green": True,
        "approved_by": []}
    return Change(**{**base, **values})


def _who(name: str, role: Role | None = None, *, admin: bool = False) -> Principal:
    return Principal(user_id=1, username=name, team_roles={"payments": role} if role else {},
                     is_platform_admin=admin)


def _why(decisions: dict[str, Any]) -> dict[str, str]:
    return {k: "" if d.allowed else d.reason for k, d in decisions.items()}


def test_the_author_sees_four_eyes_and_the_missing_approval() -> None:
    why = _why(action_decisions(_who("dana", Role.developer), _change()))
    assert why == {"approve": "nobody approves their own change (four-eyes rule)",
                   "merge": "needs an approval from someone other than the author", "close": ""}


def test_failing_checks_are_named_before_any_policy_reason() -> None:
    red = _change(checks=[*GREEN[:1], {"name": "capacity", "state": "failure"},
                          {"name": "policies", "state": "failure"}], checks_green=False,
                  approved_by=["rui"])
    assert failing_checks(red.checks) == ["capacity", "policies"]
    assert _why(action_decisions(_who("rui", Role.reviewer), red))["merge"] == \
        "checks failing: capacity, policies"
    # at merge time the forge's approvals count, not the stored ones
    assert not merge_decision(_who("rui", Role.reviewer), _change(), approved_by=["dana"])
    assert merge_decision(_who("rui", Role.reviewer), _change(), approved_by=["rui"])


def test_outsiders_approved_twice_and_closed_changes() -> None:
    outsider = _why(action_decisions(_who("eve"), _change()))
    assert outsider["approve"] == "only members of team `payments` approve its changes"
    assert outsider["close"].startswith("only the author, a reviewer of the owning team")
    again = _why(action_decisions(_who("rui", Role.reviewer), _change(approved_by=["rui"])))
    assert again["approve"] == "you already approved it" and again["merge"] == ""
    prod = _why(action_decisions(_who("rui", Role.reviewer), _change(tier="prod")))
    assert prod["approve"] == "this change needs a platform-admin's approval"
    merged = _why(action_decisions(_who("ada", admin=True), _change(status="merged")))
    assert set(merged.values()) == {"the change is merged, not open"}
