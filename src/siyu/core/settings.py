"""The one typed settings object. Values come from ``SIYU_*`` environment variables or ``.env``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev-secret-change-me"})
DEFAULT_SQLITE_PATH = Path("var") / "siyu.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIYU_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(default=f"sqlite:///{DEFAULT_SQLITE_PATH}")
    secret_key: str = "dev-secret-change-me"  # noqa: S105 - refused outside development
    host: str = "127.0.0.1"
    port: int = 8000
    # Workers run inside `siyu serve` unless set to 0; `siyu worker` adds more processes.
    workers_in_process: int = Field(default=1, ge=0, le=32)
    job_lease_seconds: int = Field(default=60, ge=1)
    job_poll_seconds: float = Field(default=1.0, gt=0)
    # How long a dispatcher holds the messages it claimed: one that dies lets them go after this.
    dispatch_lease_seconds: float = Field(default=120.0, gt=0)
    session_ttl_hours: int = Field(default=12, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    cookie_secure: bool = False
    web_dist: Path | None = None
    # Extra modules whose @task handlers workers should load (comma separated).
    task_modules: str = ""
    timezone: str = "Asia/Shanghai"
    # Where people reach this installation: unsubscribe links and tracked links are built on it.
    public_url: str = "http://127.0.0.1:8000"
    # Uploaded files (imports) are kept here until processed.
    data_dir: Path = Path("var")

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment != "development" and self.secret_key in PLACEHOLDER_SECRETS:
            raise ValueError(
                "SIYU_SECRET_KEY is a placeholder; set a long random value "
                "(python -c 'import secrets; print(secrets.token_urlsafe(48))') "
                f"before running with SIYU_ENVIRONMENT={self.environment}"
            )
        if self.environment != "development" and len(self.secret_key) < 32:
            raise ValueError("SIYU_SECRET_KEY must be at least 32 characters outside development")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
