"""Fallback for missed webhooks: compare main's head with the last commit seen, and record a
merge event for every new first-parent commit (idempotent: already-recorded commits are no-ops).

The first poll ever continues from the newest merge already recorded; on a fresh installation
(nothing recorded) it records main's head without a predecessor, so everything the repository
already declares is reconciled once.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from gitops.forges.base import Forge, MergeEvent
from gitops.repo_status import STATUS, RepositoryStatus, describe
from portal.db import utcnow
from portal.settings import Settings
from reconciler import service
from reconciler.models import Cursor, MergeRecord, MergeState

log = logging.getLogger("caas.reconciler.poller")
CURSOR = "main"
MAX_COMMITS = 500  # one poll records at most this many commits; the next poll continues


class Poller:
    """``status`` (default: the process's ``gitops.repo_status.STATUS``) learns every poll's
    outcome: a repository without ``main``, an unreachable forge or a missing setting is one
    line when it appears (naming the fix) and one when it is gone — never a traceback per poll."""

    def __init__(self, settings: Settings, engine: Engine, forge: Forge, *,
                 status: RepositoryStatus | None = None) -> None:
        self.settings, self.engine, self.forge = settings, engine, forge
        self.status = status or STATUS

    def run(self, stop: threading.Event) -> None:
        while True:
            self.poll_quietly()
            if stop.wait(self.settings.main_poll_interval_s):
                return

    def poll_quietly(self) -> int:
        """``poll_once``; a failure is reported (once per distinct problem), never raised."""
        main = self.settings.main_branch
        try:
            new = self.poll_once()
        except Exception as exc:  # the forge or database is down: try again next interval
            problem = describe(exc, main=main)
            if problem is None:
                log.warning("polling %s failed", main, exc_info=True)
            else:
                self.status.observe(problem)
            return 0
        self.status.observe("")
        return new

    def poll_once(self) -> int:
        """Record events for new commits on main; returns how many commits were new."""
        head = self.forge.head(self.settings.main_branch)
        with Session(self.engine, expire_on_commit=False) as session:
            cursor = session.get(Cursor, CURSOR)
            last = cursor.commit if cursor else self._last_recorded(session, head)
        if last == head:
            return 0
        pairs = self._new_commits(last, head)
        with Session(self.engine, expire_on_commit=False) as session:
            for before, commit in pairs:
                service.record_merge_event(session, event=MergeEvent(
                    commit=commit, before=before, source="poller"))
            cursor = session.get(Cursor, CURSOR) or Cursor(name=CURSOR, commit=head)
            cursor.commit, cursor.updated_at = pairs[-1][1], utcnow()
            session.add(cursor)
            session.commit()
        return len(pairs)

    def _last_recorded(self, session: Session, head: str) -> str | None:
        """Before the first poll: the newest merge already recorded (by a local merge or a
        webhook) that is still on main, so the poller continues from there instead of
        reconciling everything again."""
        rows = session.exec(select(MergeRecord.commit).where(
            MergeRecord.state != MergeState.refused.value)
            .order_by(col(MergeRecord.id).desc()).limit(20)).all()
        for commit in rows:
            if self.forge.is_ancestor(commit, head):
                return commit
        return None

    def _new_commits(self, last: str | None, head: str) -> list[tuple[str | None, str]]:
        """(before, commit) pairs oldest first along main's first-parent chain."""
        if last is None:
            return [(None, head)]
        commits = self.forge.first_parents(last, head, limit=MAX_COMMITS)
        if commits:
            befores: list[str | None] = [last, *commits[:-1]]
            return list(zip(befores, commits, strict=True))
        # A remote forge (or a rewritten main): one event spanning everything since ``last``.
        return [(last, head)]
