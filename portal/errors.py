"""The error tree. Domain packages subclass these; ``portal.app`` maps them to HTTP in one place.

Below the views nobody raises ``HTTPException``: a service raises a ``CaasError`` naming the field
and the rule, and the app turns it into a status code and a JSON body (or an error page).
"""

from __future__ import annotations


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
