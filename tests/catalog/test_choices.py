"""What the request forms' choosers offer, from the catalog index (both databases)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session

from catalog import service
from portal.auth.models import Role
from portal.auth.principal import Principal
from tests.catalog import gitops


def test_choices_follow_membership_and_main(engine: Engine, indexed: gitops.Repo,
                                            make_user: Callable[..., object]) -> None:
    make_user("dora", teams={"payments": Role.developer})
    make_user("sam")
    dora = Principal(user_id=1, username="dora", team_roles={"payments": Role.developer})
    admin = Principal(user_id=2, username="root", is_platform_admin=True)
    with Session(engine) as s:
        mine = service.form_choices(s, principal=dora)
        everything = service.form_choices(s, principal=admin)
    assert mine.teams == ["payments"]
    # payments-api and payments-batch are the tenants ``api`` and ``batch`` of payments.
    assert mine.tenants == {"payments": ["api", "batch"]}
    assert mine.environments == ["dev", "prod", "stage"]
    assert {"dora", "sam"} <= set(mine.users)
    assert everything.teams == ["payments", "search"]
    assert everything.tenants["search"] == ["index"]
