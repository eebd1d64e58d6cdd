"""The README's production path, run as written: its ``sh`` blocks in one bash session (the
``export`` lines replaced by this test's database, data directory and URL), on the local forge,
up to the first tenant merged and applied. Both databases; real ``caas`` processes, real
terraform (the environments' local units)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devtools.ports import free_port
from tests.conftest import REPO_ROOT

SECTION = "## Production: from an empty machine to the first tenant"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
EXPORT = re.compile(r"^export (CAAS_[A-Z_]+)=")

pytestmark = [pytest.mark.terraform, pytest.mark.slow]


def production_blocks() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return BLOCK.findall(text[start:end if end != -1 else len(text)])


def test_the_production_section_is_a_numbered_path_of_runnable_blocks() -> None:
    blocks = production_blocks()
    assert len(blocks) == 6
    script = "\n".join(blocks)
    for command in ("caas db upgrade", "caas init", "caas serve", "caas worker",
                    "caas create-environment", "caas scaffold team", "caas scaffold tenant"):
        assert command in script


def test_following_the_readme_reaches_a_tenant_applied(tmp_path: Path, database_url: str
                                                       ) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ours = {"CAAS_DATABASE_URL": database_url, "CAAS_DATA_DIR": str(tmp_path / "caas"),
            "CAAS_BASE_URL": base}
    lines: list[str] = []
    for block in production_blocks():
        for line in block.splitlines():
            found = EXPORT.match(line)
            if found:  # a documented variable: this test supplies its own value
                assert found.group(1) in ours, line
                continue
            lines.append(line)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAAS_")}
    env.update(ours, CAAS_PORT=str(port), CAAS_LOG_FORMAT="text", CAAS_LOG_LEVEL="WARNING",
               CAAS_WORKER_POLL_INTERVAL_S="0.2", CAAS_MAIN_POLL_INTERVAL_S="1",
               COLUMNS="200",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=str(REPO_ROOT))
    script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
    log = tmp_path / "session.log"
    with log.open("w") as out:
        # Its own session: the background `caas serve` and `caas worker` are stopped by the
        # session id at the end, nothing else.
        proc = subprocess.Popen(["bash", "-c", script], cwd=REPO_ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            assert proc.wait(timeout=600) == 0, log.read_text()
            text = log.read_text()
            assert "password" in text and "next steps" in text  # caas init's report
            token = subprocess.run(["caas", "token", "create", "admin", "--name", "test"],
                                   cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                                   check=True).stdout.strip()
            headers = {"Authorization": f"Bearer {token}"}
            change = httpx.get(f"{base}/api/changes/3", headers=headers).json()
            assert change["status"] == "merged", change
            deadline = time.monotonic() + 480
            states: dict[str, str] = {}
            while time.monotonic() < deadline:
                merges = httpx.get(f"{base}/api/reconciler/merges", headers=headers).json()
                states = {str(m.get("change_number")): m["state"] for m in merges}
                if states.get("3") in ("applied", "committed", "failed"):
                    break
                time.sleep(2)
            if states.get("3") not in ("applied", "committed"):
                jobs = httpx.get(f"{base}/api/reconciler/jobs", headers=headers).json()
                pytest.fail(f"merges {states}; jobs "
                            f"{[(j['unit'], j['state'], j['message']) for j in jobs]}; "
                            f"log: {log.read_text()[-3000:]}")
        finally:
            proc.wait(timeout=60)
            with contextlib.suppress(ProcessLookupError):  # serve and worker finish and stop
                os.killpg(proc.pid, signal.SIGTERM)
