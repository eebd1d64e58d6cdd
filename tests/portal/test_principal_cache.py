"""The cache of authenticated principals: a revoked token or session, a changed membership or
a disabled user are seen on the very next request (the identity generation moved); the cache
still answers repeated requests without authenticating again."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from portal import generations
from portal.auth import service as auth_service
from portal.auth.models import ApiToken, Role, User, WebSession
from portal.auth.principal import Principal
from portal.auth.principal_cache import PrincipalCache
from portal.db import utcnow
from portal.errors import Unauthenticated
from tests.conftest import PASSWORD, UserFactory, bearer


def test_a_revoked_token_is_refused_on_its_next_request(
        app_client: TestClient, engine: Engine, make_user: UserFactory) -> None:
    make_user("dora")
    headers = bearer(engine, "dora")
    for _ in range(3):  # the second and third come from the cache
        assert app_client.get("/api/auth/me", headers=headers).status_code == 200
    assert len(app_client.app.state.principals) == 1  # type: ignore[attr-defined]
    before = generations.current(engine).identity
    with Session(engine) as s:  # revoked elsewhere: another process, the CLI
        token = s.exec(select(ApiToken)).one()
        assert token.id is not None
        auth_service.revoke_token(s, token_id=token.id, principal=auth_service.principal_for(
            s, auth_service.get_user(s, username="dora"), via="test"))
    assert generations.current(engine).identity > before
    response = app_client.get("/api/auth/me", headers=headers)
    assert response.status_code == 401, response.text
    assert app_client.get("/api/auth/me", headers=headers).status_code == 401


def test_a_signed_out_session_is_refused_on_its_next_request(
        app_client: TestClient, engine: Engine, make_user: UserFactory) -> None:
    make_user("erin")
    login = app_client.post("/api/auth/login", json={"username": "erin", "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert app_client.get("/api/auth/me").status_code == 200
    assert app_client.get("/api/auth/me").status_code == 200
    with Session(engine) as s:  # signed out in another process
        s.exec(update(WebSession).values(revoked_at=utcnow()))  # type: ignore[call-overload]
        s.commit()
    assert app_client.get("/api/auth/me").status_code == 401


def test_a_new_membership_and_a_disabled_user_show_at_once(
        app_client: TestClient, engine: Engine, make_user: UserFactory) -> None:
    make_user("fred")
    headers = bearer(engine, "fred")
    assert app_client.get("/api/auth/me", headers=headers).json()["teams"] == {}
    with Session(engine) as s:
        auth_service.ensure_team(s, name="payments")
        auth_service.add_member(s, team="payments", username="fred", role=Role.reviewer)
    me = app_client.get("/api/auth/me", headers=headers).json()
    assert me["teams"] == {"payments": "reviewer"}
    with Session(engine) as s:
        s.exec(update(User).where(User.username == "fred")  # type: ignore[call-overload,arg-type]
               .values(is_active=False))
        s.commit()
    assert app_client.get("/api/auth/me", headers=headers).status_code == 401


def test_a_token_last_use_does_not_empty_the_cache(engine: Engine,
                                                   make_user: UserFactory) -> None:
    make_user("gus")
    bearer(engine, "gus")
    before = generations.current(engine).identity
    with Session(engine) as s:
        s.exec(update(ApiToken).values(last_used_at=utcnow()))  # type: ignore[call-overload]
        s.commit()
    assert generations.current(engine).identity == before


def test_entries_end_with_their_credential_their_ttl_and_their_generation() -> None:
    cache = PrincipalCache(ttl_s=0.2, max_entries=2)
    who = Principal(user_id=1, username="dora")
    cache.put("t:a", 5, who)
    assert cache.get("t:a", 5) == who
    assert cache.get("t:a", 6) is None  # another generation: gone for good
    assert cache.get("t:a", 5) is None
    cache.put("t:expired", 5, replace(who, expires_at=utcnow() - timedelta(seconds=1)))
    assert cache.get("t:expired", 5) is None
    cache.put("t:b", 5, who)
    time.sleep(0.25)
    assert cache.get("t:b", 5) is None  # older than the TTL
    for key in ("t:1", "t:2", "t:3"):
        cache.put(key, 5, who)
    assert len(cache) == 2 and cache.get("t:1", 5) is None


def test_concurrent_misses_of_one_credential_authenticate_once() -> None:
    """An entry ageing out under load: every in-flight request of that client misses at once;
    one authenticates, the others wait for its principal (one last-use write, not a hundred)."""
    cache = PrincipalCache()
    who = Principal(user_id=1, username="dora")
    calls: list[str] = []

    async def authenticate() -> Principal:
        calls.append("auth")
        await asyncio.sleep(0.05)
        return who

    async def main() -> list[Principal]:
        return list(await asyncio.gather(*[cache.get_or_authenticate("t:a", 5, authenticate)
                                           for _ in range(50)]))

    assert asyncio.run(main()) == [who] * 50
    assert calls == ["auth"]
    assert cache.get("t:a", 5) == who
    # Under another generation (a revocation moved it) the waiters share nothing old.
    assert asyncio.run(cache.get_or_authenticate("t:a", 6, authenticate)) == who
    assert calls == ["auth", "auth"]


def test_a_refusal_is_not_shared_each_request_authenticates_and_is_refused() -> None:
    cache = PrincipalCache()
    calls: list[int] = []

    async def refuse() -> Principal:
        calls.append(1)
        await asyncio.sleep(0.02)
        raise Unauthenticated("invalid, expired or revoked API token")

    async def main() -> list[BaseException | Principal]:
        return list(await asyncio.gather(*[cache.get_or_authenticate("t:bad", 5, refuse)
                                           for _ in range(5)], return_exceptions=True))

    results = asyncio.run(main())
    assert all(isinstance(r, Unauthenticated) for r in results)
    assert len(calls) == 5  # each refusal its own (audited) authentication
    assert cache.get("t:bad", 5) is None and not cache._inflight


def test_many_concurrent_requests_of_one_token_write_its_last_use_once(
        app_client: TestClient, engine: Engine, make_user: UserFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the app: 30 requests of one fresh token at once are all answered and the token
    is authenticated once (one lookup, one last-use write)."""
    import httpx

    from portal.auth import deps

    make_user("hank")
    headers = bearer(engine, "hank")
    seen: list[str] = []
    real = deps._authenticate

    def counting(*args: Any) -> Principal:
        seen.append("auth")
        time.sleep(0.05)  # a slow database: the others arrive while it runs
        return real(*args)

    monkeypatch.setattr(deps, "_authenticate", counting)

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=app_client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            responses = await asyncio.gather(*[client.get("/api/auth/me", headers=headers)
                                               for _ in range(30)])
        return [r.status_code for r in responses]

    assert asyncio.run(main()) == [200] * 30
    assert seen == ["auth"]
