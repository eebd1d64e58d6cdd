"""OIDC sign-in against a fake provider on loopback: locally generated keys, real HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from portal.app import create_app
from portal.auth import oidc_flow
from portal.auth.models import AuditEvent, OidcLogin, User
from portal.auth.oidc import OidcClient, SignInRefused
from portal.settings import Settings
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeIdP, ec_key, rsa_key, start_sign_in


@pytest.fixture(autouse=True)
def _reset(idp: FakeIdP) -> None:
    idp.keys[:] = idp.keys[:1]
    idp.user = {"preferred_username": "olga", "name": "Olga O", "email": "olga@example.com",
                "groups": ["/team-payments", "/team-search-admins", "offline_access"]}
    idp.token_overrides = {}


@pytest.fixture
def client(idp: FakeIdP) -> Iterator[OidcClient]:
    c = OidcClient(issuer=idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                   jwks_min_refresh_s=0)
    yield c
    c.close()


# ---- ID token verification ------------------------------------------------------------------


def _refusal(client: OidcClient, token: str, nonce: str = "n") -> str:
    with pytest.raises(SignInRefused) as err:
        client.verify_id_token(token, nonce=nonce)
    return str(err.value.rule)


def test_valid_token_is_accepted(idp: FakeIdP, client: OidcClient) -> None:
    claims = client.verify_id_token(idp.sign(idp.claims()), nonce="n")
    assert claims["preferred_username"] == "olga"
    assert claims["groups"][0] == "/team-payments"


def test_es256_token_is_accepted(idp: FakeIdP, client: OidcClient) -> None:
    key = ec_key("ec-1")
    idp.keys.append(key)
    assert client.verify_id_token(idp.sign(idp.claims(), key=key), nonce="n")["sub"] == "sub-olga"


@pytest.mark.parametrize(("overrides", "rule"), [
    ({"exp": 1_000_000, "iat": 999_000}, "exp"),
    ({"aud": "another-client"}, "aud"),
    ({"iss": "https://evil.example/realms/caas"}, "iss"),
    ({"nonce": "from-another-sign-in"}, "nonce"),
    ({"aud": [CLIENT_ID, "other"], "azp": "other"}, "azp"),
])
def test_bad_claims_are_refused(idp: FakeIdP, client: OidcClient, overrides: dict[str, object],
                                rule: str) -> None:
    assert _refusal(client, idp.sign(idp.claims(**overrides))) == rule


def test_missing_expiry_is_refused(idp: FakeIdP, client: OidcClient) -> None:
    claims = idp.claims()
    del claims["exp"]
    assert _refusal(client, idp.sign(claims)) == "claims"


def test_unsigned_alg_none_is_refused(idp: FakeIdP, client: OidcClient) -> None:
    token = jwt.encode(idp.claims(), key="", algorithm="none")
    assert _refusal(client, token) == "alg"


def test_hs256_signed_with_the_public_key_is_refused(idp: FakeIdP, client: OidcClient) -> None:
    public_pem = idp.keys[0].private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64json({"alg": "HS256", "typ": "JWT", "kid": idp.keys[0].kid})
    payload = _b64json(idp.claims())
    import hashlib
    import hmac

    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert _refusal(client, token) == "alg"


def test_tampered_payload_is_refused(idp: FakeIdP, client: OidcClient) -> None:
    header, _payload, signature = idp.sign(idp.claims()).split(".")
    forged = _b64json(idp.claims(groups=["platform-admins"]))
    assert _refusal(client, f"{header}.{forged}.{signature}") == "signature"


def test_token_signed_by_a_foreign_key_is_refused(idp: FakeIdP, client: OidcClient) -> None:
    stranger = rsa_key("rsa-1")  # same kid, different key
    assert _refusal(client, idp.sign(idp.claims(), key=stranger)) == "signature"
    assert _refusal(client, idp.sign(idp.claims(), key=rsa_key("nobody"))) == "kid"


def test_rotated_key_is_fetched_on_unknown_kid(idp: FakeIdP, client: OidcClient) -> None:
    client.verify_id_token(idp.sign(idp.claims()), nonce="n")
    before = idp.jwks_requests
    client.verify_id_token(idp.sign(idp.claims()), nonce="n")
    assert idp.jwks_requests == before  # cached
    rotated = rsa_key("rsa-2")
    idp.keys.append(rotated)
    assert client.verify_id_token(idp.sign(idp.claims(), key=rotated), nonce="n")
    assert idp.jwks_requests == before + 1


def test_discovery_with_another_issuer_is_refused(idp: FakeIdP) -> None:
    c = OidcClient(issuer=idp.issuer + "-x", client_id=CLIENT_ID)
    with pytest.raises(Exception, match="discovery"):
        c.metadata()
    c.close()


def test_signed_state_is_checked() -> None:
    state = oidc_flow.sign_state("k1", "abc")
    assert oidc_flow.read_state("k1", state) == "abc"
    for bad in (oidc_flow.sign_state("k2", "abc"), state + "x", "garbage",
                oidc_flow.sign_state("k1", "abc", now=0)):
        with pytest.raises(SignInRefused):
            oidc_flow.read_state("k1", bad)


def test_pkce_challenge_is_s256_of_the_verifier() -> None:
    import hashlib

    verifier, challenge = oidc_flow.pkce_pair()
    assert 43 <= len(verifier) <= 128
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert challenge == digest.rstrip(b"=").decode()


# ---- the full code flow through the portal ----------------------------------------------------


def test_code_flow_signs_in_with_the_right_teams(portal: TestClient, idp: FakeIdP,
                                                 oidc_engine: Engine) -> None:
    callback = start_sign_in(portal, "/catalog?x=1")
    done = portal.get(callback, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/catalog?x=1"
    assert idp.token_requests[-1]["verifier"]  # PKCE verifier went to the token endpoint
    me = portal.get("/api/auth/me").json()
    assert me["username"] == "olga" and not me["is_platform_admin"]
    assert me["teams"] == {"payments": "developer", "search": "reviewer"}
    with Session(oidc_engine) as s:
        user = s.exec(select(User).where(User.username == "olga")).one()
        assert user.source == "oidc" and user.password_hash is None
        assert s.exec(select(OidcLogin)).all() == []  # consumed
        logins = s.exec(select(AuditEvent).where(AuditEvent.action == "auth.login")).all()
        assert [(e.actor, e.outcome, e.detail.get("via")) for e in logins] == [
            ("olga", "success", "oidc")]

    # Replaying the same callback (state and code) is refused and audited.
    replay = portal.get(callback, follow_redirects=False)
    assert replay.status_code == 401
    assert replay.json()["error"]["rule"] in {"browser", "single_use"}


def test_memberships_follow_the_claim_at_each_sign_in(portal: TestClient, idp: FakeIdP) -> None:
    portal.get(start_sign_in(portal), follow_redirects=False)
    portal.cookies.clear()
    idp.user["groups"] = ["/team-search", "platform-admins"]
    assert portal.get(start_sign_in(portal), follow_redirects=False).status_code == 303
    me = portal.get("/api/auth/me").json()
    assert me["teams"] == {"search": "developer"} and me["is_platform_admin"]


def test_replayed_state_with_its_cookie_is_refused(portal: TestClient, idp: FakeIdP,
                                                  oidc_engine: Engine) -> None:
    callback = start_sign_in(portal)
    state_cookie = portal.cookies.get("caas_oidc")
    assert portal.get(callback, follow_redirects=False).status_code == 303
    portal.cookies.clear()
    portal.cookies.set("caas_oidc", state_cookie, path="/auth/oidc")
    replay = portal.get(callback, follow_redirects=False)
    assert replay.status_code == 401 and replay.json()["error"]["rule"] == "single_use"
    with Session(oidc_engine) as s:
        failures = s.exec(select(AuditEvent).where(AuditEvent.action == "auth.login",
                                                   AuditEvent.outcome == "failure")).all()
        assert [f.detail["rule"] for f in failures] == ["single_use"]


def test_callback_from_another_browser_is_refused(portal: TestClient, idp: FakeIdP) -> None:
    callback = start_sign_in(portal)
    portal.cookies.clear()  # the attacker's callback URL opened in the victim's browser
    response = portal.get(callback, follow_redirects=False)
    assert response.status_code == 401 and response.json()["error"]["rule"] == "browser"
    assert portal.get("/api/auth/me").status_code == 401


def test_token_from_the_provider_with_bad_audience_is_refused(portal: TestClient,
                                                              idp: FakeIdP) -> None:
    idp.token_overrides = {"aud": "someone-else"}
    response = portal.get(start_sign_in(portal), follow_redirects=False)
    assert response.status_code == 401 and response.json()["error"]["rule"] == "aud"
    assert "caas_session" not in portal.cookies


def test_provider_error_is_shown_and_audited(portal: TestClient, oidc_engine: Engine) -> None:
    response = portal.get("/auth/oidc/callback", params={"error": "access_denied"},
                          headers={"accept": "text/html"})
    assert response.status_code == 401 and "access_denied" in response.text
    with Session(oidc_engine) as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.outcome == "failure")).one()


def test_sso_cannot_take_over_a_local_account(portal: TestClient, idp: FakeIdP,
                                              oidc_engine: Engine) -> None:
    from portal.auth import service as auth_service

    with Session(oidc_engine) as s:
        auth_service.create_user(s, username="root", password="local-only-password",
                                 is_platform_admin=True)
    idp.user["preferred_username"] = "root"
    response = portal.get(start_sign_in(portal), follow_redirects=False)
    assert response.status_code == 401
    assert response.json()["error"]["rule"] == "local_account"


def test_sso_disabled_is_404(settings: Settings, engine: Engine) -> None:
    with TestClient(create_app(settings, engine=engine)) as c:
        assert c.get("/auth/oidc/login", follow_redirects=False).status_code == 404


def test_open_redirect_is_neutralised() -> None:
    for target in ("https://evil.example/", "//evil.example", "/\\evil", "javascript:x"):
        assert oidc_flow.safe_next(target) == "/"
    assert oidc_flow.safe_next("/teams/a?b=1") == "/teams/a?b=1"


def _b64json(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


