"""The ``caas`` command. Every expected failure prints one line and exits non-zero."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy import Engine
from sqlmodel import Session

from portal import db, tracing
from portal.auth import service as auth_service
from portal.auth.models import Role
from portal.auth.passwords import generate_password
from portal.errors import CaasError, ConfigError
from portal.settings import Settings

app = typer.Typer(help="caas-portal: self-service Kubernetes through GitOps pull requests.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Local user accounts.", no_args_is_help=True)
team_app = typer.Typer(help="Teams and memberships.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for the CLI and automation.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(team_app, name="team")
app.add_typer(token_app, name="token")
catalog_app = typer.Typer(help="The catalog of teams, namespaces, environments, applications.",
                          no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

out = Console()

if TYPE_CHECKING:
    from fastapi import FastAPI


def load_settings(**overrides: object) -> Settings:
    try:
        # CAAS_SECRETS_DIR: a folder of files named like the variables (CAAS_DATABASE_URL, ...),
        # e.g. a mounted Kubernetes Secret; environment variables still win over them.
        settings = Settings(_secrets_dir=os.environ.get("CAAS_SECRETS_DIR") or None)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "CAAS_" + str(first["loc"][0]).upper() if first.get("loc") else "settings"
        raise ConfigError(f"{field}: {first['msg']}", field=field) from exc
    return settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def ready_engine(settings: Settings, *, migrate: bool = True) -> Engine:
    from portal.logs import configure
    from portal.startup import check_data_dir

    configure(settings.log_level, settings.log_format)
    # Migration chatter is not news on every command; real problems still log as warnings.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    check_data_dir(settings)
    engine = db.make_engine(settings)
    db.check_connection(engine)
    if migrate:
        db.upgrade(engine)
    return engine


# ---- serving ------------------------------------------------------------------------------------


def _serve(settings: Settings, *, background: bool) -> None:
    """Serve with uvicorn: one process in-line, or ``settings.workers`` processes (0: one per
    CPU) that uvicorn spawns and supervises, each building its app with :func:`serving_app`.

    Everything the processes share lives in the database (sessions, CSRF tokens, the sign-in
    rate limit, the catalog's and identity's generations that key their caches); the parent
    prepares it once (migrations, the settings audit, the secret key) before spawning. The
    demo's in-process reconciler (``background``) runs in a single process only.
    """
    import uvicorn

    from portal.app import create_app
    from portal.startup import check_port, server_workers

    check_port(settings.host, settings.port)
    engine = ready_engine(settings, migrate=settings.migrate_on_start)
    from portal.auth.settings_audit import record_settings_change

    with db.session_scope(engine) as session:  # settings changed since the last start
        record_settings_change(session, settings)
    settings.resolved_secret_key()  # generated here once, never by racing workers
    workers = 1 if background else server_workers(settings.workers)
    # The asyncio event loop, not uvloop: libuv accepts ONE connection per loop iteration
    # (libuv/libuv#3696), so a burst of new connections on a busy process waited up to 3 s to
    # be accepted (256 connections, two processes: accepts spread over 1.3-3.2 s, p99 0.8-2.7 s
    # even for /healthz); asyncio accepts up to the backlog at once (all in ~40 ms, p99
    # 140-190 ms in the same back-to-back runs, bench/catalog.py). httptools still parses.
    options: dict[str, object] = {"host": settings.host, "port": settings.port,
                                  "log_config": None, "proxy_headers": True,
                                  "forwarded_allow_ips": "127.0.0.1", "loop": "asyncio",
                                  "http": "httptools"}
    if workers == 1:
        application = create_app(settings, engine=engine, background=background, serving=True)
        uvicorn.run(application, **options)  # type: ignore[arg-type]
        return
    engine.dispose()
    # The spawned workers read their settings from the environment: pass the CLI overrides on.
    os.environ.update({"CAAS_HOST": settings.host, "CAAS_PORT": str(settings.port)})
    # uvicorn's supervisor (restarts, signals, health pings) with one listening socket per
    # worker, not one shared by all (portal.listeners: a burst of connections no longer lands
    # in one process).
    from uvicorn.supervisors import Multiprocess

    from portal.listeners import ReusePortListener

    config = uvicorn.Config("portal.cli:serving_app", factory=True, workers=workers,
                            **options)  # type: ignore[arg-type]
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[ReusePortListener(settings.host, settings.port)]).run()


def serving_app() -> FastAPI:
    """The app of one ``caas serve --workers N`` process (uvicorn's factory; the parent has
    migrated the database already, so no worker races another on the schema)."""
    from portal.app import create_app
    from portal.logs import configure

    settings = load_settings().model_copy(update={"migrate_on_start": False})
    configure(settings.log_level, settings.log_format)
    return create_app(settings, serving=True)


# The CLI runs beside the database (no sign-in): it acts as the named portal user, with that
# user's roles. Without --user (or CAAS_USER) it acts as `admin`, the platform-admin `caas init`
# creates; README "Command line" says so.
USER_HELP = ("Act as this portal user, with its roles (default: admin, the platform-admin that "
             "`caas init` creates; or set CAAS_USER).")

@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (CAAS_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CAAS_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(
        min=0, max=64, help="Server processes (CAAS_WORKERS; 0: one per CPU).")] = None,
) -> None:
    """Serve the web portal and API (run `caas worker` beside it)."""
    _serve(load_settings(host=host, port=port, workers=workers), background=False)


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Drain the queue, then exit.")] = False,
    health_port: Annotated[int | None, typer.Option(
        help="Serve /healthz and /readyz on this port (probes); off when unset.",
        envvar="CAAS_WORKER_HEALTH_PORT")] = None,
) -> None:
    """Run the reconciler: merge events → jobs → Terraform, ArgoCD, Keycloak, catalog."""
    from portal.health import HealthServer
    from reconciler.runtime import run_worker

    settings = load_settings()
    engine = ready_engine(settings)
    if tracing.configure(service="caas-worker"):  # only with OTEL_EXPORTER_OTLP_ENDPOINT
        tracing.instrument_engine(engine)
    from gitops.repo_status import STATUS

    # The worker's poller keeps STATUS current: /readyz reports it without probing the forge.
    health = (HealthServer(engine, host=settings.host, port=health_port,
                           problem=lambda: STATUS.problem).start()
              if health_port is not None else None)
    try:
        run_worker(settings, engine, once=once)
    finally:
        if health is not None:
            health.stop()


@app.command()
def init(
    admin: Annotated[str, typer.Option(help="Name of the first platform-admin (created only "
                                       "when there is none; its password is printed once).")]
    = "admin",
    repo_url: Annotated[str | None, typer.Option(
        help="URL ArgoCD clones the GitOps repository from (default: the GitHub repository's "
             "clone URL; local forge: file:// of the bare repository).")] = None,
    org: Annotated[str | None, typer.Option(
        help="Organisation whose repositories the platform team may deploy (default: the "
             "owner of CAAS_GITHUB_REPO).")] = None,
    no_protection: Annotated[bool, typer.Option(
        "--no-protection", help="Only report the branch protection, never write it.")] = False,
) -> None:
    """Start the GitOps repository from the skeleton, index the catalog, create the first
    platform-admin (idempotent: a second run changes nothing)."""
    from portal.bootstrap import init_platform

    settings = load_settings()
    engine = ready_engine(settings)
    report = init_platform(settings=settings, engine=engine, admin=admin, repo_url=repo_url,
                           org=org, apply_protection=not no_protection)
    repo = report.repository
    what = {"created": "started from the skeleton",
            "unchanged": "already started, unchanged",
            "change-opened": f"has commits without the skeleton: bootstrap change opened "
                             f"{repo.change_url} (merge it)",
            "change-open": f"bootstrap change still open: {repo.change_url} (merge it)"}
    out.print(f"GitOps repository ({repo.forge}) {repo.repository}: {what[repo.outcome]}",
              soft_wrap=True)
    for line in repo.protection:
        out.print(line, soft_wrap=True, markup=False)
    out.print(report.catalog)
    if report.password:
        out.print(f"platform-admin [cyan]{report.admin}[/] created; password "
                  f"[cyan]{report.password}[/] (printed once; change it with "
                  "`caas user password`)", soft_wrap=True)
    else:
        out.print(f"platform-admin {report.admin} exists (unchanged)")
    out.print("next steps (same CAAS_* settings in each process):")
    for step in report.next_steps:
        out.print(f"  {step}", markup=False, soft_wrap=True)


@app.command()
def demo(
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Embedded demo: SQLite, a local GitOps repository, local users; web and worker in one."""
    from portal.bootstrap import start_repository

    settings = load_settings(port=port)
    engine = ready_engine(settings)
    if start_repository(settings=settings, engine=engine).outcome == "created":
        out.print(f"GitOps repository created: {settings.resolved_gitops_repo}")
    with db.session_scope(engine) as session:
        created = _demo_accounts(session)
    for username, password, what in created:
        out.print(f"[bold]{what}[/]: user [cyan]{username}[/] password [cyan]{password}[/] "
                  "(printed once; change it with `caas user password`)")
    out.print(f"Portal: http://{settings.host}:{settings.port}/")
    _serve(settings, background=True)


