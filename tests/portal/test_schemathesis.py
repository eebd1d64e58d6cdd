"""Schemathesis against the served portal: the OpenAPI document is true to the server.

The app runs in a real uvicorn on a loopback port (``tests.harness.served``); Schemathesis' own
runner (``st run``: examples, coverage, fuzzing and stateful phases, every default check) is
pointed at it once with a platform-admin token (on PostgreSQL) and once with a developer token
(on SQLite), with a fixed seed and a fixed number of examples per operation. The run must end
with 0 failures: no server error, no response outside its schema, no undocumented status,
content type or header, no wrong answer to an undeclared method.

Excluded: ``DELETE /api/auth/tokens/{token_id}`` (it would revoke the token the run uses).
Budget: about 2 minutes per token on 2 cores (``-m schemathesis``; see notes/20.md).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from portal.app import create_app
from portal.auth.models import Role
from portal.settings import Settings
from tests.conftest import UserFactory, bearer
from tests.harness.served import served
from tests.scaffolder.conftest import seed

pytestmark = [pytest.mark.schemathesis, pytest.mark.timeout(900)]

SEED = 20
MAX_EXAMPLES = 20
EXCLUDED_OPERATIONS = ["revoke_token_api_auth_tokens__token_id__delete"]  # self-revocation


@pytest.mark.parametrize(("db_backend", "who"), [("postgresql", "admin"),
                                                 ("sqlite", "developer")],
                         indirect=["db_backend"])
def test_schemathesis_finds_nothing(who: str, settings: Settings, engine: Engine,
                                    tmp_path: Path, make_user: UserFactory) -> None:
    seed(settings, tmp_path)
    make_user("admin", teams={"platform": Role.reviewer}, admin=True)
    make_user("developer", teams={"payments": Role.developer})
    token = bearer(engine, who)["Authorization"]
    configured = settings.model_copy(update={"github_webhook_secret": SecretStr("st-secret")})
    st = Path(sys.executable).parent / "st"
    report = tmp_path / "schemathesis.txt"
    with served(create_app(configured, engine=engine)) as url:
        command = [str(st), "run", f"{url}/api/openapi.json", "--header",
                   f"Authorization: {token}", "--seed", str(SEED), "--max-examples",
                   str(MAX_EXAMPLES), "--workers", "1", "--no-color",
                   *[arg for op in EXCLUDED_OPERATIONS for arg in ("--exclude-operation-id", op)]]
        # Rejections a schema cannot express, allowed per operation as `st explain ST202` says:
        # removing a unit that still has dependants is a 409 naming them; a request's answers
        # are validated against its template's own parameters (a 422 naming the answer: any
        # JSON value, NUL in text included, is schema-valid for the API's `answers` map).
        (tmp_path / "schemathesis.toml").write_text(
            '[[operations]]\ninclude-name = "POST /api/scaffolder/decommission"\n'
            'checks.positive_data_acceptance.expected-statuses = '
            '["2xx", "401", "403", "404", "409"]\n'
            + "".join(f'[[operations]]\ninclude-name = "POST /api/scaffolder/{op}"\n'
                      'checks.positive_data_acceptance.expected-statuses = '
                      '["2xx", "401", "403", "404", "409", "422"]\n'
                      for op in ("tasks", "dry-run")))
        with report.open("w") as out:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False,
                                  cwd=tmp_path, timeout=840)
    text = report.read_text(errors="replace")
    assert done.returncode == 0, text[-20000:]
    assert "Failures:" not in text and "Server error" not in text, text[-20000:]
    selected = re.search(r"Selected: (\d+)/", text)
    tested = re.search(r"Tested: (\d+)", text)
    assert selected and tested and tested.group(1) == selected.group(1), text[-5000:]
