"""Scaffolder tasks: one row per run plus an append-only step log (what the SSE stream sends)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session, col, select

from portal.db import aware, utcnow
from portal.errors import NotFound
from portal.redact import redact
from scaffolder.models import Change, Task, TaskEvent, TaskEventPublic, TaskPublic

Progress = Callable[[str, str, str], None]
TERMINAL = frozenset({"succeeded", "failed"})


def log_step(session: Session, task: Task, step: str, status: str, message: str = "",
             progress: Progress | None = None) -> None:
    """Append one step event and commit at once, so followers see it while the task runs."""
    text = redact(message)[:4000]
    session.add(TaskEvent(task_id=task.id or 0, step=step, status=status, message=text))
    task.updated_at = utcnow()
    session.add(task)
    session.commit()
    if progress is not None:
        progress(step, status, text)


def get(session: Session, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"task {task_id} does not exist", field="task_id")
    return task


def events(session: Session, task_id: int, *, after_id: int = 0) -> list[TaskEventPublic]:
    rows = session.exec(select(TaskEvent).where(TaskEvent.task_id == task_id,
                                                col(TaskEvent.id) > after_id)
                        .order_by(col(TaskEvent.id))).all()
    return [TaskEventPublic(id=r.id or 0, at=aware(r.at), step=r.step, status=r.status,
                            message=r.message) for r in rows]


def public(session: Session, task: Task, *, with_events: bool = True) -> TaskPublic:
    change = session.get(Change, task.change_id) if task.change_id else None
    return TaskPublic(
        id=task.id or 0, template=task.template, requested_by=task.requested_by,
        status=task.status, attempts=task.attempts, error=task.error, change_id=task.change_id,
        change_number=change.number if change else None, change_url=change.url if change else None,
        created_at=aware(task.created_at), updated_at=aware(task.updated_at),
        events=events(session, task.id or 0) if with_events else [],
    )
