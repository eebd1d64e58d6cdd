"""What a job handler gets (settings, engine, forge, the job, a log) and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from gitops.forges.base import Forge
from portal.settings import Settings
from reconciler.models import Job, JobState


@dataclass(frozen=True)
class Result:
    """A handler's success. ``skipped`` says the integration is not configured: the job shows
    state ``skipped`` and the message, never a silent success."""

    message: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    state: JobState = JobState.succeeded

    @classmethod
    def skipped(cls, message: str, **detail: Any) -> Result:
        return cls(message=message, detail=dict(detail), state=JobState.skipped)


@dataclass
class JobContext:
    settings: Settings
    engine: Engine
    forge: Forge
    job: Job
    worker_id: str
    log: Callable[[str], None]


Handler = Callable[[JobContext], Result]
