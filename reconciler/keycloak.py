"""``KeycloakSync``: team groups and their members kept in step with the GitOps repository.

Public contract:

- ``KeycloakSync.from_settings(settings)`` (``keycloak_url``, ``keycloak_realm``,
  ``keycloak_admin_client_id``/``_secret``, ``oidc_admin_group``); raises
  ``reconciler.adapters.NotConfigured`` when the URL or the client credentials are empty.
  ``KeycloakSync(admin, admin_group="platform-admins")`` for a ready ``KeycloakAdmin``.
- ``groups_from_team(team) -> list[GroupSpec]`` reads a parsed ``team.yaml`` (``caas.io/v1
  Team``): ``spec.keycloakGroup`` gets owners and members; ``spec.groups.admin`` (when set and
  different) gets the owners. The view group is not managed: the repository does not list it.
- ``sync(groups, *, admins=("platform-admin",)) -> SyncReport``: creates missing groups, adds
  missing members, removes members not listed (exact membership per managed group), and puts
  each of ``admins`` into the admin group (added, never removed: break-glass admins added by
  hand stay). Idempotent: a second run with the same input changes nothing.
- Users are never created here (they come from sign-in / identity providers); usernames that
  do not exist are reported in ``SyncReport.missing_users``.
- Failures raise ``SyncError`` (``temporary`` for connection errors, 408/429/5xx).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakConnectionError, KeycloakError, KeycloakGetError

from reconciler.adapters import AdapterError, NotConfigured, is_temporary_status

if TYPE_CHECKING:
    from collections.abc import Callable

    from portal.settings import Settings

T = TypeVar("T")


class SyncError(AdapterError):
    """A Keycloak admin call failed; ``temporary`` says whether to retry."""

    code = "keycloak_sync_failed"


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

    @property
    def changed(self) -> bool:
        return bool(self.created_groups or self.added or self.removed)

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


def groups_from_team(team: Mapping[str, Any]) -> list[GroupSpec]:
    """The groups one parsed ``team.yaml`` asks for (see the module docstring)."""
    spec = team.get("spec") if team.get("kind") == "Team" else team
    if not isinstance(spec, Mapping):
        return []
    owners = _names(spec.get("owners"))
    members = sorted(set(owners) | set(_names(spec.get("members"))))
    result: list[GroupSpec] = []
    name = spec.get("keycloakGroup") or spec.get("keycloak_group")
    if isinstance(name, str) and name:
        result.append(GroupSpec(name, members))
    groups = spec.get("groups")
    admin = groups.get("admin") if isinstance(groups, Mapping) else None
    if isinstance(admin, str) and admin and admin != name:
        result.append(GroupSpec(admin, sorted(set(owners))))
    return result


class KeycloakSync:
    """Groups and memberships through python-keycloak's admin client."""

    def __init__(self, admin: KeycloakAdmin, *, admin_group: str = "platform-admins") -> None:
        self._admin = admin
        self.admin_group = admin_group
        self._user_ids: dict[str, str | None] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> KeycloakSync:
        secret = settings.keycloak_admin_client_secret
        if not settings.keycloak_url:
            raise NotConfigured("not configured: no Keycloak URL", setting="keycloak_url")
        if not settings.keycloak_admin_client_id or secret is None:
            raise NotConfigured("not configured: no Keycloak admin client credentials",
                                setting="keycloak_admin_client_id")
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

    def _group_id(self, name: str, report: SyncReport) -> str:
        _check_name(name)
        try:
            group = self._admin.get_group_by_path(name)
            return str(group["id"])
        except KeycloakError as exc:
            if not isinstance(exc, KeycloakGetError) or exc.response_code != 404:
                raise _error(f"find group {name}", exc) from exc
        created = self._call(f"create group {name}", lambda: self._admin.create_group(
            {"name": name}, skip_exists=True))
        if created is None:  # created meanwhile by someone else (409): read it back
            group = self._call(f"find group {name}", lambda: self._admin.get_group_by_path(name))
            return str(group["id"])
        report.created_groups.append(name)
        return str(created)

    def _user_id(self, username: str) -> str | None:
        if username not in self._user_ids:
            self._user_ids[username] = self._call(
                f"find user {username}", lambda: self._admin.get_user_id(username))
        return self._user_ids[username]

    def _members(self, group_id: str, name: str) -> dict[str, str]:
        users = self._call(f"list members of {name}",
                           lambda: self._admin.get_group_members(group_id))
        return {str(u["username"]).lower(): str(u["id"]) for u in users}

    def _ensure(self, group: GroupSpec, report: SyncReport, *, exact: bool) -> None:
        group_id = self._group_id(group.name, report)
        current = self._members(group_id, group.name)
        wanted = {m.strip().lstrip("@").lower() for m in group.members if m.strip()}
        for username in sorted(wanted - set(current)):
            user_id = self._user_id(username)
            if user_id is None:
                if username not in report.missing_users:
                    report.missing_users.append(username)
                continue
            self._call(f"add {username} to {group.name}",
                       partial(self._admin.group_user_add, user_id, group_id))
            report.added.append((group.name, username))
        if not exact:
            return
        for username in sorted(set(current) - wanted):
            self._call(f"remove {username} from {group.name}",
                       partial(self._admin.group_user_remove, current[username], group_id))
            report.removed.append((group.name, username))

    # --- the sync -----------------------------------------------------------------------
    def sync(self, groups: Iterable[GroupSpec], *, admins: Sequence[str] = ("platform-admin",)
             ) -> SyncReport:
        wanted = list(groups)
        seen: set[str] = set()
        for group in wanted:  # every name checked before the first write
            _check_name(group.name)
            if group.name in seen:
                raise SyncError(f"group {group.name!r} is claimed twice", temporary=False)
            seen.add(group.name)
        report = SyncReport()
        self._user_ids.clear()
        # One token up front instead of learning from a 401 on the first call.
        self._call("get an admin token", self._admin.connection.get_token)
        for group in wanted:
            self._ensure(group, report, exact=True)
        if admins and self.admin_group not in seen:
            self._ensure(GroupSpec(self.admin_group, list(admins)), report, exact=False)
        return report


def _check_name(name: str) -> None:
    # Team groups are top-level: a slash would address a sub-group path instead.
    if not name or "/" in name or name != name.strip():
        raise SyncError(f"group name {name!r} is not a top-level group name", temporary=False)


def _error(action: str, exc: KeycloakError) -> SyncError:
    if isinstance(exc, KeycloakConnectionError):
        return SyncError(f"{action}: Keycloak cannot be reached ({exc})", temporary=True)
    status = exc.response_code
    return SyncError(f"{action}: Keycloak answered {status}: {exc.error_message!r}",
                     temporary=is_temporary_status(status), status=status)
