"""Team roles come from team.yaml on main: a merged team's owners become reviewers and its members
developers without any CLI step, kept in step on every merge (both databases)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, select

from catalog import service
from gitops.gitreader import GitReader
from portal.auth import service as auth_service
from portal.auth.models import AuditEvent, Role, User
from portal.auth.oidc_users import upsert_user
from tests.catalog import gitops
from tests.conftest import UserFactory


def _roles(engine: Engine, username: str) -> dict[str, Role]:
    with Session(engine) as s:
        user = auth_service.get_user(s, username=username)
        return auth_service.principal_for(s, user, via="test").team_roles


def _merge(engine: Engine, repo: gitops.Repo, files: dict[str, str | None]) -> None:
    before = repo.head
    after = repo.commit(files)
    with Session(engine) as s:
        service.index_commit(s, forge=GitReader(repo.git_dir), commit=after,
                             changed=repo.changed(before, after))


def test_a_merged_team_gives_its_owners_and_members_their_roles(
        engine: Engine, indexed: gitops.Repo, make_user: UserFactory) -> None:
    for name in ("rui", "dana", "carol"):
        make_user(name)
    _merge(engine, indexed, gitops.team("orders", owners=("rui",), members=("dana", "zoe")))
    assert _roles(engine, "rui") == {"orders": Role.reviewer}
    assert _roles(engine, "dana") == {"orders": Role.developer}
    make_user("zoe")  # no account at the merge: the role applies when the account appears
    assert _roles(engine, "zoe") == {"orders": Role.developer}

    with Session(engine) as s:  # `caas team add` still works ...
        auth_service.add_member(s, team="orders", username="carol", role=Role.reviewer)
    assert _roles(engine, "carol") == {"orders": Role.reviewer}
    # ... until the next merge of the team: git is the source of truth.
    _merge(engine, indexed, gitops.team("orders", owners=("dana",), members=("rui",)))
    assert _roles(engine, "carol") == {}
    assert _roles(engine, "zoe") == {}
    assert _roles(engine, "dana") == {"orders": Role.reviewer}
    assert _roles(engine, "rui") == {"orders": Role.developer}
    with Session(engine) as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "team.git-sync")).all()
        assert [e.detail["changes"] for e in events] == [
            ["+dana:developer", "+rui:reviewer"],
            ["~dana:reviewer", "~rui:developer", "-carol", "-zoe"]]
        assert all(e.actor == "git" and e.target == "orders" for e in events)

    # An unrelated merge changes nothing and audits nothing (idempotent).
    _merge(engine, indexed, {"README.md": "changed\n"})
    with Session(engine) as s:
        assert len(s.exec(select(AuditEvent).where(
            AuditEvent.action == "team.git-sync")).all()) == 2

    # The team removed from main: its roles go.
    _merge(engine, indexed, {p: None for p in list(indexed.files)
                             if p.startswith("teams/orders/")})
    assert _roles(engine, "dana") == {}
    assert _roles(engine, "rui") == {}


def test_the_fixture_teams_declare_their_owners_at_reindex(
        engine: Engine, repo: gitops.Repo, make_user: UserFactory) -> None:
    make_user("alice")
    make_user("bob")
    with Session(engine) as s:
        service.reindex(s, forge=GitReader(repo.git_dir))
    assert _roles(engine, "alice") == {"payments": Role.reviewer, "search": Role.reviewer}
    assert _roles(engine, "bob") == {"payments": Role.developer, "search": Role.developer}


def test_an_oidc_claim_that_disagrees_with_git_is_recorded_not_obeyed(
        engine: Engine, indexed: gitops.Repo) -> None:
    _merge(engine, indexed, gitops.team("orders", owners=("rui",), members=("dana",)))
    claims = {"sub": "kc-dana", "preferred_username": "dana",
              "groups": ["team-orders-admins", "team-legacy", "/platform-admins"]}
    with Session(engine) as s:
        user = upsert_user(s, claims=claims, groups_claim="groups", admin_group="platform-admins")
        assert user.is_platform_admin  # the claim decides platform-admin
    # git says developer of orders; the claim's reviewer is ignored; a team git does not
    # declare still comes from the claim.
    assert _roles(engine, "dana") == {"orders": Role.developer, "legacy": Role.developer}
    with Session(engine) as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "user.oidc-sync")).one()
        assert event.detail["claim_ignored"] == {
            "orders": "claim says reviewer, git says developer"}
        assert s.exec(select(User).where(User.username == "dana")).one().source == "oidc"
