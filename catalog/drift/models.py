"""Drift tables and shapes.

A finding is one difference on one side of one entity: ``(entity, side, subject)`` is unique,
so a run that finds the same difference again updates the row instead of adding a second one.
``catalog_drift_sides`` says, per side, when it was last checked and whether it could be
(``checked``, ``not connected``, ``not configured``, ``failed: <why>``). ``catalog_drift_units``
caches the git side per unit: a unit whose files (fingerprint) and template version have not
changed since the last run keeps its findings; one whose answers file has not changed keeps
its rendering's digests, so only a unit that differs from them is rendered again (for the
diff). ``catalog_drift_runs`` and ``catalog_drift_lease``: see ``catalog.drift.runs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.db import utcnow


class Side(StrEnum):
    git = "git"  # files on main vs the stored answers rendered with the recorded template
    catalog = "catalog"  # indexed rows vs main
    cluster = "cluster"  # Namespace, ResourceQuota, RoleBindings, Application sync/health
    keycloak = "keycloak"  # team groups and members vs team.yaml


class Fix(StrEnum):
    rerender = "rerender"  # a re-render PR (scaffolder update with the stored answers)
    argocd_sync = "argocd-sync"  # an ArgoCD sync of the entity's Application
    keycloak_sync = "keycloak-sync"  # a Keycloak sync of the team's groups
    reindex = "reindex"  # re-index the entity from main
    none = "none"  # nothing the portal can do (e.g. a user without a Keycloak account)


FIX_LABELS = {Fix.rerender: "Open a re-render PR", Fix.argocd_sync: "ArgoCD sync",
              Fix.keycloak_sync: "Keycloak sync", Fix.reindex: "Reindex", Fix.none: ""}


class State(StrEnum):
    drift = "drift"  # a difference
    unknown = "unknown"  # could not be compared (the reason is in ``what``)


@dataclass(frozen=True)
class Finding:
    """What a side reports (pure; ``store`` turns it into a row)."""

    entity: str  # catalog key: ``namespace:payments/payments-web``
    side: Side
    subject: str  # what differs: a unit folder, ``ResourceQuota ns/name``, ``team-x: bob``
    what: str  # one line for people
    fix: Fix
    fix_target: str = ""  # unit folder, Application name or team, per ``fix``
    state: State = State.drift
    detail: str = ""  # a unified diff, expected vs actual values
    team: str = ""


class DriftFinding(SQLModel, table=True):
    __tablename__ = "catalog_drift_findings"
    __table_args__ = (
        UniqueConstraint("entity", "side", "subject", name="uq_catalog_drift_findings"),
        Index("ix_catalog_drift_findings_side_entity", "side", "entity"),
        Index("ix_catalog_drift_findings_kind_entity", "kind", "entity"),
        Index("ix_catalog_drift_findings_team_entity", "team", "entity"),
    )

    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(max_length=300)
    kind: str = Field(max_length=16)
    team: str = Field(default="", max_length=100)
    side: str = Field(max_length=16)
    subject: str = Field(max_length=300)
    state: str = Field(default=State.drift.value, max_length=16)
    what: str = Field(default="")
    detail: str = Field(default="")
    fix: str = Field(default=Fix.none.value, max_length=32)
    fix_target: str = Field(default="", max_length=300)
    # What the last fix action did (``PR #4 opened``, ``sync requested``); cleared when the
    # difference is found again after a newer commit.
    fix_note: str = Field(default="", max_length=300)
    first_seen: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    last_seen: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class DriftSideState(SQLModel, table=True):
    __tablename__ = "catalog_drift_sides"

    side: str = Field(primary_key=True, max_length=16)
    status: str = Field(default="", max_length=300)
    commit: str = Field(default="", max_length=64)
    checked: int = Field(default=0)  # entities (or units) compared
    seconds: float = Field(default=0.0)
    checked_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class DriftUnit(SQLModel, table=True):
    """The git side's memory of one unit, two levels deep: ``fingerprint`` + ``findings`` (the
    unit's files unchanged: its findings stand), and ``render_key`` + ``rendered`` (its answers
    file unchanged: the rendering stands, so files still matching it need no render)."""

    __tablename__ = "catalog_drift_units"

    unit: str = Field(primary_key=True, max_length=300)  # folder, e.g. tenants/a/b
    fingerprint: str = Field(max_length=64)  # sha1 over the unit's paths and contents
    template_version: str = Field(default="", max_length=64)  # the registry's, at that time
    findings: list[dict[str, Any]] = Field(default_factory=list,
                                           sa_column=Column(JSON, nullable=False))
    # ``scaffolder.rerender.render_key``: the unit folder and answers file (template, recorded
    # version tree id, answers); "" when it was not rendered
    render_key: str = Field(default="", max_length=64)
    # the rendering's ``unit_digests``: path inside the unit -> sha1 of its comparable content
    rendered: dict[str, str] = Field(default_factory=dict,
                                     sa_column=Column(JSON, nullable=False))


class DriftRun(SQLModel, table=True):
    """One drift run (``catalog.drift.runs``): who asked, which sides, how it ended."""

    __tablename__ = "catalog_drift_runs"

    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(default="running", max_length=16)  # running | succeeded | failed
    requested_by: str = Field(default="", max_length=100)  # a username, ``worker`` or ``cli``
    sides: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    owner: str = Field(default="", max_length=200)  # host:pid:id of the process running it
    commit: str = Field(default="", max_length=64)  # main's head it checked
    message: str = Field(default="")  # what it found, or why it failed
    findings: int = Field(default=0)  # findings in state drift after it
    rendered: int = Field(default=0)  # units the git side rendered
    started_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class DriftLease(SQLModel, table=True):
    """The single-flight lease: the one row ``drift`` names the run that may write, until
    ``expires_at`` (renewed while it runs; a killed run's lease runs out and is taken over)."""

    __tablename__ = "catalog_drift_lease"

    name: str = Field(primary_key=True, max_length=32)
    run_id: int | None = Field(default=None)
    owner: str = Field(default="", max_length=200)
    expires_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


# ---- public shapes ------------------------------------------------------------------------------


class RunPublic(SQLModel):
    id: int
    state: str
    requested_by: str
    sides: list[str]
    commit: str
    message: str
    findings: int
    rendered: int
    started_at: datetime
    finished_at: datetime | None
    joined: bool = False  # this request found the run already going and joined it


class FindingPublic(SQLModel):
    id: int
    entity: str
    kind: str
    team: str
    side: str
    subject: str
    state: str
    what: str
    detail: str
    fix: str
    fix_label: str
    fix_target: str
    fix_note: str
    first_seen: datetime
    last_seen: datetime


class SidePublic(SQLModel):
    side: str
    status: str
    commit: str
    checked: int
    seconds: float
    checked_at: datetime | None


class DriftReport(SQLModel):
    findings: list[FindingPublic]
    sides: list[SidePublic]
    counts: dict[str, int]  # "<kind>/<side>" -> findings in state drift
    run: RunPublic | None = None  # the latest run (running, or how it ended)


class FixResult(SQLModel):
    finding: int
    fix: str
    message: str
    change_id: int | None = None


@dataclass(frozen=True)
class UnitCache:
    """One ``catalog_drift_units`` row as the git side reads and writes it."""

    fingerprint: str
    template_version: str
    findings: list[dict[str, object]]
    render_key: str = ""
    rendered: dict[str, str] = field(default_factory=dict)


@dataclass
class SideResult:
    """One side's answer for one run: its findings, or why it could not look."""

    side: Side
    status: str = "checked"
    findings: list[Finding] = field(default_factory=list)
    checked: int = 0
    seconds: float = 0.0
    rendered: int = 0  # units rendered in this run (the git side; the others render nothing)
