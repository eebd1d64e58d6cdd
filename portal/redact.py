"""Keep secrets out of logs, task output, PR bodies and audit details."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SECRET_KEYS = re.compile(r"(pass(word)?|secret|token|api[_-]?key|private[_-]?key|credential"
                          r"|authorization|cookie)", re.IGNORECASE)
# (pattern, whether group 1 is a prefix to keep)
_PATTERNS: list[tuple[re.Pattern[str], bool]] = [
    # key=value / key: value pairs whose key looks secret
    (re.compile(r"(?i)(\b[\w.-]*(?:password|passwd|secret|token|api[_-]?key)[\w.-]*\s*[=:]\s*)"
                r"(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"), True),
    # "password": "..." in JSON (the key is quoted, so the pattern above does not see it)
    (re.compile(r'(?i)("[\w.-]*(?:password|passwd|secret|token|api[_-]?key)[\w.-]*"\s*:\s*)'
                r'("(?:[^"\\]|\\.)*")'), True),
    (re.compile(r"(?i)(\b(?:bearer|basic)\s+)([A-Za-z0-9._~+/=-]{8,})"), True),
    # signed JWTs (ID and access tokens) wherever they appear
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), False),
    # the portal's own cookies in a logged header
    (re.compile(r"(\bcaas_(?:session|prelogin|oidc)=)([^\s;]+)"), True),
    (re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{10,}"), False),
    (re.compile(r"\bcaas_[A-Za-z0-9_-]{20,}"), False),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), False),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
     False),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)([^@\s]+)(?=@)"), True),
]
MASK = "***"


def redact(text: str) -> str:
    """Mask anything that looks like a credential in free text."""
    for pattern, keeps_prefix in _PATTERNS:
        if keeps_prefix:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        else:
            text = pattern.sub(MASK, text)
    return text


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """Mask values under secret-looking keys, recursively; redact strings elsewhere."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if _SECRET_KEYS.search(str(key)):
            out[key] = MASK
        else:
            out[key] = _redact_value(value)
    return out


def _redact_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value
