"""What a job handler gets (settings, engine, forge, the job, a log) and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from gitops.forges.base import Forge
from portal.settings import Settings
from reconciler.clients import Clients
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
    # The worker's adapter clients, kept from job to job (``reconciler.clients``).
    clients: Clients = field(default_factory=Clients)

    def desired_commit(self) -> str:
        """The commit whose state a declarative job (catalog, ArgoCD, Keycloak) brings about:
        the head of main now, not the job's merge commit. A merge learned late (the poller, a
        redelivered webhook) must not bring back what a later merge changed or removed, and a
        re-run converges on the same state. Raises what ``Forge.head`` raises."""
        return self.forge.head(self.settings.main_branch)


Handler = Callable[[JobContext], Result]
