"""``KeycloakSync``: team groups and their members kept in step with the GitOps repository.

Public contract:

- ``KeycloakSync.from_settings(settings)`` (``keycloak_url``, ``keycloak_realm``,
  ``keycloak_admin_client_id``/``_secret``, ``oidc_admin_group`` — normalised by the settings);
  raises ``reconciler.adapters.NotConfigured`` when the URL or the client credentials are empty.
  ``KeycloakSync(admin, admin_group="platform-admins")`` for a ready ``KeycloakAdmin``.
- ``groups_from_team(team, doc) -> list[GroupSpec]``: the groups of team ``team`` (the folder
  name of ``teams/<team>/team.yaml``), derived by ``portal.groups.team_groups``:
  ``team-<team>`` gets owners and members, ``team-<team>-admins`` the owners. ``doc`` is the
  parsed file; group names it states must be the derived ones (``scaffolder``'s identity check
  refuses others at the request and at the merge; here it is checked again) — else ``SyncError``
  (permanent) naming the field and the rule, before anything is written.
- ``sync(groups, *, admins=("platform-admin",)) -> SyncReport``: **plan, then write.** The plan
  reads everything (groups by path, members with paging, user ids) and refuses, before any
  write: a name that is not a derived team group (so never a platform group: the admin group or
  anything else the settings name), a group claimed twice. Then it writes: creates missing
  groups (a 409 means someone created it meanwhile: read back), adds missing members, removes
  members not listed (exact membership per team group), and puts each of ``admins`` into the
  admin group. Team groups carry the attribute ``caas-portal-group: [<name>]``; a team group
  renamed in Keycloak is found by it (``GET /groups?q=``) and renamed back with its members
  and role mappings (``PUT /groups/{id}``), never recreated under the old name; team groups
  that predate the mark get it. Admins are added to the admin group, never removed
  (break-glass admins added by hand stay). A refusal leaves Keycloak untouched; a connection
  or server error while writing leaves a prefix of the plan applied and is ``temporary``: the
  retried job plans again from what is there and completes (every step is idempotent). A
  second run with the same input changes nothing.
- Every group path reaches the admin API only after ``portal.groups.check_group_path`` and
  with each segment percent-escaped; usernames travel as query parameters (escaped by the HTTP
  client). Endpoints used (Keycloak Admin REST API 26): ``GET /group-by-path/{path}``,
  ``GET /groups?q=``, ``POST /groups``, ``PUT /groups/{id}``, ``POST /groups/{id}/children``,
  ``GET /groups/{id}/members``,
  ``GET /users?username=&exact=true``, ``PUT``/``DELETE /users/{id}/groups/{groupId}``.
- Users are never created here (they come from sign-in / identity providers); usernames that
  do not exist are reported in ``SyncReport.missing_users``; the worker's periodic resync
  (``reconciler.identity_resync``) adds them once they exist.
- Failures raise a ``SyncError`` in the reconciler's retry vocabulary (``reconciler.errors``):
  ``KeycloakTemporaryError`` for connection errors, 408/429/5xx, else ``KeycloakPermanentError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakConnectionError, KeycloakError, KeycloakGetError

from portal.auth.usernames import keycloak_usernames, portal_username
from portal.groups import (
    GroupRuleError,
    check_group_path,
    check_team_file,
    normalise_platform_group,
    team_of_group,
)
from reconciler.adapters import NotConfigured, is_temporary_status
from reconciler.errors import PermanentError, ReconcilerError, TemporaryError

if TYPE_CHECKING:
    from collections.abc import Callable

    from portal.settings import Settings
    from reconciler.clients import Clients

T = TypeVar("T")
# The attribute that marks a group the sync manages, with the name the repository gives it:
# a group renamed in Keycloak is found by it and renamed back instead of being recreated.
MARK = "caas-portal-group"


class SyncError(ReconcilerError):
    """A Keycloak admin call failed or a group was refused. Raised as ``KeycloakTemporaryError``
    (the worker retries) or ``KeycloakPermanentError`` (the job fails); ``http_status`` is
    Keycloak's answer (None: no answer)."""

    code = "keycloak_sync_failed"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = status

    @staticmethod
    def make(message: str, *, temporary: bool, status: int | None = None) -> SyncError:
        if temporary:
            return KeycloakTemporaryError(message, status=status)
        return KeycloakPermanentError(message, status=status)


class KeycloakTemporaryError(SyncError, TemporaryError):
    """Retrying can help (no answer, 408, 429, 5xx, a group created meanwhile not readable)."""


