"""Setting changes between two starts are audited; secrets never appear."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from portal.auth.models import AuditEvent
from portal.auth.settings_audit import ACTION, record_settings_change
from tests.conftest import make_settings

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


def test_changes_between_starts_are_recorded(tmp_path: Path, database_url: str,
                                             session: Session) -> None:
    first = make_settings(tmp_path, database_url, github_token="ghp_supersecretvalue1234",
                          login_rate_limit=9)
    initial = record_settings_change(session, first)
    assert initial is not None and initial.target == "initial"
    assert record_settings_change(session, first) is None  # nothing changed
    second = first.model_copy(update={"login_rate_limit": 5, "github_token": None,
                                      "oidc_enabled": True})
    event = record_settings_change(session, second)
    assert event is not None
    assert event.detail["changes"] == [
        {"setting": "github_token", "change": "changed"},
        {"setting": "login_rate_limit", "from": "9", "to": "5"},
        {"setting": "oidc_enabled", "from": "false", "to": "true"},
    ]
    session.rollback()
    rows = session.exec(select(AuditEvent).where(AuditEvent.action == ACTION)).all()
    assert len(rows) == 2
    assert all("supersecret" not in str(r.detail) for r in rows)


def test_a_password_in_the_database_url_is_never_stored(tmp_path: Path, database_url: str,
                                                       session: Session) -> None:
    settings = make_settings(tmp_path, database_url)
    with_pw = settings.model_copy(update={
        "keycloak_url": "https://admin:hunter2hunter2@sso.example.com"})
    record_settings_change(session, settings)
    event = record_settings_change(session, with_pw)
    assert event is not None and event.detail["changes"] == [
        {"setting": "keycloak_url", "change": "changed"}]
    assert "hunter2" not in str(event.detail)
    assert record_settings_change(session, with_pw) is None
