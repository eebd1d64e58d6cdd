"""Scaffolder tables (change sets, tasks) and the API's request/response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool
from pydantic import Field as PField
from sqlalchemy import JSON, Column, DateTime, Text
from sqlmodel import Field, SQLModel

from gitops.forges.base import Check, CheckState
from portal.db import UtcDatetime, utcnow


def _ts(nullable: bool = False) -> Any:
    return Field(default_factory=utcnow if not nullable else None,
                 sa_column=Column(DateTime(timezone=True), nullable=nullable))


class MergeLock(SQLModel, table=True):
    """A lease on one merge scope (``env:<env>`` or ``name:<scope>:<name>``): merges whose
    scopes meet run one at a time (scaffolder.merge_lock)."""

    __tablename__ = "scaffolder_merge_locks"

    scope: str = Field(primary_key=True, max_length=200)
    holder: str | None = Field(default=None, max_length=100)
    expires_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True),
                                                                        nullable=True))


# ---- change sets (every forge) ------------------------------------------------------------------


class Change(SQLModel, table=True):
    """A change set the scaffolder opened: what was rendered, its checks, and the forge's PR.

    ``open_unit_key`` holds the unit's key (its target path) while the change is pending or
    open and NULL afterwards; the unique index makes two concurrent requests for one unit
    end with exactly one row (the loser's INSERT fails), whatever the isolation level.

    ``reservation`` is the change's place in the order of reservations when it is not its id:
    a change reopened on the forge reserves anew, after every change there is
    (``scaffolder.reopen``); ``merge_gate.open_units`` orders by ``coalesce(reservation, id)``.
    """

    __tablename__ = "scaffolder_changes"

    id: int | None = Field(default=None, primary_key=True)
    template: str = Field(max_length=63)
    template_version: str = Field(max_length=64)
    action: str = Field(default="create", max_length=16)  # create | update
    unit_key: str = Field(max_length=300, index=True)
    open_unit_key: str | None = Field(default=None, max_length=300, unique=True)
    reservation: int | None = Field(default=None)
    entity: str = Field(default="", max_length=300)
    branch: str = Field(max_length=255, index=True)
    forge: str = Field(default="local", max_length=16)
    number: int | None = Field(default=None, index=True)
    url: str = Field(default="", max_length=500)
    title: str = Field(max_length=300)
    author: str = Field(max_length=64, index=True)
    team: str | None = Field(default=None, max_length=63)
    envs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tier: str = Field(default="dev", max_length=16)
    touches_envs: bool = Field(default=False)
    routing: str = Field(default="", max_length=500)
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    files: list[dict[str, Any]] = Field(default_factory=list,
                                        sa_column=Column(JSON, nullable=False))
    diff: str = Field(default="", sa_column=Column(Text, nullable=False))
    checks: list[dict[str, Any]] = Field(default_factory=list,
                                         sa_column=Column(JSON, nullable=False))
    checks_green: bool = Field(default=False)
    status: str = Field(default="pending", max_length=16)  # pending|open|merged|closed|failed
    base_sha: str = Field(default="", max_length=64)
    head_sha: str = Field(default="", max_length=64)
    merge_sha: str | None = Field(default=None, max_length=64)
    approved_by: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Task(SQLModel, table=True):
    """One scaffolder run (request → render → checks → PR), with its step log in TaskEvent."""

    __tablename__ = "scaffolder_tasks"

    id: int | None = Field(default=None, primary_key=True)
    template: str = Field(max_length=63)
    requested_by: str = Field(max_length=64, index=True)
    status: str = Field(default="running", max_length=16)  # running | succeeded | failed
    request: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    change_id: int | None = Field(default=None, foreign_key="scaffolder_changes.id")
    error: str = Field(default="", sa_column=Column(Text, nullable=False))
    attempts: int = Field(default=1)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class TaskEvent(SQLModel, table=True):
    __tablename__ = "scaffolder_task_events"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="scaffolder_tasks.id", index=True, ondelete="CASCADE")
    at: datetime = _ts()
    step: str = Field(max_length=64)
    status: str = Field(max_length=16)  # started | done | failed | info
    message: str = Field(default="", sa_column=Column(Text, nullable=False))


# ---- API shapes ---------------------------------------------------------------------------------

MAX_ANSWERS = 64


class ScaffoldRequest(BaseModel):
    """A form submission. ``answers`` are data: validated against the template's schema."""

    model_config = ConfigDict(extra="forbid")

    template: str = PField(min_length=1, max_length=63, description="Template name.")
    answers: dict[str, Any] = PField(default_factory=dict, max_length=MAX_ANSWERS,
                                     description="Values for `spec.parameters`.")
    update: bool = PField(False, description="Re-render an existing unit with its stored "
                          "answers plus these (an update PR with a minimal diff).")


_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"
# What can be decommissioned: a team, a namespace (tenant) or an application folder
# (``scaffolder.decommission``); an environment is removed with ``installed: false``.
DECOMMISSIONABLE = (rf"^(?:teams/{_SEGMENT}|tenants/{_SEGMENT}/{_SEGMENT}"
                    rf"|applications/{_SEGMENT}/{_SEGMENT})$")


class DecommissionRequest(BaseModel):
    """Remove a unit: a PR deleting its folder and updating every list that names it."""

    model_config = ConfigDict(extra="forbid")

    unit: str = PField(min_length=1, max_length=300, pattern=DECOMMISSIONABLE,
                       description="The unit's folder, e.g. `tenants/payments/payments-web`.")


HEAD_SHA = r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$"  # a SHA-1 or SHA-256 commit id, lower-case hex


class ApproveRequest(BaseModel):
    """An approval of the head the reviewer saw (optional: without it, the current head)."""

    model_config = ConfigDict(extra="forbid")

    head_sha: str | None = PField(default=None, pattern=HEAD_SHA,
                                  description="The PR head the reviewer looked at; 409 "
                                  "`head-moved` when the PR has moved on since.")


class UnitAnswers(BaseModel):
    """A unit on main as its template's form sees it (the "Change" form is pre-filled so)."""

    unit: str = PField(description="The unit's folder in the GitOps repository.")
    template: str = PField(description="The template its .caas-answers.yaml names.")
    version: str = PField(description="The template version it was rendered from (git tree id).")
    answers: dict[str, Any] = PField(description="The stored answers of the form's fields.")
    fixed: list[str] = PField(description="Fields that identify the unit (not changeable).")


class RenderedFile(BaseModel):
    path: str
    status: str  # added | modified | deleted
    content: str | None = None


class UpgradeRequest(BaseModel):
    """Open (or preview) the upgrade PRs of the units behind their template."""

    model_config = ConfigDict(extra="forbid")

    template: str | None = PField(default=None, min_length=1, max_length=63,
                                  pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                  description="Only units of this template.")
    team: str | None = PField(default=None, min_length=1, max_length=63,
                              pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                              description="Only units of this team.")
    dry_run: StrictBool = PField(default=False, description="Merge and report; open nothing.")
    per: Literal["unit", "team"] = PField(default="unit", description="One PR per unit, or one "
                                          "per team and template.")


class UpgradeOutcome(BaseModel):
    """What an upgrade run did (or would do) for one PR's worth of units.

    ``state``: ``would-open``/``opened`` (a new PR), ``open`` (a PR for this version is open:
    nothing new), ``would-update``/``updated`` (the template moved again: the open PR's branch
    gets the new merge), ``refused`` (``message`` says why; other units go on), ``held``
    (another open change holds the unit)."""

    key: str = PField(description="The unit's folder, or upgrade/<template>/<team> per team.")
    units: list[str]
    template: str
    from_versions: list[str] = PField(description="Stored template versions (git tree ids).")
    to_version: str
    state: str
    change_id: int | None = None
    number: int | None = None
    url: str = ""
    files: list[RenderedFile] = PField(default_factory=list)
    conflicts: list[str] = PField(default_factory=list, description="Paths with markers.")
    added: dict[str, Any] = PField(default_factory=dict, description="Answers the new version "
                                   "adds, with their defaults.")
    dropped: list[str] = PField(default_factory=list, description="Answers it no longer takes.")
    message: str = ""


class BehindUnit(BaseModel):
    """A unit whose .caas-answers.yaml names an older version of its template."""

    unit: str
    entity: str
    template: str
    version: str
    current: str
    team: str | None = None


class CheckResult(BaseModel):
    name: str
    state: str
    summary: str = ""
    details: list[str] = PField(default_factory=list)

    def as_status(self) -> Check:
        """This result as the PR head's commit status: context ``caas/<name>`` (the contexts
        ``caas init`` makes required, ``portal.bootstrap.REQUIRED_CHECKS``), its state, and the
        summary cut to the 140 characters GitHub keeps of a status description
        (https://docs.github.com/en/rest/commits/statuses). ``ValueError`` for a state that is
        not a commit status state."""
        return Check(name=f"caas/{self.name}", state=CheckState(self.state),
                     description=self.summary[:140])


class EnvironmentPreview(BaseModel):
    """One environment a dry run touches (``scaffolder.capacity.previews``): amounts are
    millicores (``cpu``) and bytes (``memory``, ``storage``)."""

    env: str
    tier: str
    requests_quota: bool  # the unit renders a ResourceQuota there
    requested: dict[str, int]
    capacity_declared: bool
    capacity: dict[str, int]
    used: dict[str, int]  # every tenant's quota there after the change
    remaining: dict[str, int]  # capacity - used (negative: over)
    over: list[str]
    problems: list[str] = []


class DryRunResult(BaseModel):
    template: str
    version: str
    target_path: str
    unit_exists: bool
    files: list[RenderedFile]
    diff: str
    checks: list[CheckResult]
    checks_green: bool
    routing: str
    environments: list[EnvironmentPreview] = []


class TaskEventPublic(BaseModel):
    id: int
    at: UtcDatetime
    step: str
    status: str
    message: str


class TaskPublic(BaseModel):
    id: int
    template: str
    requested_by: str
    status: str
    attempts: int
    error: str
    change_id: int | None
    change_number: int | None = None
    change_url: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    events: list[TaskEventPublic] = PField(default_factory=list)


class ChangePublic(BaseModel):
    id: int
    number: int | None
    url: str
    template: str
    template_version: str
    action: str
    unit_key: str
    title: str
    author: str
    team: str | None
    envs: list[str]
    tier: str
    touches_envs: bool
    routing: str
    status: str
    checks: list[CheckResult]
    checks_green: bool
    approved_by: list[str]
    base_sha: str
    head_sha: str
    merge_sha: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ChangeDetail(ChangePublic):
    files: list[RenderedFile]
    diff: str
    answers: dict[str, Any]


class TemplateSummary(BaseModel):
    name: str
    title: str
    description: str
    version: str
    target_path: str
    kind: str


class TemplateDetail(TemplateSummary):
    parameters: list[dict[str, Any]]
    choices: dict[str, list[str]]
