"""The local forge's tables: pull requests, their checks, comments and approvals.

The tables are created by the ``scaffolder`` Alembic branch (``scaffolder_0001``), where they were
first defined; moving the classes here changed no column, so existing databases stay valid.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.db import utcnow


def _ts(nullable: bool = False) -> Any:
    return Field(default_factory=utcnow if not nullable else None,
                 sa_column=Column(DateTime(timezone=True), nullable=nullable))


class LocalPullRequest(SQLModel, table=True):
    """A pull request of the local forge. ``open_branch`` is the branch while open, else NULL:
    its unique index allows one open PR per branch (NULLs never collide)."""

    __tablename__ = "local_pull_requests"

    number: int | None = Field(default=None, primary_key=True)
    branch: str = Field(max_length=255, index=True)
    open_branch: str | None = Field(default=None, max_length=255, unique=True)
    base: str = Field(default="main", max_length=255)
    title: str = Field(max_length=300)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    author: str = Field(max_length=64)
    state: str = Field(default="open", max_length=16)
    head_sha: str = Field(max_length=64)
    base_sha: str = Field(max_length=64)
    merge_sha: str | None = Field(default=None, max_length=64)
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reviewers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    merged_at: datetime | None = _ts(nullable=True)
    merged_by: str | None = Field(default=None, max_length=64)
    closed_at: datetime | None = _ts(nullable=True)
    closed_by: str | None = Field(default=None, max_length=64)


class LocalCheck(SQLModel, table=True):
    """A commit status on a local PR (one row per PR and check name; the latest wins)."""

    __tablename__ = "local_pr_checks"
    __table_args__ = (UniqueConstraint("number", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(foreign_key="local_pull_requests.number", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    state: str = Field(max_length=16)
    sha: str = Field(max_length=64)
    description: str = Field(default="", max_length=1000)
    url: str = Field(default="", max_length=500)
    updated_at: datetime = _ts()


class LocalComment(SQLModel, table=True):
    __tablename__ = "local_pr_comments"
    __table_args__ = (UniqueConstraint("number", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(foreign_key="local_pull_requests.number", index=True, ondelete="CASCADE")
    key: str = Field(max_length=64)
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    updated_at: datetime = _ts()


class LocalApproval(SQLModel, table=True):
    __tablename__ = "local_pr_approvals"
    __table_args__ = (UniqueConstraint("number", "by"),)

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(foreign_key="local_pull_requests.number", index=True, ondelete="CASCADE")
    by: str = Field(max_length=64)
    sha: str = Field(max_length=64)
    at: datetime = _ts()
