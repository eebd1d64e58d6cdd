"""The sign-in flow around ``OidcClient``: PKCE, a signed single-use ``state``, the nonce.

``begin`` stores a pending sign-in (random state id, nonce, PKCE verifier, where to go next)
and returns the provider's authorization URL plus the state value, which the browser also keeps
in a short-lived cookie. ``finish`` accepts the callback only when the state is correctly signed
with the portal's secret key, not expired, equal to the browser's cookie (so nobody can plant
their own sign-in in someone else's browser), and still pending: the row is consumed by one
``DELETE`` before the code is exchanged, so a state works exactly once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlparse

from sqlalchemy import delete
from sqlmodel import Session, col, select

from portal.auth import audit
from portal.auth.models import OidcLogin, User, WebSession
from portal.auth.oidc import OidcClient, SignInRefused
from portal.auth.oidc_users import upsert_user
from portal.auth.service import open_session
from portal.db import aware, utcnow
from portal.settings import Settings

STATE_TTL_S = 600
CALLBACK_PATH = "/auth/oidc/callback"


@dataclass(frozen=True)
class Started:
    authorization_url: str
    state: str


@dataclass(frozen=True)
class Finished:
    web: WebSession
    clear: str
    user: User
    next_url: str


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = _b64(hashlib.sha256(verifier.encode("ascii")).digest())
    return verifier, challenge


def sign_state(key: str, state_id: str, *, now: float | None = None,
               ttl_s: int = STATE_TTL_S) -> str:
    expires = int((time.time() if now is None else now) + ttl_s)
    payload = _b64(json.dumps({"sid": state_id, "exp": expires}, separators=(",", ":")).encode())
    return f"{payload}.{_mac(key, payload)}"


def read_state(key: str, state: str, *, now: float | None = None) -> str:
    """The state id inside a signed state; refuses forged, malformed and expired ones."""
    payload, _, mac = state.partition(".")
    if not payload or not mac or not hmac.compare_digest(mac, _mac(key, payload)):
        raise SignInRefused("the sign-in state is not one this portal issued", field="state",
                            rule="signature")
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        state_id, expires = str(data["sid"]), int(data["exp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SignInRefused("the sign-in state is malformed", field="state") from exc
    if expires < (time.time() if now is None else now):
        raise SignInRefused("the sign-in took too long; start again", field="state",
                            rule="expired")
    return state_id


def safe_next(target: str | None) -> str:
    """Only same-site relative paths: never an open redirect."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return "/"
    return target[:2000]


def redirect_uri(settings: Settings) -> str:
    return settings.base_url.rstrip("/") + CALLBACK_PATH


def begin(session: Session, *, settings: Settings, client: OidcClient, next_url: str,
          ip: str) -> Started:
    now = utcnow()
    # Forget abandoned sign-ins; the index on expires_at keeps this cheap.
    session.exec(delete(OidcLogin).where(col(OidcLogin.expires_at) < now))
    state_id, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier, challenge = pkce_pair()
    session.add(OidcLogin(state_id=state_id, nonce=nonce, code_verifier=verifier,
                          next_url=safe_next(next_url), ip=ip[:64],
                          expires_at=now + timedelta(seconds=STATE_TTL_S)))
    session.commit()
    state = sign_state(settings.resolved_secret_key(), state_id)
    url = client.authorization_url(redirect_uri=redirect_uri(settings), state=state,
                                   nonce=nonce, code_challenge=challenge)
    return Started(authorization_url=url, state=state)


def finish(session: Session, *, settings: Settings, client: OidcClient, state: str,
           cookie_state: str | None, code: str, ip: str) -> Finished:
    """Complete the sign-in; every refusal is audited as a failed ``auth.login``."""
    try:
        return _finish(session, settings=settings, client=client, state=state,
                       cookie_state=cookie_state, code=code, ip=ip)
    except SignInRefused as exc:
        session.rollback()
        audit.record(session, actor="", action="auth.login", outcome="failure", ip=ip,
                     detail={"via": "oidc", "reason": exc.message, "rule": exc.rule or ""})
        raise


def refuse_provider_error(session: Session, *, error: str, description: str, ip: str
                          ) -> SignInRefused:
    """The provider redirected back with ``error=...`` (the user cancelled, or was denied)."""
    exc = SignInRefused(f"the identity provider did not sign you in: {error[:100]}"
                        + (f" ({description[:200]})" if description else ""),
                        field="error", rule="provider")
    audit.record(session, actor="", action="auth.login", outcome="failure", ip=ip,
                 detail={"via": "oidc", "reason": exc.message, "rule": "provider"})
    return exc


def _finish(session: Session, *, settings: Settings, client: OidcClient, state: str,
            cookie_state: str | None, code: str, ip: str) -> Finished:
    state_id = read_state(settings.resolved_secret_key(), state)
    if not cookie_state or not hmac.compare_digest(cookie_state, state):
        raise SignInRefused("this sign-in was not started in this browser", field="state",
                            rule="browser")
    pending = session.exec(select(OidcLogin).where(OidcLogin.state_id == state_id)).first()
    consumed = session.exec(delete(OidcLogin).where(
        col(OidcLogin.state_id) == state_id))
    session.commit()  # consumed for good, whatever happens next
    if pending is None or consumed.rowcount != 1:
        raise SignInRefused("this sign-in was already used; start again", field="state",
                            rule="single_use")
    if aware(pending.expires_at) < utcnow():
        raise SignInRefused("the sign-in took too long; start again", field="state",
                            rule="expired")
    if not code:
        raise SignInRefused("the identity provider sent no code", field="code")
    id_token = client.exchange_code(code=code, redirect_uri=redirect_uri(settings),
                                    code_verifier=pending.code_verifier)
    claims = client.verify_id_token(id_token, nonce=pending.nonce)
    user = upsert_user(session, claims=claims, groups_claim=settings.oidc_groups_claim,
                       admin_group=settings.oidc_admin_group)
    web, clear = open_session(session, user=user, ip=ip, ttl_hours=settings.session_ttl_hours,
                              via="oidc")
    return Finished(web=web, clear=clear, user=user, next_url=safe_next(pending.next_url))


def _mac(key: str, payload: str) -> str:
    digest = hmac.new(key.encode(), b"oidc-state:" + payload.encode(), hashlib.sha256).digest()
    return _b64(digest)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
