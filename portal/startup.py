"""Start-up checks: every bad configuration becomes one clear ``ConfigError``."""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from pathlib import Path

from sqlalchemy import Engine

from portal import db
from portal.errors import ConfigError
from portal.settings import Settings


def check_data_dir(settings: Settings) -> None:
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"data directory {path} is not writable: {exc.strerror or exc}",
                          field="CAAS_DATA_DIR") from exc


def check_port(host: str, port: int) -> None:
    """Refuse early, with a clear line, when the port is taken (uvicorn would log a trace)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or "")
            raise ConfigError(f"cannot listen on {host}:{port}: {reason}",
                              field="CAAS_PORT") from exc


def prepare(settings: Settings, engine: Engine) -> None:
    """Everything the app needs before serving: data directory, database, schema."""
    check_data_dir(settings)
    db.check_connection(engine)
    if settings.migrate_on_start:
        db.upgrade(engine)
    settings.resolved_secret_key()
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")  # terraform: never phone home


def server_workers(configured: int) -> int:
    """How many server processes ``caas serve`` runs: ``configured``, or when 0 one per CPU this
    process may use: the cgroup v2 CPU limit (``cpu.max``: quota/period, rounded up) when one
    is set — a container sees every CPU of its node otherwise — else the CPU affinity."""
    if configured:
        return configured
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return max(1, cpus)
    if quota != "max":
        cpus = min(cpus, -(-int(quota) // int(period)))
    return max(1, cpus)
