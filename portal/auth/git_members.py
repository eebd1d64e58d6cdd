"""Team membership from git: ``teams/<team>/team.yaml`` on main is the source of truth.

A merged team's ``spec.owners`` become its **reviewers** and its other ``spec.members`` its
**developers** (the same split the Keycloak sync makes: owners → ``team-<team>-admins``,
members → ``team-<team>``; see ``portal.groups``). The catalog calls :func:`sync_team` for every
team a merge adds or changes and :func:`forget_team` for a team a merge removes, so the portal's
memberships follow main without any CLI step:

- declared names are stored (``DeclaredMembership``) even when no portal account exists yet;
  :func:`apply_declared` gives a new account (``caas user create``, first OIDC sign-in) its roles;
- a membership of a declared team that team.yaml does not list is removed: ``caas team add`` stays
  for set-ups whose teams declare no members, and the next merge of that team overrides it;
- with OIDC the claim's team groups are compared with git (:func:`claim_disagreements`); a
  disagreement is recorded and shown, never obeyed. The claim decides only platform-admin.

Every change is audited (``team.git-sync``, actor ``git``, detail: the merge commit and the
changes ``+user:role``, ``~user:role``, ``-user``). Idempotent: syncing the same file twice
changes nothing and audits nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlmodel import Session, col, delete, select

from portal.auth import audit
from portal.auth.models import DeclaredMembership, Membership, Role, Team, User


def declared_roles(*, owners: Iterable[str], members: Iterable[str]) -> dict[str, Role]:
    """``{username: role}``: owners are reviewers, every other member a developer."""
    roles = dict.fromkeys(members, Role.developer)
    roles.update(dict.fromkeys(owners, Role.reviewer))
    return roles


def declared_teams(session: Session) -> set[str]:
    """The teams whose membership git declares (at least one owner or member on main)."""
    return set(session.exec(select(DeclaredMembership.team).distinct()).all())


def declared_for(session: Session, *, username: str) -> dict[str, Role]:
    """``{team: role}`` that git declares for ``username``."""
    rows = session.exec(select(DeclaredMembership).where(
        DeclaredMembership.username == username)).all()
    return {r.team: Role(r.role) for r in rows}


def team_declared(session: Session, *, team: str) -> dict[str, Role]:
    """``{username: role}`` of ``team`` as git declares it (empty: not declared)."""
    rows = session.exec(select(DeclaredMembership).where(DeclaredMembership.team == team)).all()
    return {r.username: Role(r.role) for r in rows}


def sync_team(session: Session, *, team: str, owners: Sequence[str], members: Sequence[str],
              commit: str = "", actor: str = "git") -> list[str]:
    """Make ``team``'s declared and actual memberships what its team.yaml says; the changes
    made (``+user:role``, ``~user:role``, ``-user``). Flushes; the caller commits."""
    wanted = declared_roles(owners=owners, members=members)
    session.execute(delete(DeclaredMembership).where(col(DeclaredMembership.team) == team))
    for username, role in sorted(wanted.items()):
        session.add(DeclaredMembership(team=team, username=username, role=role.value,
                                       commit=commit[:64]))
    team_row = session.exec(select(Team).where(Team.name == team)).first()
    if team_row is None:
        team_row = Team(name=team, display_name=team)
        session.add(team_row)
    session.flush()
    changes = _apply_team(session, team_id=_id(team_row.id), wanted=wanted)
    if changes:
        audit.record(session, actor=actor, action="team.git-sync", target=team,
                     detail={"commit": commit, "changes": changes}, commit=False)
    session.flush()
    return changes


def forget_team(session: Session, *, team: str, commit: str = "", actor: str = "git"
                ) -> list[str]:
    """A merge removed ``teams/<team>/``: its declarations and memberships go."""
    session.execute(delete(DeclaredMembership).where(col(DeclaredMembership.team) == team))
    team_row = session.exec(select(Team).where(Team.name == team)).first()
    changes: list[str] = []
    if team_row is not None:
        changes = _apply_team(session, team_id=_id(team_row.id), wanted={})
    if changes:
        audit.record(session, actor=actor, action="team.git-sync", target=team,
                     detail={"commit": commit, "changes": changes, "removed": True},
                     commit=False)
    session.flush()
    return changes


def forget_declarations(session: Session, *, team: str) -> None:
    """``team``'s team.yaml declares nobody now: drop the declarations, keep the memberships
    (``caas team add`` manages them)."""
    session.execute(delete(DeclaredMembership).where(col(DeclaredMembership.team) == team))
    session.flush()


def apply_declared(session: Session, *, user: User) -> list[str]:
    """Give ``user`` (just created) the roles git declares for its name. Flushes."""
    changes: list[str] = []
    uid = _id(user.id)
    for team, role in sorted(declared_for(session, username=user.username).items()):
        team_row = session.exec(select(Team).where(Team.name == team)).first()
        if team_row is None:
            continue
        existing = session.exec(select(Membership).where(
            Membership.user_id == uid, Membership.team_id == _id(team_row.id))).first()
        if existing is None:
            session.add(Membership(user_id=uid, team_id=_id(team_row.id), role=role.value))
            changes.append(f"+{team}:{role.value}")
        elif existing.role != role.value:
            existing.role = role.value
            session.add(existing)
            changes.append(f"~{team}:{role.value}")
    session.flush()
    return changes


def claim_disagreements(claimed: Mapping[str, Role], declared: Mapping[str, Role],
                        managed: set[str]) -> dict[str, str]:
    """Where a groups claim's team roles differ from git for teams git manages:
    ``{team: "claim says <role or none>, git says <role or none>"}``."""
    out: dict[str, str] = {}
    for team in sorted((set(claimed) | set(declared)) & managed):
        got, want = claimed.get(team), declared.get(team)
        if got != want:
            out[team] = (f"claim says {got.value if got else 'no role'}, "
                         f"git says {want.value if want else 'no role'}")
    return out


def last_claim_ignored(session: Session, *, username: str) -> dict[str, str]:
    """What ``username``'s last single sign-on claimed against git (``claim_disagreements``
    as recorded in the latest ``user.oidc-sync`` audit event); empty when nothing."""
    # audit.query matches a target by substring: keep the newest event for exactly this user.
    event = next((e for e in audit.query(session, action="user.oidc-sync", target=username,
                                         limit=1000) if e.target == username), None)
    ignored = event.detail.get("claim_ignored") if event is not None else None
    return {str(k): str(v) for k, v in ignored.items()} if isinstance(ignored, dict) else {}


def _apply_team(session: Session, *, team_id: int, wanted: Mapping[str, Role]) -> list[str]:
    users = {u.username: u for u in session.exec(select(User).where(
        col(User.username).in_(list(wanted)))).all()} if wanted else {}
    current = {m.user_id: m for m in session.exec(
        select(Membership).where(Membership.team_id == team_id)).all()}
    changes: list[str] = []
    for username, role in sorted(wanted.items()):
        user = users.get(username)
        if user is None:
            continue  # no account yet: apply_declared gives it the role when it appears
        membership = current.pop(_id(user.id), None)
        if membership is None:
            session.add(Membership(user_id=_id(user.id), team_id=team_id, role=role.value))
            changes.append(f"+{username}:{role.value}")
        elif membership.role != role.value:
            membership.role = role.value
            session.add(membership)
            changes.append(f"~{username}:{role.value}")
    removed = []
    for user_id, membership in current.items():
        gone = session.get(User, user_id)
        session.delete(membership)
        removed.append(f"-{gone.username if gone else user_id}")
    return changes + sorted(removed)


def _id(value: int | None) -> int:
    assert value is not None
    return value
