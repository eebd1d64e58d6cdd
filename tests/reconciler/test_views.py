"""The reconciler's HTTP API and the GitHub webhook."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from gitops.forges.github_webhook import sign
from portal.app import create_app
from portal.auth.models import AuditEvent
from portal.settings import Settings
from reconciler import queue, service
from reconciler.models import Job, JobLog, MergeRecord, UnitApply
from tests.conftest import UserFactory

# The API is not what differs between databases (the queue tests run on both).
pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
SECRET = "webhook-secret"
Headers = Callable[[str], dict[str, str]]
MAIN_SHA, BEFORE_SHA, HEAD_SHA = "a" * 40, "b" * 40, "c" * 40


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"github_webhook_secret": SecretStr(SECRET)})
    with TestClient(create_app(configured, engine=engine)) as test_client:
        yield test_client


def deliver(client: TestClient, event: str, payload: object, *, secret: str = SECRET,
            signature: str | None = None) -> object:
    body = json.dumps(payload).encode()
    return client.post("/api/webhooks/github", content=body, headers={
        "content-type": "application/json", "x-github-event": event,
        "x-hub-signature-256": signature if signature is not None else sign(secret, body)})


def counts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        return (session.exec(select(func.count()).select_from(MergeRecord)).one(),
                session.exec(select(func.count()).select_from(Job)).one())


PUSH = {"ref": "refs/heads/main", "before": BEFORE_SHA, "after": MAIN_SHA,
        "pusher": {"name": "octocat"}}


def test_webhook_with_a_bad_signature_is_401_and_records_nothing(
        client: TestClient, engine: Engine) -> None:
    for signature in ("", "sha256=" + "0" * 64, "sha1=abc", "garbage",
                      sign("another-secret", json.dumps(PUSH).encode())):
        response = deliver(client, "push", PUSH, signature=signature)
        assert response.status_code == 401  # type: ignore[attr-defined]
        error = response.json()["error"]  # type: ignore[attr-defined]
        assert error["field"] == "X-Hub-Signature-256"
    assert counts(engine) == (0, 0)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == 0


def test_webhook_without_a_configured_secret_is_503(app_client: TestClient,
                                                    engine: Engine) -> None:
    response = app_client.post("/api/webhooks/github", content=b"{}",
                               headers={"x-github-event": "push",
                                        "x-hub-signature-256": sign("", b"{}")})
    assert response.status_code == 503
    assert counts(engine) == (0, 0)


# What each delivery does: tests/reconciler/test_webhook_table.py (the README's table).


def test_bad_webhook_body_is_400(client: TestClient, engine: Engine) -> None:
    body = b"not json"
    response = client.post("/api/webhooks/github", content=body, headers={
        "x-github-event": "push", "x-hub-signature-256": sign(SECRET, body)})
    assert response.status_code == 400 and response.json()["error"]["field"] == "body"
    assert counts(engine) == (0, 0)


def _finished_job(engine: Engine, state: str) -> int:
    with Session(engine) as session:
        [job] = queue.enqueue(session, commit=MAIN_SHA, jobs=[queue.NewJob(
            unit="terraform:qa/network", kind="terraform", environment="qa",
            payload={"env": "qa", "unit": "network"})])
        session.commit()
        job.state, job.message = state, "boom" if state == "dead" else ""
        job.result = {"plan": {"add": 2, "change": 0, "destroy": 0}}
        session.add(job)
        for line in ("attempt 1", "terraform plan", state):
            session.add(JobLog(job_id=job.id or 0, message=line))
        session.add(UnitApply(environment="qa", unit="network", commit=MAIN_SHA, action="apply",
                              job_id=job.id, outputs={"vpc_id": "vpc-1"}))
        session.commit()
        return job.id or 0


def test_jobs_api_list_detail_stream_retry(client: TestClient, engine: Engine,
                                           make_user: UserFactory, auth_headers: Headers
                                           ) -> None:
    make_user("dev")
    make_user("root", admin=True)
    dev, root = auth_headers("dev"), auth_headers("root")
    job_id = _finished_job(engine, "dead")

    assert client.get("/api/reconciler/jobs").status_code == 401
    listed = client.get("/api/reconciler/jobs?state=dead", headers=dev).json()
    assert [j["id"] for j in listed["items"]] == [job_id]
    bad = client.get("/api/reconciler/jobs?state=nope", headers=dev)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "state"
    detail = client.get(f"/api/reconciler/jobs/{job_id}", headers=dev).json()
    assert [line["message"] for line in detail["log"]] == ["attempt 1", "terraform plan", "dead"]
    assert client.get("/api/reconciler/jobs/999999", headers=dev).status_code == 404

    with client.stream("GET", f"/api/reconciler/jobs/{job_id}/events", headers=dev) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    events = [ln.split(": ", 1)[1] for ln in text.splitlines() if ln.startswith("event: ")]
    assert events == ["log", "log", "log", "end"]
    assert json.loads(text.strip().splitlines()[-1].split(": ", 1)[1]) == {
        "state": "dead", "message": "boom"}

    env = client.get("/api/reconciler/environments/qa", headers=dev).json()
    assert env["units"][0]["unit"] == "network"
    assert env["units"][0]["outputs"] == {"vpc_id": "vpc-1"}
    assert env["units"][0]["last_plan"] == {"add": 2, "change": 0, "destroy": 0}
    assert client.get("/api/reconciler/environments/none", headers=dev).status_code == 404
    assert client.get("/api/reconciler/environments/Bad_Name",
                      headers=dev).status_code == 422

    assert client.post(f"/api/reconciler/jobs/{job_id}/retry", headers=dev).status_code == 403
    retried = client.post(f"/api/reconciler/jobs/{job_id}/retry", headers=root)
    assert retried.status_code == 200 and retried.json()["state"] == "queued"
    again = client.post(f"/api/reconciler/jobs/{job_id}/retry", headers=root)
    assert again.status_code == 409
    with Session(engine) as session:
        audit = session.exec(select(AuditEvent).where(
            AuditEvent.action == "reconciler.job.retry")).one()
        assert audit.actor == "root"


def test_record_merge_event_rejects_malformed_commit(session: Session) -> None:
    from gitops.forges.base import MergeEvent
    from portal.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as err:
        service.record_merge_event(session, event=MergeEvent(commit="main; rm -rf", before=None))
    assert err.value.field == "commit"
    assert session.exec(select(func.count()).select_from(MergeRecord)).one() == 0