def _demo_accounts(session: Session) -> list[tuple[str, str, str]]:
    from sqlmodel import select

    from portal.auth.models import User

    created: list[tuple[str, str, str]] = []
    auth_service.ensure_team(session, name="platform", actor="demo")
    for username, admin, role, what in (
        ("admin", True, Role.reviewer, "platform admin"),
        ("dev", False, Role.developer, "demo developer"),
    ):
        if session.exec(select(User).where(User.username == username)).first():
            continue
        password = generate_password()
        auth_service.create_user(session, username=username, password=password,
                                 is_platform_admin=admin, actor="demo")
        auth_service.add_member(session, team="platform", username=username, role=role,
                                actor="demo")
        created.append((username, password, what))
    return created


# ---- scaffolder ---------------------------------------------------------------------------------


def _scaffold(settings: Settings, username: str, template: str, answers: dict[str, object],
              *, dry_run: bool, update: bool = False) -> None:
    from rich.table import Table

    from gitops.forges.factory import make_forge
    from scaffolder import service as scaffolder_service
    from scaffolder.models import ScaffoldRequest
    from scaffolder.registry import Registry

    engine = ready_engine(settings)
    registry, forge = Registry(settings), make_forge(settings, engine)
    request = ScaffoldRequest(template=template, answers=answers, update=update)
    with db.session_scope(engine) as session:
        principal = auth_service.principal_for(
            session, auth_service.get_user(session, username=username), via="token")
        if dry_run:
            result = scaffolder_service.dry_run(session, registry=registry, forge=forge,
                                                principal=principal, request=request)
            table = Table("file", "status")
            for f in result.files:
                table.add_row(f.path, f.status)
            out.print(table)
            for c in result.checks:
                out.print(f"{'[green]ok[/]' if c.state == 'success' else '[red]FAIL[/]'} "
                          f"{c.name}: {c.summary}")
            return
        with out.status("scaffolding…") as status:
            def progress(step: str, state: str, message: str) -> None:
                status.update(f"{step}: {state}")
                out.print(f"[dim]{step}[/] {state} {message}")

            task = scaffolder_service.create_task(session, registry=registry, forge=forge,
                                                  principal=principal, request=request,
                                                  progress=progress)
    if task.status != "succeeded":
        raise CaasError(f"task {task.id} failed: {task.error} (retry with the API)")
    out.print(f"[bold]change #{task.change_number}[/] {task.change_url}")


