"""The error tree. Domain packages subclass these; ``portal.app`` maps them to HTTP in one place.

Below the views nobody raises ``HTTPException``: a service raises a ``CaasError`` naming the field
and the rule, and the app turns it into a status code and a JSON body (or an error page).
"""

from __future__ import annotations

from pydantic import BaseModel


class CaasError(Exception):
    """Base of every expected error. ``status`` is the HTTP status it maps to."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.rule = rule

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.rule is not None:
            body["rule"] = self.rule
        return body


class BadRequest(CaasError):
    status = 400
    code = "bad_request"


class ValidationFailed(CaasError):
    """Input breaks a rule. Always names the field."""

    status = 422
    code = "validation_failed"

    def __init__(self, message: str, *, field: str, rule: str | None = None) -> None:
        super().__init__(message, field=field, rule=rule)


class Unauthenticated(CaasError):
    status = 401
    code = "unauthenticated"


class Forbidden(CaasError):
    status = 403
    code = "forbidden"


class NotFound(CaasError):
    status = 404
    code = "not_found"


class Conflict(CaasError):
    status = 409
    code = "conflict"


class PayloadTooLarge(CaasError):
    status = 413
    code = "payload_too_large"


class TooManyRequests(CaasError):
    status = 429
    code = "too_many_requests"


class Unavailable(CaasError):
    """A dependency (database, forge, cluster) cannot be reached right now."""

    status = 503
    code = "unavailable"


class ConfigError(CaasError):
    """Bad configuration found at start-up; the CLI prints it as one line and exits non-zero."""

    status = 500
    code = "config_error"


# ---- the wire shape of every error (documented in the OpenAPI document) ----------------------


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    rule: str | None = None


class ErrorBody(BaseModel):
    """Every 4xx/5xx of the API: what failed, the field it concerns and the rule it broke."""

    error: ErrorDetail


_WHY = {
    400: "Malformed request (a field says which)",
    401: "Not signed in (no, expired or revoked session or token)",
    403: "Signed in but not allowed (role, team, four-eyes rule)",
    404: "No such resource (or not visible to the caller)",
    409: "Conflicts with the current state (unit requested already, wrong state)",
    413: "Request body over the limit; `field` names the value that crossed it",
    422: "Invalid input; `field` names it and `rule` the rule it broke",
    429: "Too many attempts; retry later",
    503: "A dependency (database, forge) is not reachable or not configured",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` for these error statuses, each with the ``ErrorBody`` shape."""
    return {status: {"model": ErrorBody, "description": _WHY[status]} for status in statuses}
