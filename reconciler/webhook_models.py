"""Tables of the GitHub webhook endpoint.

- ``reconciler_webhook_deliveries``: one row per ``X-GitHub-Delivery`` handled (a redelivery of
  the same id changes nothing) with what became of it.
- ``reconciler_preview_allowances``: a platform-admin allowed a Terraform plan preview for one
  head commit of a pull request the portal would not preview on its own (a fork, a branch the
  portal did not create).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

from portal.db import utcnow


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "reconciler_webhook_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(max_length=64, unique=True)
    event: str = Field(max_length=64)
    outcome: str = Field(default="", max_length=200)
    received_at: datetime = Field(default_factory=utcnow,
                                  sa_column=Column(DateTime(timezone=True), nullable=False))


class PreviewAllowance(SQLModel, table=True):
    __tablename__ = "reconciler_preview_allowances"
    __table_args__ = (UniqueConstraint("change_number", "head_sha",
                                       name="uq_reconciler_preview_allowances"),)

    id: int | None = Field(default=None, primary_key=True)
    change_number: int
    head_sha: str = Field(max_length=64)
    allowed_by: str = Field(max_length=100)
    reason: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(DateTime(timezone=True), nullable=False))
