"""``caas init``: from nothing to a running platform — start the GitOps repository, index the
catalog, create the first platform-admin, and say what comes next. Idempotent: a second run
changes nothing and says so.

Public contract:

- ``init_platform(*, settings, engine, admin="admin", repo_url=None, org=None,
  apply_protection=True) -> InitReport``: starts the repository on the configured forge
  (``gitops.bootstrap``): local — the bare repository and the skeleton as its first commit;
  GitHub — the skeleton pushed as the first commits of an empty repository, or one bootstrap
  pull request (branch ``caas/bootstrap``) on a repository whose ``main`` lacks it, plus the
  branch protection the merge rules rely on (``gitops.forges.github_bootstrap``; applied when
  the token may, else reported). Then it indexes the catalog from ``main`` and creates the
  platform-admin ``admin`` when no platform-admin exists (``InitReport.password``, printed once).
  Raises ``ConfigError`` for a missing GitHub setting, ``BootstrapError`` for a missing skeleton.
- ``start_repository(*, settings, engine, repo_url=None, org=None, apply_protection=True)
  -> RepositoryReport``: the repository part alone (``caas demo`` uses it).
- ``REQUIRED_CHECKS``: the commit statuses every portal change carries
  (``scaffolder.service`` reports ``caas/<check>`` for each check of ``scaffolder.checks_runner``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session, select

from gitops import bootstrap
from gitops.forges.base import ChangeSpec, Forge
from gitops.forges.factory import make_forge
from portal import db
from portal.auth import service as auth_service
from portal.auth.models import User
from portal.auth.passwords import generate_password
from portal.settings import ForgeKind, Settings
from scaffolder.codeowners import owners_config, render_for_files

REQUIRED_CHECKS = ("caas/manifests", "caas/kustomize", "caas/policies", "caas/collisions",
                   "caas/capacity")
ACTOR = "caas-init"


@dataclass
class RepositoryReport:
    forge: str
    repository: str
    outcome: str  # created | unchanged | change-opened | change-open
    change_url: str = ""
    protection: list[str] = field(default_factory=list)  # lines for the operator
    commit: str = ""


@dataclass
class InitReport:
    repository: RepositoryReport
    catalog: str = ""
    admin: str = ""
    password: str = ""  # set only when the admin was created now
    next_steps: list[str] = field(default_factory=list)


def placeholders(settings: Settings, *, repo_url: str | None, org: str | None
                 ) -> bootstrap.Placeholders:
    """The values filled into the skeleton: the clone URL ArgoCD uses, the organisation, the
    flat admin group name (``CAAS_OIDC_ADMIN_GROUP``, nested paths joined with ``-`` as the
    CODEOWNERS team name is)."""
    group = settings.oidc_admin_group.strip("/").replace("/", "-") or "platform-admins"
    if settings.forge is ForgeKind.github and settings.github_repo:
        owner = settings.github_repo.split("/", 1)[0]
        host = settings.github_url.rstrip("/")
        web = ("https://github.com" if host == "https://api.github.com"
               else host.removesuffix("/api/v3"))
        return bootstrap.Placeholders(repo_url or f"{web}/{settings.github_repo}.git",
                                      org or owner, group)
    return bootstrap.Placeholders(repo_url or settings.resolved_gitops_repo.resolve().as_uri(),
                                  org or "example-org", group)


def skeleton(settings: Settings, *, repo_url: str | None, org: str | None) -> dict[str, bytes]:
    """The skeleton's files for this platform, CODEOWNERS rendered for its forge."""
    values = placeholders(settings, repo_url=repo_url, org=org)
    files = bootstrap.skeleton_files(settings.skeleton_dir, values)
    owners_org, admins = owners_config(settings)
    return {**files, "CODEOWNERS": render_for_files(files, org=owners_org, admins=admins)}


def start_repository(*, settings: Settings, engine: Engine, repo_url: str | None = None,
                     org: str | None = None, apply_protection: bool = True) -> RepositoryReport:
    files = skeleton(settings, repo_url=repo_url, org=org)
    main = settings.main_branch
    if settings.forge is ForgeKind.github:
        return _start_github(settings, engine, files, apply_protection=apply_protection)
    git_dir = settings.resolved_gitops_repo
    forge = make_forge(settings, engine)
    report = RepositoryReport("local", str(git_dir), "unchanged")
    if bootstrap.start_local(git_dir, files, branch=main):
        report.outcome = "created"
    else:
        _bootstrap_change(forge, files, main, report)
    report.commit = forge.head(main)
    return report


