"""Settings read from the environment (prefix ``CAAS_``) and, optionally, a ``.env`` file.

Nothing here is built at import time: callers construct ``Settings()`` and pass it down.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from portal.groups import GroupRuleError, normalise_platform_group

REPO_ROOT = Path(__file__).resolve().parent.parent


class ForgeKind(StrEnum):
    local = "local"
    github = "github"


class Settings(BaseSettings):
    """Every setting of the product. The README's configuration table is generated from this."""

    model_config = SettingsConfigDict(env_prefix="CAAS_", env_file=".env", extra="ignore")

    # --- process -----------------------------------------------------------------------------
    data_dir: Path = Field(Path(".caas"), description="Where embedded state lives (SQLite file, "
                           "local GitOps repository, Terraform working directories, secret key).")
    host: str = Field("127.0.0.1", description="Address the web server binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port the web server binds.")
    workers: int = Field(0, ge=0, le=64, description="Server processes of `caas serve` "
                         "(they share all state through the database). 0: one per CPU the "
                         "process may use (its cgroup's CPU limit, else its CPU affinity).")
    base_url: str = Field("http://127.0.0.1:8000", description="Public URL of the portal "
                          "(links in PR bodies, OIDC redirect URI).")
    log_level: str = Field("INFO", description="Log level (DEBUG, INFO, WARNING, ERROR).")
    log_format: str = Field("json", description="`json` (one object per line) or `text`.")

    # --- database ----------------------------------------------------------------------------
    database_url: str | None = Field(None, description="SQLAlchemy URL. Empty: SQLite under "
                                     "`data_dir`. Production: `postgresql+psycopg://user:pw@host/db`.")
    migrate_on_start: bool = Field(True, description="Apply migrations when serving starts.")

    # --- identity ----------------------------------------------------------------------------
    secret_key: SecretStr | None = Field(None, description="Key for signing (CSRF, OIDC state). "
                                         "Empty: generated once into `data_dir/secret.key`.")
    session_ttl_hours: int = Field(12, ge=1, description="Lifetime of a sign-in session.")
    cookie_secure: bool = Field(False, description="Set the Secure flag on cookies "
                                "(always true behind HTTPS in production).")
    local_login_enabled: bool = Field(True, description="Allow local accounts to sign in. "
                                      "When false, only local platform-admins still can "
                                      "(break-glass, audited).")
    login_rate_limit: int = Field(9, ge=1, description="Failed sign-ins allowed per user and "
                                  "per address within `login_rate_window_s`.")
    login_rate_window_s: int = Field(60, ge=1, description="Window of the sign-in rate limit.")
    oidc_enabled: bool = Field(False, description="Enable Keycloak (OIDC) sign-in.")
    oidc_issuer: str | None = Field(None, description="OIDC issuer URL, e.g. "
                                    "`https://sso.example.com/realms/caas`.")
    oidc_client_id: str | None = Field(None, description="OIDC client id (also the audience).")
    oidc_client_secret: SecretStr | None = Field(None, description="OIDC client secret.")
    oidc_groups_claim: str = Field("groups", description="Claim holding the user's groups.")
    oidc_admin_group: str = Field("platform-admins", description="Group whose members are "
                                  "platform admins: a Keycloak group path (`platform-admins`, "
                                  "`ops/admins`); outer slashes are dropped once here, each "
                                  "segment must be a DNS-1123 label, and it may not start "
                                  "with `team-` (team groups; see portal.groups).")
    keycloak_url: str | None = Field(None, description="Keycloak base URL for the admin sync; "
                                     "empty: the sync is skipped with a visible status.")
    keycloak_realm: str = Field("caas", description="Realm that holds the team groups.")
    keycloak_admin_client_id: str | None = Field(None, description="Service-account client for "
                                                 "the admin API.")
    keycloak_admin_client_secret: SecretStr | None = Field(None, description="Its secret.")
    keycloak_resync_interval_s: float = Field(300.0, ge=0, description="The worker syncs every "
                                              "team's Keycloak groups again this often, so "
                                              "people whose accounts appear after their team "
                                              "merged join its groups; 0: never.")

    # --- gitops / forge ----------------------------------------------------------------------
    forge: ForgeKind = Field(ForgeKind.local, description="`local` (bare repository under "
                             "`data_dir`) or `github`.")
    gitops_repo: Path | None = Field(None, description="Bare repository of the local forge. "
                                     "Empty: `data_dir/gitops.git`.")
    main_branch: str = Field("main", description="The GitOps repository's default branch.")
    github_url: str = Field("https://api.github.com", description="GitHub API base URL "
                            "(GitHub Enterprise: `https://ghe.example.com/api/v3`).")
    github_repo: str | None = Field(None, description="`owner/name` of the GitOps repository.")
    github_token: SecretStr | None = Field(None, description="Token of the portal's GitHub App "
                                           "or machine user.")
    github_webhook_secret: SecretStr | None = Field(None, description="Secret that signs "
                                                    "GitHub webhooks (`X-Hub-Signature-256`).")
    github_max_wait_s: float = Field(60.0, ge=0, le=300, description="Longest wait for a "
                                     "GitHub rate limit inside one call; a longer one (a "
                                     "primary limit's reset, a repeated secondary limit) ends "
                                     "the call with a temporary error that is retried later. "
                                     "Keep it well under `worker_lease_s`.")
    github_write_interval_s: float = Field(1.0, ge=0, le=60, description="Pause between two "
                                           "GitHub writes (GitHub's advice against secondary "
                                           "rate limits: at least one second).")
    templates_dir: Path = Field(REPO_ROOT / "templates", description="Cookiecutter templates "
                                "(only these run hooks).")
    skeleton_dir: Path = Field(REPO_ROOT / "gitops-skeleton", description="Seed of a new "
                               "GitOps repository.")
    quota_bounds: str = Field("cpu=100m..64,memory=128Mi..256Gi,storage=1Gi..10Ti",
                              description="Bounds of tenant quota answers, `kind=min..max` "
                              "(Kubernetes quantities); read by scaffolder.parameters."
                              "parse_quota_bounds.")
    reserved_namespaces: str = Field("", description="Extra namespace names templates refuse, "
                                     "comma-separated (besides default, kube-* and the "
                                     "platform's own namespaces).")
    kustomize_warm: int = Field(2, ge=0, le=16, description="`kubectl kustomize` processes "
                                "each portal process keeps started and waiting for a build "
                                "(the kustomize check of a change set: kubectl's start-up and "
                                "kustomize's OpenAPI schema, 150-250 ms of CPU, paid ahead; "
                                "~45 MB each while idle); 0: every build starts kubectl. Read "
                                "by scaffolder.checks.kustomize_pool.")
    promotion_soak_minutes: str = Field(
        "dev=0,staging=15,prod=60", pattern=r"^([a-z]+=[0-9]{1,6})?(,[a-z]+=[0-9]{1,6})*$",
        description="Minutes the source of a promotion must have been Synced and Healthy in "
        "ArgoCD, per tier of the target environment (`tier=minutes`, comma-separated; a tier "
        "not listed needs the largest listed). Read by scaffolder.promotion_gates.")
    promotion_required_statuses: str = Field(
        "", max_length=2000,
        pattern=r"^([a-z]+=[^,|=\r\n]{1,100}(\|[^,|=\r\n]{1,100})*)?"
                r"(,[a-z]+=[^,|=\r\n]{1,100}(\|[^,|=\r\n]{1,100})*)*$",
        description="Commit statuses (contexts, e.g. `ci/tests`) that must be `success` on the "
        "source version's commit before a promotion into a tier: `tier=context|context`, "
        "comma-separated (`staging=ci/tests,prod=ci/tests|ci/e2e`); a tier not listed requires "
        "none. Read by scaffolder.promotion_gates.")

    # --- reconciler --------------------------------------------------------------------------
    terraform_bin: str = Field("terraform", description="The terraform CLI.")
    terraform_modules_dir: Path = Field(REPO_ROOT / "terraform", description="Unit modules "
                                        "(`<provider>/<unit>`).")
    terraform_plugin_mirror: Path | None = Field(None, description="Filesystem mirror of "
                                                 "providers; when set, Terraform never downloads.")
    terraform_timeout_s: int = Field(3600, ge=10, description="Longest one terraform command "
                                     "may run before it is interrupted (the job is retried).")
    terraform_orphan_wait_s: int = Field(300, ge=0, description="How long a worker waits for "
                                         "the interrupted terraform of a dead worker to exit "
                                         "(it saves its state and releases its lock) before "
                                         "the job is retried later; it is never killed.")
    terraform_lock_timeout_s: int = Field(5, ge=0, description="How long terraform waits for a "
                                          "unit's state lock before the job is retried later.")
    worker_poll_interval_s: float = Field(1.0, gt=0, description="Idle worker poll interval: the "
                                        "fallback, as a queued job wakes the workers at once "
                                        "(in-process; on PostgreSQL through NOTIFY).")
    drift_interval_s: float = Field(900.0, ge=0, description="The worker compares git, the "
                                    "catalog, the cluster and Keycloak this often and stores "
                                    "the drift findings; 0: never.")
    drift_lease_s: float = Field(120.0, ge=1, description="Lease of a running drift run "
                                 "(renewed every third of it while it runs): a killed run's is "
                                 "taken over once it runs out.")
    drift_wait_s: float = Field(3600.0, ge=0, description="How long `caas drift` waits for a "
                                "run another process is already doing before giving up.")
    worker_lease_s: int = Field(600, ge=5, description="Lease of a running job.")
    worker_heartbeat_grace_s: float = Field(60.0, ge=1, description="A running job whose worker "
                                            "has not heart-beaten for this long is claimed "
                                            "again (before its lease ends); workers beat every "
                                            "third of it.")
    worker_sweep_interval_s: float = Field(30.0, gt=0, description="How often a worker "
                                           "finalises merges whose jobs are all done.")
    worker_max_attempts: int = Field(5, ge=1, description="Attempts before a job is dead.")
    worker_backoff_s: float = Field(5.0, gt=0, description="First retry delay of a job after a "
                                    "temporary error; doubles with each attempt (max 10 min).")
    worker_wait_poll_s: float = Field(5.0, gt=0, description="How often a job that waits "
                                      "(an ArgoCD finalizer, a terminating Namespace) looks "
                                      "again; waiting spends no attempt.")
    worker_wait_deadline_s: float = Field(1800.0, gt=0, description="How long such a job "
                                          "waits in all before it fails, naming what is "
                                          "still there.")
    main_poll_interval_s: float = Field(30.0, gt=0, description="Fallback poller of `main` "
                                        "(missed webhooks).")
    kubeconfig: Path | None = Field(None, description="Kubeconfig of the platform cluster; "
                                    "empty: not connected (status says so).")
    kube_context: str | None = Field(None, description="Context inside the kubeconfig.")
    argocd_namespace: str = Field("argocd", description="Namespace of ArgoCD's objects.")

    # --- catalog -----------------------------------------------------------------------------
    price_sheet: Path = Field(REPO_ROOT / "catalog" / "prices.yaml", description="Per-tier "
                              "prices per CPU, GiB of memory and GiB of storage per month.")

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in {"json", "text"}:
            raise ValueError("must be `json` or `text`")
        return value

    @field_validator("oidc_admin_group")
    @classmethod
    def _admin_group(cls, value: str) -> str:
        try:
            return normalise_platform_group(value)
        except GroupRuleError as exc:
            raise ValueError(exc.message) from None

    # --- derived -----------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'caas.db').resolve()}"

    @property
    def resolved_gitops_repo(self) -> Path:
        return (self.gitops_repo or self.data_dir / "gitops.git").resolve()

    def resolved_secret_key(self) -> str:
        """The signing key: configured, or generated once and kept in the data directory."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key