class KeycloakPermanentError(SyncError, PermanentError):
    """Retrying cannot help (other 4xx, a refused group name or team file)."""


@dataclass(frozen=True)
class GroupSpec:
    """A group the repository owns, with its exact membership (usernames)."""

    name: str
    members: Sequence[str] = ()


@dataclass
class SyncReport:
    created_groups: list[str] = field(default_factory=list)
    added: list[tuple[str, str]] = field(default_factory=list)  # (group, username)
    removed: list[tuple[str, str]] = field(default_factory=list)
    missing_users: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (name found, name set back)
    marked: list[str] = field(default_factory=list)  # existing team groups given the mark

    @property
    def changed(self) -> bool:
        return bool(self.created_groups or self.added or self.removed or self.renamed
                    or self.marked)

    def summary(self) -> str:
        return (f"{len(self.created_groups)} groups created, {len(self.added)} memberships "
                f"added, {len(self.removed)} removed, {len(self.missing_users)} users missing")


def _names(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    names = []
    for item in value:
        if isinstance(item, Mapping):
            item = item.get("username") or item.get("name")
        if isinstance(item, str) and item.strip():
            names.append(item.strip().lstrip("@").lower())
    return names


def groups_from_team(team: str, doc: Mapping[str, Any], *,
                     platform_groups: Sequence[str] = ()) -> list[GroupSpec]:
    """The groups of team ``team`` from its parsed ``team.yaml`` (see the module docstring);
    ``SyncError`` (permanent) when the file names groups other than the derived ones."""
    try:
        groups = check_team_file(team, doc, where=f"teams/{team}/team.yaml",
                                 platform_groups=platform_groups)
    except GroupRuleError as exc:
        raise KeycloakPermanentError(f"refused ({exc.rule}): {exc.field}: {exc.message}") \
            from None
    spec = doc.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    owners = _names(spec.get("owners"))
    members = sorted(set(owners) | set(_names(spec.get("members"))))
    return [GroupSpec(groups.developers, members), GroupSpec(groups.reviewers, sorted(set(owners)))]


@dataclass
class _GroupPlan:
    path: str
    group_id: str | None  # None: to be created
    parent: str | None  # the parent's path when a sub-group is to be created
    renamed_from: str | None = None  # a team group found under another name by its mark
    update: dict[str, Any] | None = None  # PUT /groups/{id}: its name and mark set back
    add: list[tuple[str, str]] = field(default_factory=list)  # (username, user id)
    remove: list[tuple[str, str]] = field(default_factory=list)


def _marked(group: Mapping[str, Any], path: str) -> bool:
    attributes = group.get("attributes")
    return isinstance(attributes, Mapping) and attributes.get(MARK) == [path]


class KeycloakSync:
    """Groups and memberships through python-keycloak's admin client."""

    def __init__(self, admin: KeycloakAdmin, *, admin_group: str = "platform-admins") -> None:
        self._admin = admin
        self.admin_group = normalise_platform_group(admin_group)
        self._user_ids: dict[str, str | None] = {}

    @classmethod
    def from_settings(cls, settings: Settings, clients: Clients | None = None) -> KeycloakSync:
        """With ``clients`` (a worker's, ``reconciler.clients``): the sync kept there while
        the URL, realm, credentials and admin group are the same — its HTTP connections and
        its token too (renewed by python-keycloak before it expires, and on a 401)."""
        secret = settings.keycloak_admin_client_secret
        if not settings.keycloak_url:
            raise NotConfigured("not configured: no Keycloak URL", setting="keycloak_url")
        if not settings.keycloak_admin_client_id or secret is None:
            raise NotConfigured("not configured: no Keycloak admin client credentials",
                                setting="keycloak_admin_client_id")
        if clients is not None:
            key = (settings.keycloak_url, settings.keycloak_realm,
                   settings.keycloak_admin_client_id, secret.get_secret_value(),
                   settings.oidc_admin_group)
            return clients.get("keycloak", key, lambda: cls.from_settings(settings))
        connection = KeycloakOpenIDConnection(
            server_url=settings.keycloak_url.rstrip("/") + "/",
            realm_name=settings.keycloak_realm,
            client_id=settings.keycloak_admin_client_id,
            client_secret_key=secret.get_secret_value(),
            grant_type="client_credentials", verify=True, timeout=30)
        return cls(KeycloakAdmin(connection=connection), admin_group=settings.oidc_admin_group)

    # --- plumbing -----------------------------------------------------------------------
    @staticmethod
    def _call(action: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except KeycloakError as exc:
            raise _error(action, exc) from exc

    def _find(self, path: str) -> dict[str, Any] | None:
        """The group at ``path`` (``a`` or ``a/b``), ``None`` when there is none."""
        escaped = "/".join(quote(segment, safe="") for segment in path.split("/"))
        try:
            group = self._admin.get_group_by_path(escaped)
        except KeycloakError as exc:
            if isinstance(exc, KeycloakGetError) and exc.response_code == 404:
                return None
            raise _error(f"find group {path}", exc) from exc
        if str(group.get("path", "")).strip("/") != path:  # never act on another group
            raise KeycloakPermanentError(
                f"Keycloak answered group {group.get('path')!r} for {path!r}")
        return group

    def delete_group(self, path: str) -> bool:
        """Delete the top-level group ``path`` the portal created (it carries the
        ``caas-portal-group`` mark): True when deleted, False when already gone. A group of that
        name without the mark is not the portal's: ``SyncError`` (permanent), nothing deleted.
        Keycloak: ``DELETE /admin/realms/{realm}/groups/{id}``."""
        group = self._find(path) or self._find_marked(path)
        if group is None:
            return False
        if not _marked(group, path):
            raise KeycloakPermanentError(
                f"group {path} was not created by the portal (no {MARK} mark): left in place")
        group_id = str(group["id"])
        self._call(f"delete group {path}", lambda: self._admin.delete_group(group_id=group_id))
        return True

    def _find_marked(self, path: str) -> dict[str, Any] | None:
        """A top-level group someone renamed: the one whose ``caas-portal-group`` attribute
        still names ``path`` (``GET /groups?q=caas-portal-group:<path>&exact=true``)."""
        groups = self._call(f"search group {path}", lambda: self._admin.get_groups(
            query={"q": f"{MARK}:{path}", "exact": "true"}))
        # Only a plain top-level group: never the admin group, never another team's group
        # (a mark copied onto them must not let the sync rename them).
        marked = [g for g in groups if _marked(g, path) and not g.get("parentId")
                  and str(g.get("path", "")).count("/") == 1
                  and str(g.get("name")) != self.admin_group
                  and team_of_group(str(g.get("name"))) is None]
        if len(marked) > 1:
            raise KeycloakPermanentError(f"{len(marked)} groups carry {MARK}={path}: "
                                         + ", ".join(str(g.get("path")) for g in marked))
        return marked[0] if marked else None

    def _user_id(self, username: str) -> str | None:
        """The Keycloak id of a portal name (``alice`` or, in "Email as username" realms,
        ``alice_at_example.org`` for ``alice@example.org``); ``None``: no such user yet."""
        if username not in self._user_ids:
            found = None
            for candidate in keycloak_usernames(username):
                found = self._call(f"find user {candidate}",
                                   partial(self._admin.get_user_id, candidate))
                if found is not None:
                    break
            self._user_ids[username] = found
        return self._user_ids[username]

    def _members(self, group_id: str, name: str) -> dict[str, str]:
        """Members by portal name (what ``team.yaml`` lists) → Keycloak user id."""
        users = self._call(f"list members of {name}",
                           lambda: self._admin.get_group_members(group_id))
        members = {}
        for user in users:
            raw = str(user["username"]).lower()
            members[portal_username(raw) or raw] = str(user["id"])
        return members

    def _plan_group(self, path: str, members: Sequence[str], report: SyncReport, *,
                    exact: bool) -> list[_GroupPlan]:
        plans: list[_GroupPlan] = []
        team = team_of_group(path) is not None
        group = self._find(path)
        renamed_from = None
        if group is None and team:  # renamed in Keycloak? The repository owns the name.
            group = self._find_marked(path)
            renamed_from = str(group.get("path", "")).strip("/") if group else None
        if group is None and "/" in path:  # a nested admin group: its parents first
            parent = path.rsplit("/", 1)[0]
            plans = [p for p in self._plan_group(parent, (), report, exact=False)
                     if p.group_id is None]
        group_id = str(group["id"]) if group is not None else None
        plan = _GroupPlan(path, group_id, path.rsplit("/", 1)[0] if "/" in path else None,
                          renamed_from=renamed_from)
        if group is not None and team and (renamed_from or not _marked(group, path)):
            found = group.get("attributes")
            attributes: dict[str, Any] = dict(found) if isinstance(found, dict) else {}
            plan.update = {"name": path, "attributes": {**attributes, MARK: [path]}}
        current = self._members(group_id, path) if group_id is not None else {}
        wanted = {portal_username(m.lstrip("@")) or m.strip().lower()
                  for m in members if m.strip()}
        for username in sorted(wanted - set(current)):
            user_id = self._user_id(username)
            if user_id is None:
                if username not in report.missing_users:
                    report.missing_users.append(username)
                continue
            plan.add.append((username, user_id))
        if exact:
            plan.remove = [(u, current[u]) for u in sorted(set(current) - wanted)]
        return [*plans, plan]

    # --- the sync -----------------------------------------------------------------------
    def plan(self, groups: Iterable[GroupSpec], *, admins: Sequence[str] = ("platform-admin",)
             ) -> tuple[list[_GroupPlan], SyncReport]:
        """Read-only: what ``sync`` would write. Raises ``SyncError`` on a refused name."""
        wanted = list(groups)
        seen: set[str] = set()
        for group in wanted:  # every name checked before the first request
            _check_team_group(group.name, self.admin_group)
            if group.name in seen:
                raise KeycloakPermanentError(f"group {group.name!r} is claimed twice")
            seen.add(group.name)
        report = SyncReport()
        self._user_ids.clear()
        # One token up front instead of learning from a 401 on the first call; a kept client
        # (``reconciler.clients``) has one already, renewed by python-keycloak when it is due.
        if self._admin.connection.token is None:
            self._call("get an admin token", self._admin.connection.get_token)
        plans: list[_GroupPlan] = []
        for group in wanted:
            plans.extend(self._plan_group(group.name, group.members, report, exact=True))
        if admins:
            plans.extend(self._plan_group(self.admin_group, admins, report, exact=False))
        return plans, report

    def sync(self, groups: Iterable[GroupSpec], *, admins: Sequence[str] = ("platform-admin",)
             ) -> SyncReport:
        plans, report = self.plan(groups, admins=admins)
        ids = {p.path: p.group_id for p in plans if p.group_id is not None}
        for plan in plans:
            group_id = ids.get(plan.path) or self._create(plan, ids, report)
            ids[plan.path] = group_id
            if plan.update is not None:
                self._call(f"update group {plan.path}",
                           partial(self._admin.update_group, group_id, plan.update))
                if plan.renamed_from:
                    report.renamed.append((plan.renamed_from, plan.path))
                else:
                    report.marked.append(plan.path)
            for username, user_id in plan.add:
                self._call(f"add {username} to {plan.path}",
                           partial(self._admin.group_user_add, user_id, group_id))
                report.added.append((plan.path, username))
            for username, user_id in plan.remove:
                self._call(f"remove {username} from {plan.path}",
                           partial(self._admin.group_user_remove, user_id, group_id))
                report.removed.append((plan.path, username))
        return report

    def _create(self, plan: _GroupPlan, ids: Mapping[str, str | None], report: SyncReport
                ) -> str:
        name = plan.path.rsplit("/", 1)[-1]
        parent = ids.get(plan.parent) if plan.parent else None
        payload: dict[str, Any] = {"name": name}
        if team_of_group(plan.path) is not None:
            payload["attributes"] = {MARK: [plan.path]}
        created = self._call(f"create group {plan.path}", lambda: self._admin.create_group(
            payload, parent=parent, skip_exists=True))
        if created is None:  # created meanwhile by someone else (409): read it back
            found = self._find(plan.path)
            if found is None:
                raise KeycloakTemporaryError(
                    f"group {plan.path} exists (409) but cannot be read back")
            return str(found["id"])
        report.created_groups.append(plan.path)
        return str(created)


def _check_team_group(name: str, admin_group: str) -> None:
    """Only derived team groups are synced from team files; the admin group and any other
    platform group never are (defence in depth behind the request and merge checks)."""
    try:
        check_group_path(name, field="group")
    except GroupRuleError as exc:
        raise KeycloakPermanentError(f"refused: {exc.message}") from None
    if name == admin_group or team_of_group(name) is None:
        raise KeycloakPermanentError(
            f"refused: {name!r} is not a team group (team-<team>[-admins]); the sync never "
            "manages a platform group from a team file")


def _error(action: str, exc: KeycloakError) -> SyncError:
    if isinstance(exc, KeycloakConnectionError):
        return KeycloakTemporaryError(f"{action}: Keycloak cannot be reached ({exc})")
    status = exc.response_code
    return SyncError.make(f"{action}: Keycloak answered {status}: {exc.error_message!r}",
                          temporary=is_temporary_status(status), status=status)