@app.command()
def scaffold(
    template: str,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value (repeatable); "
                                                   "non-string fields take JSON.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Render and check only.")] = False,
    update: Annotated[bool, typer.Option(
        "--update", help="Change an existing unit: its stored answers plus --set ones (the "
        "identifying answers name the unit); the PR is the minimal diff.")] = False,
    user: Annotated[str, typer.Option(help=USER_HELP, envvar="CAAS_USER")] = "admin",
) -> None:
    """Render TEMPLATE with --set answers, run the checks and open the pull request."""
    from scaffolder.cli_values import parse_values
    from scaffolder.registry import Registry

    settings = load_settings()
    answers = parse_values(registry=Registry(settings), template=template,
                                              pairs=set_ or [])
    _scaffold(settings, user, template, answers, dry_run=dry_run, update=update)


@app.command()
def replay(
    answers_file: Annotated[Path, typer.Argument(help="A unit's .caas-answers.yaml.")],
    output: Annotated[Path | None, typer.Option(help="Write the replay file here "
                                                "(default: standard output).")] = None,
) -> None:
    """Turn a unit's .caas-answers.yaml into a cookiecutter replay file:
    `cookiecutter --replay-file OUTPUT templates/<template>` renders the unit as the portal did."""
    import json

    from scaffolder.registry import Registry
    from scaffolder.render import replay_for_unit

    try:
        content = answers_file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"answers_file: cannot read {answers_file}: {exc.strerror}",
                          field="answers_file") from exc
    template, document, version = replay_for_unit(registry=Registry(load_settings()),
                                                  content=content)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    if version != template.version:
        print(f"caas: note: the unit was rendered by {template.name} {version or '?'}; the "
              f"replay renders with the current {template.version}", file=sys.stderr)


