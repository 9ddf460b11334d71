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
    # A read replica for reports and exports (问效问责); None: they read the main database.
    database_read_url: str | None = Field(None, validation_alias=_env("DATABASE_READ_URL"), repr=False)
    # None means: generate one on first run and keep it in the database (shared by all replicas).
    secret_key: str | None = Field(None, validation_alias=_env("DUTYLINE_SECRET_KEY"), repr=False)
    timezone: str = Field("Asia/Shanghai", validation_alias=_env("DUTYLINE_TIMEZONE"))
    public_base_url: str = Field("http://127.0.0.1:8000", validation_alias=_env("PUBLIC_BASE_URL"))
    token_ttl_seconds: int = Field(1800, ge=60, validation_alias=_env("DUTYLINE_TOKEN_TTL_SECONDS"))
    max_body_bytes: int = Field(1_000_000, ge=1024, validation_alias=_env("DUTYLINE_MAX_BODY_BYTES"))
    login_max_failures: int = Field(5, ge=1, validation_alias=_env("DUTYLINE_LOGIN_MAX_FAILURES"))
    login_window_seconds: int = Field(900, ge=1, validation_alias=_env("DUTYLINE_LOGIN_WINDOW_SECONDS"))
    log_level: str = Field("INFO", validation_alias=_env("DUTYLINE_LOG_LEVEL"))
    log_format: str = Field("json", pattern="^(json|text)$", validation_alias=_env("DUTYLINE_LOG_FORMAT"))
    db_pool_size: int = Field(10, ge=1, validation_alias=_env("DUTYLINE_DB_POOL_SIZE"))
    # When set, GET /metrics needs `Authorization: Bearer <token>` (Prometheus: `authorization: {credentials: …}`).
    metrics_token: str | None = Field(None, min_length=16, validation_alias=_env("DUTYLINE_METRICS_TOKEN"), repr=False)

    # Notifications (issue 4): Twilio, the built-in simulator, the outbox dispatcher.
    twilio_account_sid: str | None = Field(None, validation_alias=_env("TWILIO_ACCOUNT_SID"))
    # Comma-separated: every token is accepted on callbacks (rotation); the first one signs our API calls.
    twilio_auth_token: str | None = Field(None, validation_alias=_env("TWILIO_AUTH_TOKEN"), repr=False)
    twilio_from_number: str | None = Field(None, validation_alias=_env("TWILIO_FROM_NUMBER"))
    twilio_api_base_url: str | None = Field(None, validation_alias=_env("TWILIO_API_BASE_URL"))
    twilio_timeout_seconds: float = Field(10.0, gt=0, validation_alias=_env("TWILIO_TIMEOUT_SECONDS"))
    # Off unless asked for (`make run` asks): when on, /sim stands in for Twilio and shows every page sent.
    simulator: str = Field("off", pattern="^(on|off)$", validation_alias=_env("DUTYLINE_SIMULATOR"))
    dispatcher: bool = Field(True, validation_alias=_env("DUTYLINE_DISPATCHER"))
    dispatch_concurrency: int = Field(16, ge=1, le=512, validation_alias=_env("DUTYLINE_DISPATCH_CONCURRENCY"))
    dispatch_max_attempts: int = Field(8, ge=1, validation_alias=_env("DUTYLINE_DISPATCH_MAX_ATTEMPTS"))
    dispatch_poll_seconds: float = Field(2.0, gt=0, validation_alias=_env("DUTYLINE_DISPATCH_POLL_SECONDS"))
    dispatch_lease_seconds: float = Field(120.0, ge=5, validation_alias=_env("DUTYLINE_DISPATCH_LEASE_SECONDS"))
    dispatch_backoff_seconds: float = Field(10.0, gt=0, validation_alias=_env("DUTYLINE_DISPATCH_BACKOFF_SECONDS"))
    dispatch_backoff_max_seconds: float = Field(
        900.0, gt=0, validation_alias=_env("DUTYLINE_DISPATCH_BACKOFF_MAX_SECONDS")
    )
    sms_rate_per_second: float = Field(0.0, ge=0, validation_alias=_env("DUTYLINE_SMS_RATE_PER_SECOND"))
    voice_rate_per_second: float = Field(0.0, ge=0, validation_alias=_env("DUTYLINE_VOICE_RATE_PER_SECOND"))
    webhook_rate_per_second: float = Field(0.0, ge=0, validation_alias=_env("DUTYLINE_WEBHOOK_RATE_PER_SECOND"))
    webhook_timeout_seconds: float = Field(10.0, gt=0, validation_alias=_env("DUTYLINE_WEBHOOK_TIMEOUT_SECONDS"))
    # SMS per number per local day; the last one is a digest, then pages needing an ack go by voice.
    sms_daily_budget: int = Field(8, ge=1, le=1000, validation_alias=_env("DUTYLINE_SMS_DAILY_BUDGET"))
    # Webhook (and robot) targets on loopback, private, link-local … addresses: refused unless this is set.
    webhook_allow_private: bool = Field(False, validation_alias=_env("DUTYLINE_WEBHOOK_ALLOW_PRIVATE"))

    # Delivery in mainland China (issue 14, PRODUCT.md §8): routes by number prefix, the providers' own variables.
    sms_routes: str = Field("+86=aliyun,tencent;*=twilio", validation_alias=_env("DUTYLINE_SMS_ROUTES"))
    voice_routes: str = Field("+86=aliyun;*=twilio", validation_alias=_env("DUTYLINE_VOICE_ROUTES"))
    alibaba_access_key_id: str | None = Field(None, validation_alias=_env("ALIBABA_CLOUD_ACCESS_KEY_ID"))
    alibaba_access_key_secret: str | None = Field(
        None, validation_alias=_env("ALIBABA_CLOUD_ACCESS_KEY_SECRET"), repr=False
    )
    aliyun_sms_sign_name: str | None = Field(None, validation_alias=_env("ALIYUN_SMS_SIGN_NAME"))
    aliyun_voice_show_number: str | None = Field(None, validation_alias=_env("ALIYUN_VOICE_SHOW_NUMBER"))
    aliyun_sms_endpoint: str | None = Field(None, validation_alias=_env("ALIYUN_SMS_ENDPOINT"))
    aliyun_voice_endpoint: str | None = Field(None, validation_alias=_env("ALIYUN_VOICE_ENDPOINT"))
    tencent_secret_id: str | None = Field(None, validation_alias=_env("TENCENTCLOUD_SECRET_ID"))
    tencent_secret_key: str | None = Field(None, validation_alias=_env("TENCENTCLOUD_SECRET_KEY"), repr=False)
    tencent_sms_sdk_app_id: str | None = Field(None, validation_alias=_env("TENCENT_SMS_SDK_APP_ID"))
    tencent_sms_sign_name: str | None = Field(None, validation_alias=_env("TENCENT_SMS_SIGN_NAME"))
    tencent_sms_endpoint: str | None = Field(None, validation_alias=_env("TENCENT_SMS_ENDPOINT"))
    # Pull receipts with PullSmsSendStatus (it must be enabled in Tencent's console); push is the default.
    tencent_sms_pull: bool = Field(False, validation_alias=_env("TENCENT_SMS_PULL_STATUS"))
    provider_timeout_seconds: float = Field(10.0, gt=0, validation_alias=_env("DUTYLINE_PROVIDER_TIMEOUT_SECONDS"))
    # The secret in the receipt and reply URLs given to Alibaba Cloud and Tencent Cloud (their pushes are not
    # signed). None: generated on first run and kept in the database.
    callback_token: str | None = Field(None, validation_alias=_env("DUTYLINE_CALLBACK_TOKEN"), repr=False)

    # Escalation and roster alerts (issues 3 and 5).
    scheduler: bool = Field(True, validation_alias=_env("DUTYLINE_SCHEDULER"))
    tick_seconds: float = Field(1.0, gt=0, le=60, validation_alias=_env("DUTYLINE_TICK_SECONDS"))
    gap_alert_time: str = Field(
        "07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", validation_alias=_env("DUTYLINE_GAP_ALERT_TIME")
    )
    check_in_grace_minutes: int = Field(15, ge=1, le=720, validation_alias=_env("DUTYLINE_CHECK_IN_GRACE_MINUTES"))

    # Hazard register (issue 16).
    data_dir: str = Field("./var", validation_alias=_env("DUTYLINE_DATA_DIR"))
    hazard_categories: str | None = Field(None, validation_alias=_env("DUTYLINE_HAZARD_CATEGORIES"))
    hazard_escalate_days: int = Field(3, ge=1, le=60, validation_alias=_env("DUTYLINE_HAZARD_ESCALATE_DAYS"))
    hazard_photo_location: str = Field(
        "strip", pattern="^(strip|keep)$", validation_alias=_env("DUTYLINE_HAZARD_PHOTO_LOCATION")
    )

    @field_validator("hazard_categories")
    @classmethod
    def _categories(cls, value: str | None) -> str | None:
        if value:
            from app.hazards import categories

            categories.parse(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("sms_routes", "voice_routes")
    @classmethod
    def _routes(cls, value: str) -> str:
        from app.notify.providers.routing import parse_routes  # a pure parser; no settings cycle

        parse_routes(value)
        return value

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def twilio_auth_tokens(self) -> list[str]:
        return [t.strip() for t in (self.twilio_auth_token or "").split(",") if t.strip()]

    @property
    def simulator_enabled(self) -> bool:
        """The built-in simulator: only when DUTYLINE_SIMULATOR=on."""
        return self.simulator == "on"


@lru_cache
def get_settings() -> Settings:
    return Settings()
