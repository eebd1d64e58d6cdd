"""Path checks for files written into the GitOps repository.

A path is safe when git stores it exactly where the caller meant: relative, POSIX, no empty,
``.``, ``..`` or ``.git`` component, no control characters (git's own rules for tree entries,
``verify_path`` in git's ``read-cache.c``, plus control characters that would corrupt listings).
"""

from __future__ import annotations

from portal.errors import BadRequest


class UnsafePath(BadRequest):
    """A path that git would store somewhere else than the caller meant; nothing was written."""

    code = "unsafe_path"


def check_path(path: str) -> None:
    """Raise ``UnsafePath`` unless ``path`` is a safe relative repository path."""
    if not is_safe(path):
        raise UnsafePath(f"refusing unsafe path {path!r}", field="path", rule="safe-path")


def is_safe(path: str) -> bool:
    """True when ``path`` is a safe relative repository path (see the module docstring)."""
    parts = path.split("/")
    return not (not path or path.startswith("/")
                or any(p in ("", ".", "..", ".git") for p in parts)
                or any(ord(c) < 32 or ord(c) == 127 for c in path))
