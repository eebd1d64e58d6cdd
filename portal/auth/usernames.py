"""Portal user names from identity-provider user names, and back.

``portal_username(raw) -> str | None``: lower-cased; an e-mail address (Keycloak's "Email as
username" realms, or the ``email`` claim) becomes ``<local>_at_<domain>``, characters a portal
name cannot hold (``+``, ``'``...) become ``-``; ``None`` when the result is still not a portal
name (``portal.auth.service.USERNAME_RE``: at most 64 of ``a-z 0-9 . _ -``).
``keycloak_usernames(name) -> list[str]``: the Keycloak user names a portal name may stand for,
most likely first (``alice_at_example.org`` → ``alice_at_example.org``, ``alice@example.org``),
so the group sync finds people listed in ``team.yaml`` by their portal name in either kind of
realm. The mapping is not injective (``o+k@x`` and ``o-k@x`` both give ``o-k_at_x``): sign-in
keeps each account's ``sub`` and refuses a second account on one name.
"""

from __future__ import annotations

import re

from portal.auth.service import USERNAME_RE

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
EMAIL_MARK = "_at_"


def portal_username(raw: str) -> str | None:
    name = raw.strip().lower()
    if "@" in name:
        local, domain = name.rsplit("@", 1)
        name = _UNSAFE.sub("-", f"{local}{EMAIL_MARK}{domain}").strip("-._")
    return name if USERNAME_RE.match(name) else None


def keycloak_usernames(name: str) -> list[str]:
    found = [name]
    if EMAIL_MARK in name:
        local, domain = name.rsplit(EMAIL_MARK, 1)
        found.append(f"{local}@{domain}")
    return found