@app.command()
def decommission(
    unit: Annotated[str, typer.Argument(help="The unit's folder, e.g. tenants/pay/pay-web.")],
    user: Annotated[str, typer.Option(help=USER_HELP, envvar="CAAS_USER")] = "admin",
) -> None:
    """Open the pull request that removes UNIT: its files deleted, the lists naming it
    updated. Refused while it has dependants (a team's namespaces, a namespace's apps)."""
    from gitops.forges.factory import make_forge
    from scaffolder import service as scaffolder_service
    from scaffolder.registry import Registry

    settings = load_settings()
    engine = ready_engine(settings)
    registry, forge = Registry(settings), make_forge(settings, engine)
    with db.session_scope(engine) as session:
        principal = auth_service.principal_for(
            session, auth_service.get_user(session, username=user), via="token")
        task = scaffolder_service.decommission_task(session, registry=registry, forge=forge,
                                                    principal=principal, unit=unit)
    if task.status != "succeeded":
        raise CaasError(f"task {task.id} failed: {task.error} (retry with the API)")
    out.print(f"[bold]change #{task.change_number}[/] {task.change_url}")


@app.command()
def upgrade(
    template: Annotated[str | None, typer.Option(help="Only units of this template.")] = None,
    team: Annotated[str | None, typer.Option(help="Only units of this team.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Merge and report only.")] = False,
    per: Annotated[str, typer.Option(help="One PR per `unit` or per `team`.")] = "unit",
    user: Annotated[str, typer.Option(help=USER_HELP, envvar="CAAS_USER")] = "admin",
) -> None:
    """Open upgrade PRs for the units behind their template: a three-way merge per file
    (old version + answers, new version + answers, the file on main). Reruns open nothing new."""
    from gitops.forges.factory import make_forge
    from scaffolder.models import UpgradeRequest
    from scaffolder.registry import Registry
    from scaffolder.upgrade_service import run_upgrades

    try:
        request = UpgradeRequest(template=template, team=team, dry_run=dry_run, per=per)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"--{first['loc'][0]}: {first['msg']}",
                          field=str(first["loc"][0])) from None
    settings = load_settings()
    engine = ready_engine(settings)
    registry, forge = Registry(settings), make_forge(settings, engine)
    with db.session_scope(engine) as session:
        principal = auth_service.principal_for(
            session, auth_service.get_user(session, username=user), via="token")
        outcomes = run_upgrades(session, forge=forge, registry=registry, principal=principal,
                                request=request)
    for o in outcomes:
        pr = f" #{o.number} {o.url}" if o.number else ""
        out.print(f"{o.state:<12} {o.key}  {o.template} {','.join(v[:12] for v in o.from_versions)}"
                  f" -> {o.to_version[:12]}  files={len(o.files)} conflicts={len(o.conflicts)}"
                  f"{pr}", highlight=False, soft_wrap=True)
        for line in ([f"  added {k}={v!r}" for k, v in o.added.items()]
                     + [f"  dropped {k}" for k in o.dropped]
                     + [f"  conflict {c}" for c in o.conflicts]
                     + ([f"  {o.message}"] if o.message else [])):
            out.print(line, highlight=False, soft_wrap=True)
    if not outcomes:
        out.print("every unit is at its template's current version")


