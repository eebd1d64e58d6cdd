"""Setting changes in the audit log.

Settings come from the environment, so a change happens between two starts of the portal. At
start the effective settings are compared with the snapshot kept in the last
``settings.change`` event; when they differ, one event names every changed setting (old and
new values; secrets only as "changed", never their value or a plain hash).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pydantic import SecretStr
from sqlmodel import Session, col, select

from portal.auth import audit
from portal.auth.models import AuditEvent
from portal.redact import redact, redact_mapping
from portal.settings import Settings

ACTION = "settings.change"
MARK = "fingerprint-"  # not `secret:`, which the redactor would mask (and so never compare)


def snapshot(settings: Settings) -> list[list[str]]:
    """``[[name, value], ...]``; secret values as a keyed fingerprint (so a change shows)."""
    key = settings.resolved_secret_key().encode()
    pairs: list[list[str]] = []
    for name in sorted(type(settings).model_fields):
        value: Any = getattr(settings, name)
        if isinstance(value, SecretStr):
            digest = hmac.new(key, value.get_secret_value().encode(), hashlib.sha256)
            shown = f"{MARK}{digest.hexdigest()[:16]}"
        elif value is None:
            shown = ""
        else:
            shown = value if isinstance(value, str) else json.dumps(value, default=str)
            if redact(shown) != shown:  # e.g. a password inside CAAS_DATABASE_URL
                digest = hmac.new(key, shown.encode(), hashlib.sha256)
                shown = f"{redact(shown)} {MARK}{digest.hexdigest()[:16]}"
        pairs.append([name, shown])
    return pairs


def record_settings_change(session: Session, settings: Settings, *, actor: str = "system"
                           ) -> AuditEvent | None:
    """Append a ``settings.change`` event when the settings differ from the last one recorded."""
    # Compare as stored: the audit log redacts what it keeps.
    current: list[list[str]] = redact_mapping({"s": snapshot(settings)})["s"]
    last = session.exec(select(AuditEvent).where(AuditEvent.action == ACTION)
                        .order_by(col(AuditEvent.id).desc()).limit(1)).first()
    before = dict(last.detail.get("snapshot", []) if last else [])
    after = dict(current)
    if last is not None and before == after:
        return None
    changed = sorted(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))
    # A list, not a mapping keyed by setting: the redactor masks values under secret-looking keys.
    shown: list[dict[str, str | None]] = [
        {"setting": k, "change": "changed"}
        if MARK in str(after.get(k, "")) + str(before.get(k, ""))
        else {"setting": k, "from": before.get(k), "to": after.get(k)} for k in changed]
    return audit.record(session, actor=actor, action=ACTION,
                        target="initial" if last is None else f"{len(changed)} settings",
                        detail={"changes": shown if last is not None else [],
                                "snapshot": current})