def _bootstrap_change(forge: Forge, files: dict[str, bytes], main: str,
                      report: RepositoryReport) -> None:
    """On a ``main`` without the skeleton: the one bootstrap change (opened, or found open)."""
    if bootstrap.state_of(forge, main=main) is bootstrap.RepositoryState.started:
        return
    existing = forge.find_change(bootstrap.BRANCH)
    missing = bootstrap.missing_files(forge, files, main=main)
    info = existing or forge.open_change(ChangeSpec(
        branch=bootstrap.BRANCH, base=main, author=ACTOR, files=missing,
        title="Bootstrap the GitOps repository (caas init)",
        body=("Adds the caas-portal GitOps skeleton: the ArgoCD App of Apps "
              "(`bootstrap/root.yaml`), the platform's Applications, the platform team, "
              "CODEOWNERS. Files that already exist on the base branch are left unchanged.")))
    report.outcome = "change-open" if existing else "change-opened"
    report.change_url = info.url


def _start_github(settings: Settings, engine: Engine, files: dict[str, bytes], *,
                  apply_protection: bool) -> RepositoryReport:
    from gitops.forges import github_bootstrap
    from gitops.forges.github import GitHubForge

    forge = make_forge(settings, engine)
    assert isinstance(forge, GitHubForge)
    main = settings.main_branch
    report = RepositoryReport("github", str(settings.github_repo), "unchanged")
    state = bootstrap.state_of(forge, main=main)
    if state is bootstrap.RepositoryState.empty or github_bootstrap.first_commit_only(
            forge, branch=main):
        github_bootstrap.push_skeleton(forge, files, branch=main)
        report.outcome = "created"
    else:
        _bootstrap_change(forge, files, main, report)
    protection = github_bootstrap.Protection(contexts=REQUIRED_CHECKS)
    if apply_protection:
        result = github_bootstrap.ensure_protection(forge, protection, branch=main)
        if result.outcome == "present":
            report.protection = [f"branch protection of {main}: in place"]
        elif result.outcome == "applied":
            report.protection = [f"branch protection of {main} applied:",
                                 *(f"  {line}" for line in result.missing)]
        else:
            report.protection = [f"branch protection of {main} NOT applied ({result.message}); "
                                 "set it in the repository's Settings → Branches:",
                                 *(f"  {line}" for line in result.missing)]
    else:
        report.protection = [f"branch protection the merge rules rely on ({main}):",
                             *(f"  {line}" for line in protection.describe())]
    report.commit = forge.head(main)
    return report


def init_platform(*, settings: Settings, engine: Engine, admin: str = "admin",
                  repo_url: str | None = None, org: str | None = None,
                  apply_protection: bool = True) -> InitReport:
    from catalog import service as catalog_service

    repository = start_repository(settings=settings, engine=engine, repo_url=repo_url, org=org,
                                  apply_protection=apply_protection)
    report = InitReport(repository)
    forge = make_forge(settings, engine)
    with db.session_scope(engine) as session:
        result = catalog_service.reindex(session, forge=forge, ref=settings.main_branch)
        report.catalog = (f"catalog indexed {result.commit[:12]}: {len(result.added)} added, "
                          f"{len(result.changed)} updated, {len(result.removed)} removed")
        report.admin, report.password = _first_admin(session, admin)
    report.next_steps = [
        "caas serve                       # the portal (web and API)",
        "caas worker                      # the reconciler, beside it (same settings)",
        "caas create-environment NAME --provider local --region local --tier dev",
        "caas team add NAME --member USER:reviewer",
    ]
    return report


def _first_admin(session: Session, username: str) -> tuple[str, str]:
    """(platform-admin name, password) — the password only when the account was created now."""
    existing = session.exec(select(User).where(User.is_platform_admin == True)  # noqa: E712
                            .order_by(User.id)).first()  # type: ignore[arg-type]
    if existing is not None:
        return existing.username, ""
    password = generate_password()
    auth_service.create_user(session, username=username, password=password,
                             is_platform_admin=True, actor=ACTOR)
    return username, password