@app.command()
def promote(
    application: Annotated[str, typer.Argument(
        help="The application, TEAM/APP (with --tenant: the tenant, TEAM/NAMESPACE).")],
    source: Annotated[str, typer.Option("--from", help="Environment to carry from.")],
    target: Annotated[str, typer.Option("--to", help="Environment whose overlay changes.")],
    tenant: Annotated[bool, typer.Option(
        "--tenant", help="Promote a tenant's quota instead of an application.")] = False,
    user: Annotated[str, typer.Option(help=USER_HELP, envvar="CAAS_USER")] = "admin",
) -> None:
    """Open the pull request that carries APPLICATION's version and values (with --tenant: a
    tenant's CPU and memory quota) from --from's overlay to --to's; its gates (source health,
    approval, target policies, required statuses) are its checks."""
    from gitops.forges.factory import make_forge
    from scaffolder import promotion, promotion_tenant
    from scaffolder.registry import Registry

    team, _, name = application.partition("/")
    if not team or not name:
        raise ConfigError("application: give it as TEAM/APP (TEAM/NAMESPACE with --tenant)",
                          field="application")
    settings = load_settings()
    engine = ready_engine(settings)
    registry, forge = Registry(settings), make_forge(settings, engine)
    with db.session_scope(engine) as session:
        principal = auth_service.principal_for(
            session, auth_service.get_user(session, username=user), via="token")
        if tenant:
            task = promotion_tenant.promote(session, registry=registry, forge=forge,
                                            settings=settings, principal=principal, team=team,
                                            namespace=name, source=source, target=target)
        else:
            task = promotion.promote(session, registry=registry, forge=forge,
                                     settings=settings, principal=principal, team=team,
                                     app=name, source=source, target=target)
    if task.status != "succeeded":
        raise CaasError(f"task {task.id} failed: {task.error}")
    out.print(f"[bold]change #{task.change_number}[/] {task.change_url}")


@app.command("create-environment")
def create_environment(
    name: str,
    provider: Annotated[str, typer.Option(help="aws or local.")] = "local",
    region: Annotated[str, typer.Option(help="Cloud region.")] = "local",
    tier: Annotated[str, typer.Option(help="dev, staging or prod.")] = "dev",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Render and check only.")] = False,
    user: Annotated[str, typer.Option(help="A platform-admin. " + USER_HELP,
                                      envvar="CAAS_USER")] = "admin",
) -> None:
    """Open the pull request that adds environment NAME (envs/NAME/infra.yaml)."""
    _scaffold(load_settings(), user, "environment",
              {"environment": name, "provider": provider, "region": region, "tier": tier},
              dry_run=dry_run)


# ---- database -----------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations."""
    settings = load_settings()
    engine = ready_engine(settings, migrate=False)
    db.upgrade(engine)
    out.print(f"database schema up to date ({engine.dialect.name})")


# ---- users, teams, tokens -----------------------------------------------------------------------


@user_app.command("add")
def user_add(
    username: str,
    admin: Annotated[bool, typer.Option("--admin", help="Grant platform-admin.")] = False,
    display_name: Annotated[str, typer.Option(help="Shown in the portal.")] = "",
    email: Annotated[str, typer.Option()] = "",
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input.")] = False,
) -> None:
    """Create a local user; without --password-stdin a password is generated and printed once."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else generate_password()
    settings = load_settings()
    with db.session_scope(ready_engine(settings)) as session:
        auth_service.create_user(session, username=username, password=password,
                                 display_name=display_name, email=email,
                                 is_platform_admin=admin, actor="cli")
    out.print(f"user {username} created" + ("" if password_stdin else f"; password: {password}"))


@user_app.command("password")
def user_password(username: str) -> None:
    """Set a new generated password for a local user (printed once)."""
    password = generate_password()
    settings = load_settings()
    with db.session_scope(ready_engine(settings)) as session:
        auth_service.set_password(session, username=username, password=password, actor="cli")
    out.print(f"new password for {username}: {password}")


@team_app.command("add")
def team_add(
    name: str,
    member: Annotated[list[str] | None, typer.Option(
        help="USER or USER:ROLE (developer|reviewer); repeatable.")] = None,
) -> None:
    """Create a team (or add members to an existing one)."""
    settings = load_settings()
    with db.session_scope(ready_engine(settings)) as session:
        auth_service.ensure_team(session, name=name, actor="cli")
        for spec in member or []:
            username, _, role = spec.partition(":")
            try:
                parsed = Role(role or "developer")
            except ValueError:
                raise ConfigError(f"--member {spec}: role must be developer or reviewer",
                                  field="member") from None
            auth_service.add_member(session, team=name, username=username, role=parsed,
                                    actor="cli")
    out.print(f"team {name} ready")


@token_app.command("create")
def token_create(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    ttl_days: Annotated[int | None, typer.Option(help="Expire after N days.")] = None,
) -> None:
    """Create an API token for USERNAME; the token is printed once."""
    settings = load_settings()
    with db.session_scope(ready_engine(settings)) as session:
        _token, clear = auth_service.create_token(session, username=username, name=name,
                                                  ttl_days=ttl_days, actor="cli")
    print(clear)


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke an API token by id."""
    from portal.auth.principal import SYSTEM

    settings = load_settings()
    with db.session_scope(ready_engine(settings)) as session:
        auth_service.revoke_token(session, token_id=token_id, principal=SYSTEM)
    out.print(f"token {token_id} revoked")


