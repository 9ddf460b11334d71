"""Settings: every knob is an environment variable, listed with its default in the README."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///./var/dutyline.db", validation_alias=_env("DATABASE_URL"))
    # None means: generate one on first run and keep it in the database (shared by all replicas).
    secret_key: str | None = Field(None, validation_alias=_env("DUTYLINE_SECRET_KEY"))
    timezone: str = Field("Asia/Shanghai", validation_alias=_env("DUTYLINE_TIMEZONE"))
    public_base_url: str = Field("http://127.0.0.1:8000", validation_alias=_env("PUBLIC_BASE_URL"))
    token_ttl_seconds: int = Field(1800, ge=60, validation_alias=_env("DUTYLINE_TOKEN_TTL_SECONDS"))
    max_body_bytes: int = Field(1_000_000, ge=1024, validation_alias=_env("DUTYLINE_MAX_BODY_BYTES"))
    login_max_failures: int = Field(5, ge=1, validation_alias=_env("DUTYLINE_LOGIN_MAX_FAILURES"))
    login_window_seconds: int = Field(900, ge=1, validation_alias=_env("DUTYLINE_LOGIN_WINDOW_SECONDS"))
    log_level: str = Field("INFO", validation_alias=_env("DUTYLINE_LOG_LEVEL"))
    log_format: str = Field("json", pattern="^(json|text)$", validation_alias=_env("DUTYLINE_LOG_FORMAT"))
    db_pool_size: int = Field(10, ge=1, validation_alias=_env("DUTYLINE_DB_POOL_SIZE"))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@lru_cache
def get_settings() -> Settings:
    return Settings()
