"""The `caas` command: bad configuration is one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CAAS = [sys.executable, "-m", "portal.cli"]


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CAAS_")}
    full = {**inherited, "CAAS_DATA_DIR": str(tmp_path / ".caas"), "CAAS_LOG_FORMAT": "text",
            **env}
    return subprocess.run([*CAAS, *args], env=full, capture_output=True, text=True,
                          timeout=60, check=False)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("caas: error: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_malformed_database_url(tmp_path: Path) -> None:
    line = one_line_error(run(tmp_path, "db", "upgrade", CAAS_DATABASE_URL="::not a url::"))
    assert "CAAS_DATABASE_URL is malformed" in line


def test_unsupported_database_scheme(tmp_path: Path) -> None:
    line = one_line_error(run(tmp_path, "db", "upgrade", CAAS_DATABASE_URL="mysql://x@y/z"))
    assert "must be sqlite:// or postgresql://" in line


def test_unreachable_postgresql(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_line_error(run(tmp_path, "db", "upgrade",
                              CAAS_DATABASE_URL=f"postgresql://caas:pw@127.0.0.1:{port}/caas"))
    assert "database unreachable" in line
    assert ":pw@" not in line  # the password is never printed


def test_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    line = one_line_error(run(tmp_path, "db", "upgrade", CAAS_DATA_DIR=str(blocker / "data")))
    assert "is not writable" in line


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(run(tmp_path, "serve", "--port", str(port)))
    assert f"cannot listen on 127.0.0.1:{port}: already in use" in line


def test_invalid_setting_value(tmp_path: Path) -> None:
    line = one_line_error(run(tmp_path, "db", "upgrade", CAAS_PORT="eighty"))
    assert "CAAS_PORT" in line


@pytest.mark.parametrize(("args", "says"), [
    (["user", "add", "Bad Name"], "must be"),
    (["team", "add", "Bad_Team"], "DNS-1123 label"),
    # team-pay-admins is team pay's reviewers group: the CLI refuses what the forms refuse
    (["team", "add", "pay-admins"], "collide with the groups of team 'pay'"),
    (["team", "add", "pay-viewers"], "collide with the groups of team 'pay'"),
    (["team", "add", "a" * 31], "at most 30 characters"),
])
def test_bad_names_are_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    line = one_line_error(run(tmp_path, *args))
    assert says in line


def test_usage_error_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(run(tmp_path, "team", "add", "--no-such-option"))
    assert "No such option" in line


def test_user_team_token_round_trip(tmp_path: Path) -> None:
    assert run(tmp_path, "user", "add", "alice").returncode == 0
    assert run(tmp_path, "team", "add", "payments", "--member", "alice:reviewer").returncode == 0
    token = run(tmp_path, "token", "create", "alice", "--name", "ci")
    assert token.returncode == 0
    assert token.stdout.strip().startswith("caas_")
    assert "caas: error: user 'alice' already exists" in run(tmp_path, "user", "add",
                                                              "alice").stderr


def test_check_codeowners_names_who_cannot_review(tmp_path: Path) -> None:
    from tests.fakes.github import PREFIX, served

    with served("acme/gitops", {"CODEOWNERS": b"* @acme/platform-admins @erin\n"
                                              b"/tenants/ @carol @acme/team-shop\n"}
                ) as (fake, repo):
        url = fake.base_url
        repo.collaborators, repo.teams = {"erin"}, {"team-shop"}
        github = {"CAAS_FORGE": "github", "CAAS_GITHUB_URL": url + PREFIX,
                  "CAAS_GITHUB_REPO": "acme/gitops", "CAAS_GITHUB_TOKEN": "ghs_x",
                  "CAAS_GITHUB_WRITE_INTERVAL_S": "0"}
        proc = run(tmp_path, "check-codeowners", **github)
        assert proc.returncode == 1, proc.stderr
        assert proc.stdout.split() == ["cannot", "review:", "@carol", "cannot", "review:",
                                       "@acme/platform-admins"]
        repo.collaborators.add("carol")
        repo.teams.add("platform-admins")
        proc = run(tmp_path, "check-codeowners", **github)
        assert proc.returncode == 0 and "every CODEOWNERS owner" in proc.stdout
    proc = run(tmp_path, "check-codeowners")
    assert proc.returncode == 0 and "local forge" in proc.stdout


def test_logs_go_to_stderr_and_user_is_documented(tmp_path: Path) -> None:
    """JSON log lines at INFO never mix into a command's output; --user says whom the CLI
    acts as without it."""
    made = run(tmp_path, "user", "add", "bob", CAAS_LOG_FORMAT="json", CAAS_LOG_LEVEL="DEBUG")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() and '"level"' not in made.stdout
    assert '"level"' in made.stderr  # the migrations' log lines went to stderr
    helped = run(tmp_path, "scaffold", "--help")
    assert "default: admin, the platform-admin" in " ".join(helped.stdout.split())