@catalog_app.command("reindex")
def catalog_reindex() -> None:
    """Rebuild the whole catalog from the head of the GitOps repository's main branch."""
    from catalog import service as catalog_service
    from gitops.forges.factory import make_forge

    settings = load_settings()
    engine = ready_engine(settings)
    forge = make_forge(settings, engine)
    with db.session_scope(engine) as session:
        result = catalog_service.reindex(session, forge=forge, ref=settings.main_branch)
    out.print(f"catalog indexed {result.commit[:12]}: {len(result.added)} added, "
              f"{len(result.changed)} updated, {len(result.removed)} removed, "
              f"{len(result.flagged)} flagged ({result.seconds:.2f} s)")
    for key in result.flagged:
        out.print(f"  flagged: {key}")


@app.command("drift")
def drift(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    side: Annotated[list[str] | None, typer.Option(
        "--side", help="Check only this side (git, catalog, cluster, keycloak); repeatable.")
    ] = None,
) -> None:
    """Compare git, the catalog, the cluster and Keycloak now, store the findings and list
    them; exit 1 when anything drifted."""
    from catalog.drift import cli as drift_cli
    from gitops.forges.factory import make_forge
    from scaffolder.registry import Registry

    settings = load_settings()
    engine = ready_engine(settings)
    with db.session_scope(engine) as session:
        report = drift_cli.run(session, settings=settings, forge=make_forge(settings, engine),
                               registry=Registry(settings), sides=side)
    print(drift_cli.render(report, as_json=as_json), end="")
    if drift_cli.drifted(report):
        raise typer.Exit(1)


@app.command("check-codeowners")
def check_codeowners() -> None:
    """List the CODEOWNERS owners on main that the forge cannot ask for a review (GitHub:
    not collaborators of the repository, or teams without access); exit 1 when there are any."""
    from gitops.forges.base import CodeownersAudit
    from gitops.forges.factory import make_forge

    settings = load_settings()
    forge = make_forge(settings, ready_engine(settings))
    if not isinstance(forge, CodeownersAudit):
        out.print(f"the {forge.kind} forge refuses no reviewer: nothing to check")
        return
    problems = forge.codeowners_problems(settings.main_branch)
    for name in problems:
        out.print(f"cannot review: {name}")
    if problems:
        raise typer.Exit(1)
    out.print("every CODEOWNERS owner can be asked for a review")


def main() -> None:
    """Entry point: expected errors become one line on stderr and exit status 2."""
    try:
        code = app(standalone_mode=False)  # a command's typer.Exit(n) comes back as n
        if isinstance(code, int) and code:
            sys.exit(code)
    except CaasError as exc:
        print(f"caas: error: {exc.message}", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # usage errors and anything unforeseen: still one line
        format_message = getattr(exc, "format_message", None)
        if callable(format_message):  # click's (or typer's bundled click's) usage errors
            print(f"caas: error: {format_message()}", file=sys.stderr)
            sys.exit(int(getattr(exc, "exit_code", 2) or 2))
        print(f"caas: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
