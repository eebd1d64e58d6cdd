"""A promotion's change page offers "Re-check gates" (anyone who sees the change) and "Override
source-health" with a required reason (platform-admins), each disabled with the reason the POST
would give (``scaffolder.promotion_review.gate_decisions``); both audited as through the API.
Server-rendered HTML through the app on both databases; the browser test is in
``test_promotion_page.py``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from catalog import service as catalog_service
from gitops.forges.factory import make_forge
from portal.app import create_app
from portal.auth.models import AuditEvent
from portal.settings import Settings
from tests.conftest import UserFactory
from tests.scaffolder.test_promotion import _people, _promote, _seed, _setup

Headers = Callable[[str], dict[str, str]]
HTML = {"accept": "text/html"}


def _button(html: str, label: str) -> str:
    found = re.search(rf"<button[^>]*>{label}</button>", html)
    assert found, label
    return found.group(0)


def _why(html: str, name: str) -> str:
    found = re.search(rf'id="why-{name}"[^>]*>([^<]*)<', html)
    return found.group(1) if found else ""


def test_gate_buttons_disabled_with_the_reason_and_audited(
        settings: Settings, engine: Engine, tmp_path: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    _seed(settings, tmp_path)
    _people(make_user)
    with TestClient(create_app(settings, engine=engine)) as client:
        _setup(client, auth_headers)
        opened = _promote(client, auth_headers("alice"), "dev", "staging").json()
        cid = opened["change_id"]
        alice = {**auth_headers("alice"), **HTML}
        root = {**auth_headers("root"), **HTML}
        eve = {**auth_headers("eve"), **HTML}

        # A developer: Re-check allowed, Override disabled with the admin rule beside it.
        page = client.get(f"/changes/{cid}", headers=alice).text
        assert "disabled" not in _button(page, "Re-check gates") and not _why(page, "gates")
        assert "disabled" in _button(page, "Override source-health")
        assert _why(page, "override") == "only a platform-admin overrides a promotion gate"
        assert re.search(r'<textarea[^>]*id="override-reason"[^>]*disabled', page)
        admin_page = client.get(f"/changes/{cid}", headers=root).text
        assert "disabled" not in _button(admin_page, "Override source-health")
        assert re.search(r'<textarea[^>]*id="override-reason"[^>]*required', admin_page)

        # The POST refuses the developer as the page said, with the same words; audited.
        denied = client.post(f"/changes/{cid}/promotion/override", headers=alice,
                             data={"gate": "source-health", "reason": "it works on my laptop"},
                             follow_redirects=False)
        assert denied.status_code == 403
        assert "only a platform-admin overrides a promotion gate" in denied.text
        short = client.post(f"/changes/{cid}/promotion/override", headers=root,
                            data={"gate": "source-health", "reason": "ok"},
                            follow_redirects=False)
        assert short.status_code == 422 and "reason: say why" in short.text

        # An approval recorded on the forge (as a review on the forge's site would be) shows
        # once someone outside the team asks for the gates again.
        forge = make_forge(settings, engine)
        review = forge.review()
        assert review is not None
        stale = client.get(f"/api/changes/{cid}", headers=alice).json()
        review.approve(stale["number"], by="bob")
        assert {c["name"]: c["state"] for c in stale["checks"]}["approval"] == "pending"
        again = client.post(f"/changes/{cid}/promotion/gates", headers=eve,
                            follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"].endswith("done=gates")
        fresh = client.get(f"/api/changes/{cid}", headers=alice).json()
        assert {c["name"]: c["state"] for c in fresh["checks"]}["approval"] == "success"

        reason = "cluster link down; smoke-tested on dev by hand"
        done = client.post(f"/changes/{cid}/promotion/override", headers=root,
                           data={"gate": "source-health", "reason": reason},
                           follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"].endswith("done=override")
        after = client.get(done.headers["location"], headers=alice).text
        assert "overridden by root" in after and "source-health overridden" in after

        # Once closed, both are disabled with the state as the reason, and the POST agrees.
        assert client.post(f"/api/changes/{cid}/close",
                           headers=auth_headers("alice")).status_code == 200
        closed = client.get(f"/changes/{cid}", headers=root).text
        assert "Re-check gates" not in closed  # the gate forms belong to an open promotion
        late = client.post(f"/changes/{cid}/promotion/gates", headers=eve,
                           follow_redirects=False)
        assert late.status_code == 409 and "the change is closed, not open" in late.text
    with Session(engine) as s:
        events = s.exec(select(AuditEvent).where(
            AuditEvent.action == "scaffolder.promote.override")).all()
        assert sorted((e.actor, e.outcome) for e in events) == [
            ("alice", "denied"), ("root", "success")]
        assert [e.detail["reason"] for e in events if e.outcome == "success"] == [reason]


def test_namespace_page_promotes_the_quota(
        settings: Settings, engine: Engine, tmp_path: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    _seed(settings, tmp_path)
    _people(make_user)
    with TestClient(create_app(settings, engine=engine)) as client:
        _setup(client, auth_headers)
        with Session(engine) as s:  # what the worker's index job does after the merge
            catalog_service.reindex(s, forge=make_forge(settings, engine))
        page = "/catalog/namespaces/payments/payments-web"
        alice = {**auth_headers("alice"), **HTML}
        mine = client.get(page, headers=alice).text
        assert "disabled" not in _button(mine, "Promote quota")
        assert re.search(r'<select id="tenant-promote-to"[^>]*>.*staging.*prod', mine, re.S)
        outsider = client.get(page, headers={**auth_headers("eve"), **HTML}).text
        assert "disabled" in _button(outsider, "Promote quota")
        assert _why(outsider, "tenant-promote") == "you are not a member of team `payments`"
        refused = client.post(page + "/promote", headers={**auth_headers("eve"), **HTML},
                              data={"from": "dev", "to": "staging"}, follow_redirects=False)
        assert refused.status_code == 403
        same = client.post(page + "/promote", headers=alice, data={"from": "dev", "to": "dev"},
                           follow_redirects=False)
        assert same.status_code == 422 and "to: the target environment must differ" in same.text
        # TENANT's quotas are the same everywhere: nothing to carry, said as such.
        nothing = client.post(page + "/promote", headers=alice,
                              data={"from": "dev", "to": "staging"}, follow_redirects=False)
        assert nothing.status_code == 409 and "already has dev" in nothing.text
