"""Build kustomize overlays with the real ``kubectl kustomize``.

Public API:

- ``build(path, *, timeout=60.0, kubectl="kubectl") -> str`` — the rendered YAML of the
  kustomization in ``path``; ``KustomizeError`` (with kustomize's own message) when it does not
  build, when ``kubectl`` is missing, or when it runs past ``timeout`` seconds.

Remote bases are refused by kustomize's default load restrictor (``LoadRestrictionsRootOnly``),
which keeps a change set from pulling files from outside the repository.

A build goes through a warm kubectl when one is waiting (``scaffolder.checks.kustomize_pool``,
setting ``CAAS_KUSTOMIZE_WARM``): the same output, ~75 ms of kubectl's start-up saved. A build
that fails there is run again cold, so the error is kustomize's own message about ``path``
(the warm one wraps it in the pool's wrapper kustomization).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from portal.errors import CaasError
from scaffolder.checks import kustomize_pool


class KustomizeError(CaasError):
    """The overlay does not build; ``message`` holds kustomize's explanation."""

    status = 422
    code = "kustomize_failed"


def build(path: str | os.PathLike[str], *, timeout: float = 60.0, kubectl: str = "kubectl") -> str:
    """Run ``kubectl kustomize path`` (warm when a spare waits) and return its output."""
    folder = Path(path)
    if not folder.is_dir():
        raise KustomizeError(f"kustomize: {folder} is not a directory")
    try:
        warm = kustomize_pool.run(kubectl, folder, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise KustomizeError(f"kustomize: {folder} took longer than {timeout:g}s") from exc
    if warm is not None and warm[0] == 0:
        return warm[1]
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
