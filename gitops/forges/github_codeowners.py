"""CODEOWNERS matching for review requests on GitHub.

Public contract:

- ``codeowners_for(codeowners_text, paths) -> (users, teams)``: the owners of ``paths``, the
  last matching line winning per path as on GitHub; teams as ``org/team``.
- ``split_reviewers(names) -> (users, teams)``: ``@user``/``user`` → users, ``@org/team`` /
  ``org/team`` → teams, emails dropped (review requests take logins only).
- ``CODEOWNERS_PATHS``: where GitHub looks for the file, in its order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CODEOWNERS_PATHS = ("CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS")


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """gitignore-style CODEOWNERS pattern → regex over repository paths.

    A leading slash or an inner slash anchors at the root; otherwise the pattern matches at any
    depth. A match on a directory owns everything below it; a trailing slash matches only
    directories.
    """
    anchored = pattern.startswith("/") or "/" in pattern.strip("/")
    dir_only = pattern.endswith("/")
    body = pattern.strip("/")
    out, i = [], 0
    while i < len(body):
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("/**", i) and i + 3 == len(body):
            out.append("/.*")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    suffix = "/.*" if dir_only else "(?:/.*)?"
    return re.compile(f"{prefix}{''.join(out)}{suffix}")


def codeowners_for(text: str, paths: Iterable[str]) -> tuple[list[str], list[str]]:
    """Owners of ``paths`` per CODEOWNERS ``text``: (user logins, team slugs as ``org/team``).

    As on GitHub, the last matching line wins for each path; email owners are ignored because
    review requests take logins only.
    """
    rules: list[tuple[re.Pattern[str], list[str]]] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        pattern, *line_owners = line.split()
        rules.append((_pattern_regex(pattern), line_owners))
    owners: list[str] = []
    for path in paths:
        for regex, rule_owners in reversed(rules):
            if regex.fullmatch(path):
                owners += [o for o in rule_owners if o not in owners]
                break
    return split_reviewers(owners)


def split_reviewers(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """``@user``/``user`` → users; ``@org/team``/``org/team`` → teams; emails dropped."""
    users: list[str] = []
    teams: list[str] = []
    for name in names:
        clean = name.strip().lstrip("@")
        if not clean or "@" in clean:
            continue
        target = teams if "/" in clean else users
        if clean not in target:
            target.append(clean)
    return users, teams
