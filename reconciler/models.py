"""Reconciler tables and their public shapes.

- ``reconciler_merges``: one row per commit that landed on main (idempotent per commit), with
  how it was learned (local merge, webhook, poller) and whether it was refused.
- ``reconciler_jobs``: the queue, keyed by (merge commit, unit).
- ``reconciler_job_logs``: each job's log lines (persisted; streamed as SSE).
- ``reconciler_env_locks``: at most one job holds an environment at a time.
- ``reconciler_unit_applies``: a Terraform unit applied for (environment, unit, commit); the
  record that makes a re-run after a crash a no-op instead of a second apply.
- ``reconciler_workers``: live workers and their heartbeats.
- ``reconciler_cursors``: the last commit of main the poller has seen.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.db import UtcDatetime, utcnow


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    skipped = "skipped"  # the integration is not configured: visible, never a silent success
    failed = "failed"  # a permanent error (or refused); a platform admin may retry it
    dead = "dead"  # temporary errors until worker_max_attempts ran out


TERMINAL = frozenset({JobState.succeeded, JobState.skipped, JobState.failed, JobState.dead})
DONE_OK = frozenset({JobState.succeeded, JobState.skipped})


class JobKind(StrEnum):
    plan = "plan"  # turns a merge into the other jobs
    catalog = "catalog"
    terraform = "terraform"
    argocd = "argocd"
    keycloak = "keycloak"
    plan_preview = "plan_preview"  # an open PR: plan only, never apply
    remove = "remove"  # a decommissioned unit's cluster objects, bottom-up (reconciler.removal)
    # An open PR's head: the scaffolder's checks that report after the PR opened
    # (``scaffolder.pr_checks``); never applies anything.
    pr_checks = "pr_checks"


# Kinds that run before (or to plan) a merge: not on main, nothing applied, no catalog status.
PRE_MERGE = (JobKind.plan.value, JobKind.plan_preview.value, JobKind.pr_checks.value)


class MergeState(StrEnum):
    recorded = "recorded"
    planned = "planned"
    refused = "refused"
    applied = "applied"  # every job succeeded
    # Every job ended well but one was skipped (its integration is not connected: no cluster
    # for ArgoCD, no Keycloak): on main, not deployed. The catalog's word for the same thing.
    committed = "committed"
    failed = "failed"


def _ts(nullable: bool = False) -> Any:
    return Column(DateTime(timezone=True), nullable=nullable)


class MergeRecord(SQLModel, table=True):
    __tablename__ = "reconciler_merges"

    id: int | None = Field(default=None, primary_key=True)
    commit: str = Field(max_length=64, unique=True)
    before: str | None = Field(default=None, max_length=64)
    change_number: int | None = Field(default=None)
    merged_by: str = Field(default="", max_length=100)
    source: str = Field(default="local", max_length=16)
    state: str = Field(default=MergeState.recorded.value, max_length=16)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    paths: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    entities: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    finished_at: datetime | None = Field(default=None, sa_column=_ts(True))


class Job(SQLModel, table=True):
    __tablename__ = "reconciler_jobs"
    __table_args__ = (
        UniqueConstraint("commit", "unit", name="uq_reconciler_jobs_commit_unit"),
        Index("ix_reconciler_jobs_state_not_before", "state", "not_before", "id"),
        Index("ix_reconciler_jobs_environment_state", "environment", "state", "id"),
        Index("ix_reconciler_jobs_commit", "commit"),
    )

    id: int | None = Field(default=None, primary_key=True)
    commit: str = Field(max_length=64)
    unit: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    environment: str | None = Field(default=None, max_length=100)
    depends_on: str | None = Field(default=None, max_length=200)
    change_number: int | None = Field(default=None)
    state: str = Field(default=JobState.queued.value, max_length=16)
    attempts: int = Field(default=0)
    not_before: datetime = Field(default_factory=utcnow, sa_column=_ts())
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = Field(default=None, sa_column=_ts(True))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    entities: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    message: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    started_at: datetime | None = Field(default=None, sa_column=_ts(True))
    finished_at: datetime | None = Field(default=None, sa_column=_ts(True))


class JobLog(SQLModel, table=True):
    __tablename__ = "reconciler_job_logs"
    __table_args__ = (Index("ix_reconciler_job_logs_job_id", "job_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="reconciler_jobs.id", ondelete="CASCADE")
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    level: str = Field(default="info", max_length=16)
    message: str = Field(sa_column=Column(Text, nullable=False))


class EnvLock(SQLModel, table=True):
    __tablename__ = "reconciler_env_locks"

    environment: str = Field(primary_key=True, max_length=100)
    job_id: int | None = Field(default=None)
    owner: str | None = Field(default=None, max_length=100)
    expires_at: datetime | None = Field(default=None, sa_column=_ts(True))


class UnitApply(SQLModel, table=True):
    __tablename__ = "reconciler_unit_applies"
    __table_args__ = (
        UniqueConstraint("environment", "unit", "commit", name="uq_reconciler_unit_applies"),
        Index("ix_reconciler_unit_applies_env_unit", "environment", "unit", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    environment: str = Field(max_length=100)
    unit: str = Field(max_length=100)
    commit: str = Field(max_length=64)
    action: str = Field(max_length=16)  # apply | destroy
    job_id: int | None = Field(default=None)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    outputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    applied_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class WorkerRecord(SQLModel, table=True):
    __tablename__ = "reconciler_workers"

    id: str = Field(primary_key=True, max_length=100)
    hostname: str = Field(default="", max_length=200)
    pid: int = Field(default=0)
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    stopped_at: datetime | None = Field(default=None, sa_column=_ts(True))


class Cursor(SQLModel, table=True):
    __tablename__ = "reconciler_cursors"

    name: str = Field(primary_key=True, max_length=64)
    commit: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


# ---- public shapes ------------------------------------------------------------------------------


class JobPublic(BaseModel):
    id: int
    commit: str
    unit: str
    kind: str
    environment: str | None
    depends_on: str | None
    change_number: int | None
    state: str
    attempts: int
    not_before: UtcDatetime
    lease_owner: str | None
    lease_expires_at: UtcDatetime | None
    payload: dict[str, Any]
    result: dict[str, Any]
    entities: list[str]
    message: str
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None


class JobLogPublic(BaseModel):
    id: int
    at: UtcDatetime
    level: str
    message: str


class JobDetail(JobPublic):
    log: list[JobLogPublic]


class JobList(BaseModel):
    items: list[JobPublic]
    next_before_id: int | None


class MergePublic(BaseModel):
    id: int
    commit: str
    before: str | None
    change_number: int | None
    merged_by: str
    source: str
    state: str
    reason: str
    paths: list[str]
    created_at: UtcDatetime
    finished_at: UtcDatetime | None


class UnitStatus(BaseModel):
    unit: str
    last_job: JobPublic | None
    last_plan: dict[str, Any] | None
    last_apply: dict[str, Any] | None
    outputs: dict[str, Any]


class EnvironmentStatus(BaseModel):
    environment: str
    locked_by_job: int | None
    units: list[UnitStatus]
