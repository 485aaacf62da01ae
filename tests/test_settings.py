"""Settings: SIYU_ environment, .env file, defaults, and refusal of placeholder secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from siyu.core.settings import Settings


def test_defaults_to_an_sqlite_file_under_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("SIYU_DATABASE_URL", "SIYU_ENVIRONMENT", "SIYU_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    s = Settings()
    assert s.database_url == "sqlite:///var/siyu.db" and s.environment == "development"


def test_reads_prefixed_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("SIYU_PORT=9100\nSIYU_TIMEZONE=Asia/Urumqi\n", encoding="utf-8")
    monkeypatch.setenv("SIYU_PORT", "9200")
    s = Settings()
    assert s.port == 9200  # the environment wins over .env
    assert s.timezone == "Asia/Urumqi"


@pytest.mark.parametrize("secret", ["dev-secret-change-me", "changeme", "", "short-but-real"])
def test_placeholder_or_short_secrets_are_refused_in_production(secret: str) -> None:
    with pytest.raises(ValidationError, match="SIYU_SECRET_KEY"):
        Settings(environment="production", secret_key=secret)


def test_a_real_secret_is_accepted_in_production() -> None:
    assert Settings(environment="production", secret_key="k" * 48).environment == "production"


def test_the_example_env_file_lists_real_settings() -> None:
    example = Path(__file__).resolve().parents[1] / ".env.example"
    names = {
        line.split("=")[0].removeprefix("SIYU_").lower()
        for line in example.read_text(encoding="utf-8").splitlines()
        if line.startswith("SIYU_")
    }
    assert names <= set(Settings.model_fields)
