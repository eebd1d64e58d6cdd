"""CAAS_SECRETS_DIR: settings from files (a mounted Kubernetes Secret); the environment wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.cli import load_settings


def test_settings_read_from_secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "CAAS_DATABASE_URL").write_text("postgresql+psycopg://caas:pw@db/caas")
    (secrets / "CAAS_SECRET_KEY").write_text("from-a-file-0123456789")
    monkeypatch.setenv("CAAS_SECRETS_DIR", str(secrets))
    monkeypatch.delenv("CAAS_DATABASE_URL", raising=False)
    monkeypatch.delenv("CAAS_SECRET_KEY", raising=False)
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://caas:pw@db/caas"
    assert settings.secret_key.get_secret_value() == "from-a-file-0123456789"
    monkeypatch.setenv("CAAS_DATABASE_URL", "sqlite:///from-env.db")
    assert load_settings().database_url == "sqlite:///from-env.db"
