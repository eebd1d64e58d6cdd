"""A forge at one commit, as a cache key: what a commit holds never changes."""

from __future__ import annotations

from dataclasses import dataclass, field

from gitops.forges.base import Forge


@dataclass(frozen=True)
class At:
    """A forge at one commit. Equal — and so cached — by (repository location, commit): the
    content of a commit never changes, whichever forge object reads it."""

    location: str
    sha: str
    forge: Forge = field(compare=False, hash=False)


def at(forge: Forge, sha: str) -> At:
    return At(forge.location, sha, forge)
