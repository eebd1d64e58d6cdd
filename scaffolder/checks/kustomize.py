"""Build kustomize overlays with the real ``kubectl kustomize``.

Public API:

- ``build(path, *, timeout=60.0, kubectl="kubectl") -> str`` — the rendered YAML of the
  kustomization in ``path``; ``KustomizeError`` (with kustomize's own message) when it does not
  build, when ``kubectl`` is missing, or when it runs past ``timeout`` seconds.

Remote bases are refused by kustomize's default load restrictor (``LoadRestrictionsRootOnly``),
which keeps a change set from pulling files from outside the repository.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from portal.errors import CaasError


class KustomizeError(CaasError):
    """The overlay does not build; ``message`` holds kustomize's explanation."""

    status = 422
    code = "kustomize_failed"


def build(path: str | os.PathLike[str], *, timeout: float = 60.0, kubectl: str = "kubectl") -> str:
    """Run ``kubectl kustomize path`` and return its output."""
    folder = Path(path)
    if not folder.is_dir():
        raise KustomizeError(f"kustomize: {folder} is not a directory")
    try:
        result = subprocess.run(
            [kubectl, "kustomize", str(folder)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            # No network credentials or plugins leak in from the caller's environment.
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(folder)},
        )
    except FileNotFoundError as exc:
        raise KustomizeError(f"kustomize: {kubectl} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise KustomizeError(f"kustomize: {folder} took longer than {timeout:g}s") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        message = detail[-1] if detail else f"exit status {result.returncode}"
        raise KustomizeError(f"kustomize build of {folder} failed: {message}")
    return result.stdout
