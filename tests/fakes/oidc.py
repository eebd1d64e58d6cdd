"""A small Keycloak-shaped OpenID provider for tests: discovery, JWKS, authorize, token.

Keys are generated locally with ``cryptography``; ID tokens are signed with PyJWT. The
authorization endpoint signs in ``FakeIdP.user`` without a form (the test sets it) and
remembers the PKCE challenge; the token endpoint checks the client, the redirect URI, that the
code is used once, and the S256 verifier, exactly as a real provider would.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.testclient import TestClient

from devtools.server import serve

REALM_PATH = "/realms/caas"
CLIENT_ID = "caas-portal"
CLIENT_SECRET = "fake-client-secret-0123456789"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        algo = jwt.get_algorithm_by_name(self.alg)
        data: dict[str, Any] = dict(algo.to_jwk(self.private.public_key(), as_dict=True))
        data.update(kid=self.kid, alg=self.alg, use="sig")
        return data


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537,
                                                            key_size=2048))


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


@dataclass
class FakeIdP:
    base: str = ""
    keys: list[SigningKey] = field(default_factory=list)
    user: dict[str, Any] = field(default_factory=dict)  # claims of who signs in next
    token_overrides: dict[str, Any] = field(default_factory=dict)  # merged into ID tokens
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    jwks_requests: int = 0
    token_requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.base + REALM_PATH

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {"iss": self.issuer, "aud": CLIENT_ID, "azp": CLIENT_ID, "sub": "sub-1",
                "iat": now, "exp": now + 300, "nonce": "n", "typ": "ID"}
        merged = {**base, **self.user, **overrides}
        if "sub" not in self.user and "sub" not in overrides:  # one subject per account
            merged["sub"] = "sub-" + str(merged.get("preferred_username") or "1")
        return merged

    def sign(self, claims: dict[str, Any], *, key: SigningKey | None = None,
             headers: dict[str, Any] | None = None) -> str:
        key = key or self.keys[0]
        return jwt.encode(claims, key.private, algorithm=key.alg,
                          headers={"kid": key.kid, **(headers or {})})


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def build_app(idp: FakeIdP) -> FastAPI:
    app = FastAPI()
    prefix = REALM_PATH + "/protocol/openid-connect"

    @app.get(REALM_PATH + "/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        return {
            "issuer": idp.issuer,
            "authorization_endpoint": idp.base + prefix + "/auth",
            "token_endpoint": idp.base + prefix + "/token",
            "jwks_uri": idp.base + prefix + "/certs",
            "end_session_endpoint": idp.base + prefix + "/logout",
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
        }

    @app.get(prefix + "/certs")
    def certs() -> dict[str, Any]:
        idp.jwks_requests += 1
        return {"keys": [k.jwk() for k in idp.keys]}

    @app.get(prefix + "/auth")
    def authorize(request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code" \
                or q.get("code_challenge_method") != "S256" or "openid" not in q.get("scope", ""):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        idp.codes[code] = {"redirect_uri": q["redirect_uri"], "nonce": q.get("nonce"),
                           "challenge": q["code_challenge"], "user": dict(idp.user)}
        target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(target, status_code=302)

    @app.post(prefix + "/token")
    def token(request: Request, grant_type: str = Form(""), code: str = Form(""),
              redirect_uri: str = Form(""), code_verifier: str = Form("")) -> Response:
        idp.token_requests.append({"code": code, "verifier": code_verifier})
        auth = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if auth != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        pending = idp.codes.pop(code, None)  # a code works once
        if grant_type != "authorization_code" or pending is None \
                or pending["redirect_uri"] != redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if _b64(hashlib.sha256(code_verifier.encode()).digest()) != pending["challenge"]:
            return JSONResponse({"error": "invalid_grant",
                                 "error_description": "PKCE verification failed"},
                                status_code=400)
        claims = idp.claims(nonce=pending["nonce"], **pending["user"])
        claims.update(idp.token_overrides)
        return JSONResponse({"access_token": "opaque-access", "token_type": "Bearer",
                             "expires_in": 300, "id_token": idp.sign(claims)})

    return app


@contextmanager
def running_idp() -> Iterator[FakeIdP]:
    idp = FakeIdP(keys=[rsa_key("rsa-1")])
    with serve(build_app(idp)) as base:
        idp.base = base
        yield idp


def start_sign_in(portal: TestClient, next_path: str = "/") -> str:
    """Begin at the portal, let the provider sign in; returns the callback path + query."""
    started = portal.get("/auth/oidc/login", params={"next": next_path}, follow_redirects=False)
    assert started.status_code == 303
    location = started.headers["location"]
    query = parse_qs(urlparse(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"][0]
    assert "httponly" in started.headers["set-cookie"].lower()
    answer = httpx.get(location, follow_redirects=False)
    assert answer.status_code == 302
    back = urlparse(answer.headers["location"])
    assert back.netloc == "testserver" and back.path == "/auth/oidc/callback"
    return f"{back.path}?{back.query}"
