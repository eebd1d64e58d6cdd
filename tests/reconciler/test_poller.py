"""The fallback poller: new first-parent commits of main become merge events, once each."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from gitops.forges.base import MergeEvent
from gitops.forges.local import LocalForge
from portal.settings import Settings
from reconciler import service
from reconciler.models import Cursor, MergeRecord
from reconciler.poller import Poller
from tests.reconciler.conftest import push

# Git plumbing, not the database, is what this exercises.
pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


def merges(engine: Engine) -> list[tuple[str | None, str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(MergeRecord).order_by(col(MergeRecord.id))).all()
        return [(m.before, m.commit, m.source) for m in rows]


def test_poller_records_each_new_commit_once(forge: LocalForge, engine: Engine,
                                             settings: Settings) -> None:
    poller = Poller(settings, engine, forge)
    root = forge.head()
    assert poller.poll_once() == 1  # first poll: main as it is, without a predecessor
    assert merges(engine) == [(None, root, "poller")]
    assert poller.poll_once() == 0

    _, c1 = push(forge, {"teams/a/team.yaml": "name: a\n"})
    with Session(engine) as session:  # this one arrived through the local merge already
        service.record_merge_event(session, event=MergeEvent(commit=c1, before=root))
    _, c2 = push(forge, {"teams/b/team.yaml": "name: b\n"})
    _, c3 = push(forge, {"teams/c/team.yaml": "name: c\n"})
    assert poller.poll_once() == 3
    assert merges(engine) == [(None, root, "poller"), (root, c1, "local"),
                              (c1, c2, "poller"), (c2, c3, "poller")]
    with Session(engine) as session:
        assert session.get(Cursor, "main").commit == c3  # type: ignore[union-attr]
    assert poller.poll_once() == 0


def test_first_poll_continues_after_the_last_recorded_merge(
        forge: LocalForge, engine: Engine, settings: Settings) -> None:
    root = forge.head()
    _, c1 = push(forge, {"teams/a/team.yaml": "name: a\n"})
    with Session(engine) as session:
        service.record_merge_event(session, event=MergeEvent(commit=c1, before=root))
    _, c2 = push(forge, {"teams/b/team.yaml": "name: b\n"})
    assert Poller(settings, engine, forge).poll_once() == 1
    assert merges(engine) == [(root, c1, "local"), (c1, c2, "poller")]
