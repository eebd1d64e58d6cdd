"""What a request form's choosers offer, read from the catalog index of ``main``.

``form_choices(session, principal=...) -> FormChoices``:

- ``teams``: the teams on main the user belongs to (every team for a platform-admin);
- ``tenants``: per team of ``teams``, its namespaces' tenant names (``tenants/<team>/<team>-<x>``
  is tenant ``x``; the application template asks for the tenant inside the team), sorted;
- ``environments``: every environment on main;
- ``users``: the portal's active user names (owners and members are suggested from them; a
  name declared in git before its account exists stays allowed, the server judges the pattern).

Only entities on main count: an entity that exists only in an open pull request cannot be
referenced yet. The scaffolder still validates every answer against git itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from catalog.models import Entity, Kind
from portal.auth.models import User
from portal.auth.principal import Principal


@dataclass(frozen=True)
class FormChoices:
    teams: list[str] = field(default_factory=list)
    tenants: dict[str, list[str]] = field(default_factory=dict)
    environments: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)


def tenant_name(team: str, namespace: str) -> str:
    """``payments``, ``payments-web`` → ``web`` (a folder without the team prefix: itself)."""
    return namespace.removeprefix(f"{team}-")


def form_choices(session: Session, *, principal: Principal) -> FormChoices:
    rows = session.exec(select(Entity.kind, Entity.name, Entity.owner, Entity.key).where(
        col(Entity.on_main), col(Entity.kind).in_(
            [Kind.team.value, Kind.namespace.value, Kind.environment.value]))).all()
    teams = sorted({name for kind, name, _, _ in rows if kind == Kind.team.value})
    if not principal.is_platform_admin:
        teams = [t for t in teams if t in principal.team_roles]
    tenants: dict[str, list[str]] = {team: [] for team in teams}
    for kind, _, _, key in rows:
        if kind != Kind.namespace.value:
            continue
        team, _, namespace = key.removeprefix("namespace:").partition("/")
        if team in tenants:
            tenants[team].append(tenant_name(team, namespace))
    users = session.exec(select(User.username).where(col(User.is_active))
                         .order_by(col(User.username))).all()
    return FormChoices(
        teams=teams, tenants={t: sorted(names) for t, names in tenants.items()},
        environments=sorted(name for kind, name, _, _ in rows if kind == Kind.environment.value),
        users=list(users))
