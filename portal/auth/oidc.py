"""OpenID Connect relying party for Keycloak: discovery, code exchange, ID token verification.

Only what the portal needs, written out so each check is visible:
- discovery from ``<issuer>/.well-known/openid-configuration`` (the document's ``issuer`` must
  be the configured one, byte for byte);
- the authorization code is exchanged at the token endpoint with the PKCE verifier;
- the ID token is verified against the realm's JWKS: signature with an asymmetric algorithm only
  (RS256/ES256; ``none`` and HMAC are refused before any key is looked at, so a public key can
  never be used as an HMAC secret), issuer, audience (= client id, plus ``azp`` when several
  audiences), expiry, issued-at and the nonce of this sign-in;
- the JWKS is cached and fetched again when a token names an unknown ``kid`` (key rotation),
  at most once per ``jwks_min_refresh_s`` so forged tokens cannot make us hammer the IdP.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from portal.errors import CaasError, Unavailable
from portal.redact import redact

ALLOWED_ALGORITHMS = ("RS256", "ES256")
_KTY_FOR_ALG = {"RS256": "RSA", "ES256": "EC"}
LEEWAY_S = 30


class SignInRefused(CaasError):
    """The identity provider's answer or token was not acceptable. Shown as a page, not a
    redirect to the sign-in form (that would loop)."""

    status = 401
    code = "sign_in_refused"


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None = None


class OidcClient:
    """One provider and one client. Thread-safe; keep one per application."""

    def __init__(self, *, issuer: str, client_id: str, client_secret: str | None = None,
                 timeout_s: float = 10.0, jwks_min_refresh_s: float = 5.0,
                 http: httpx.Client | None = None) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._http = http or httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._lock = threading.Lock()
        self._metadata: ProviderMetadata | None = None
        self._keys: dict[str, dict[str, Any]] = {}
        self._jwks_fetched_at = float("-inf")
        self._jwks_min_refresh_s = jwks_min_refresh_s

    def close(self) -> None:
        self._http.close()

    # ---- discovery ------------------------------------------------------------------------

    def metadata(self) -> ProviderMetadata:
        with self._lock:
            if self._metadata is None:
                self._metadata = self._discover()
            return self._metadata

    def _discover(self) -> ProviderMetadata:
        doc = self._get_json(f"{self.issuer}/.well-known/openid-configuration", "discovery")
        if doc.get("issuer") != self.issuer:
            raise Unavailable(f"OIDC discovery names issuer {doc.get('issuer')!r}, expected "
                              f"{self.issuer!r} (check CAAS_OIDC_ISSUER)")
        try:
            return ProviderMetadata(
                issuer=doc["issuer"], authorization_endpoint=doc["authorization_endpoint"],
                token_endpoint=doc["token_endpoint"], jwks_uri=doc["jwks_uri"],
                end_session_endpoint=doc.get("end_session_endpoint"),
            )
        except KeyError as exc:
            raise Unavailable(f"OIDC discovery document lacks {exc.args[0]!r}") from exc

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, headers={"accept": "application/json"})
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"identity provider {what} failed: {type(exc).__name__}: "
                              f"{redact(str(exc))}") from exc
        if not isinstance(data, dict):
            raise Unavailable(f"identity provider {what} did not return a JSON object")
        return data

    # ---- the code flow ----------------------------------------------------------------------

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str,
                          code_challenge: str, scope: str = "openid profile email") -> str:
        query = urlencode({
            "response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
            "scope": scope, "state": state, "nonce": nonce,
            "code_challenge": code_challenge, "code_challenge_method": "S256",
        })
        return f"{self.metadata().authorization_endpoint}?{query}"

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> str:
        """Trade the authorization code for tokens; returns the (not yet verified) ID token."""
        data = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": redirect_uri, "code_verifier": code_verifier}
        extra: dict[str, Any] = {}
        if self._secret:
            extra["auth"] = httpx.BasicAuth(self.client_id, self._secret)  # client_secret_basic
        else:
            data["client_id"] = self.client_id  # public client: PKCE is the proof
        try:
            response = self._http.post(self.metadata().token_endpoint, data=data,
                                       headers={"accept": "application/json"}, **extra)
        except httpx.HTTPError as exc:
            raise Unavailable(f"identity provider token endpoint unreachable: "
                              f"{type(exc).__name__}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            reason = body.get("error", "") if isinstance(body, dict) else ""
            raise SignInRefused(f"the identity provider refused the code "
                                f"({response.status_code} {redact(str(reason))})".strip(),
                                field="code", rule="token_exchange")
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise SignInRefused("the identity provider returned no ID token (is the `openid` "
                                "scope allowed for this client?)", field="id_token")
        return id_token

    # ---- ID token verification --------------------------------------------------------------

    def verify_id_token(self, token: str, *, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _refused("is malformed", "format") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise _refused(f"uses algorithm {alg!r}; only {', '.join(ALLOWED_ALGORITHMS)} "
                           "are accepted", "alg")
        key = self._signing_key(header.get("kid"), str(alg))
        metadata = self.metadata()
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=[str(alg)], audience=self.client_id,
                issuer=metadata.issuer, leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _refused("has expired", "exp") from exc
        except jwt.InvalidAudienceError as exc:
            raise _refused("is not meant for this portal (audience)", "aud") from exc
        except jwt.InvalidIssuerError as exc:
            raise _refused("comes from another issuer", "iss") from exc
        except jwt.InvalidSignatureError as exc:
            raise _refused("has a bad signature", "signature") from exc
        except jwt.PyJWTError as exc:
            raise _refused(f"is invalid ({type(exc).__name__})", "claims") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise _refused("was issued to another client (azp)", "azp")
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, nonce):
            raise _refused("does not belong to this sign-in (nonce)", "nonce")
        return claims

    def _signing_key(self, kid: object, alg: str) -> Any:
        kid_s = kid if isinstance(kid, str) else None
        with self._lock:
            jwk = self._find_key(kid_s, alg)
            if jwk is None and (time.monotonic() - self._jwks_fetched_at
                                >= self._jwks_min_refresh_s):
                self._refresh_jwks()  # unknown kid: the realm may have rotated its keys
                jwk = self._find_key(kid_s, alg)
        if jwk is None:
            raise _refused(f"names a key ({kid_s!r}) the realm does not publish", "kid")
        if jwk.get("alg") not in (None, alg) or jwk.get("kty") != _KTY_FOR_ALG[alg]:
            raise _refused(f"algorithm {alg} does not match its key", "alg")
        try:
            return jwt.PyJWK(jwk, algorithm=alg).key
        except jwt.PyJWTError as exc:
            raise _refused("names a key that cannot be used", "kid") from exc

    def _find_key(self, kid: str | None, alg: str) -> dict[str, Any] | None:
        if kid is not None:
            return self._keys.get(kid)
        candidates = [k for k in self._keys.values() if k.get("kty") == _KTY_FOR_ALG[alg]]
        return candidates[0] if len(candidates) == 1 else None

    def _refresh_jwks(self) -> None:
        doc = self._get_json(self._metadata_unlocked().jwks_uri, "JWKS")
        keys: dict[str, dict[str, Any]] = {}
        for index, jwk in enumerate(doc.get("keys") or []):
            # Only public signing keys: symmetric (`oct`) and encryption keys are never used.
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            if jwk.get("kty") not in _KTY_FOR_ALG.values():
                continue
            keys[str(jwk.get("kid", f"#{index}"))] = jwk
        self._keys = keys
        self._jwks_fetched_at = time.monotonic()

    def _metadata_unlocked(self) -> ProviderMetadata:
        if self._metadata is None:
            self._metadata = self._discover()
        return self._metadata


def _refused(what: str, rule: str) -> SignInRefused:
    return SignInRefused(f"the ID token {what}", field="id_token", rule=rule)
