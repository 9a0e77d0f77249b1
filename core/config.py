"""Settings: the single source of configuration (environment, .env, .streamlit/secrets.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
SECRETS_FILE = ROOT / ".streamlit" / "secrets.toml"
MIN_COOKIE_KEY_LENGTH = 32


class Settings(BaseSettings):
    """Every setting Leadflow reads, with its default; `.env.example` documents each one."""

    model_config = SettingsConfigDict(
        env_prefix="LEADFLOW_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        # A blank line of .env.example copied as is (`LEADFLOW_SMTP_CA_FILE=`) means "not set".
        env_ignore_empty=True,
    )

    # Database
    database_url: str = f"sqlite:///{DATA_DIR / 'leadflow.db'}"
    db_pool_size: int = 10
    db_max_overflow: int = 20
    db_echo: bool = False
    migrate_on_start: bool = True

    # Dashboard and login
    dev_mode: bool = False
    cookie_key: SecretStr | None = None
    cookie_name: str = "leadflow_auth"
    cookie_expiry_days: float = 1.0
    login_max_failures: int = 5
    login_lock_minutes: int = 15

    # Logging
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    # Models
    llm_provider: Literal["offline", "openai"] = "offline"
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "LEADFLOW_OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "LEADFLOW_OPENAI_BASE_URL")
    )
    llm_timeout_seconds: float = 30.0
    llm_max_retries: int = 3
    default_model: str = "gpt-4o-mini"
    price_table_path: Path = DATA_DIR / "model_prices.csv"

    # Send channels
    sms_provider: Literal["outbox", "twilio"] = "outbox"
    email_provider: Literal["outbox", "smtp"] = "outbox"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_status_callback_url: str | None = None
    twilio_base_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    # A PEM bundle of the CAs the SMTP server's certificate is checked against (a company relay
    # with its own CA); unset: the system's.
    smtp_ca_file: Path | None = None
    smtp_from: str | None = None
    smtp_timeout_seconds: float = 20.0
    # An https URL for one-click unsubscribe (RFC 8058), "{token}" replaced per recipient; when
    # unset, List-Unsubscribe carries a mailto: address only.
    email_unsubscribe_url: str | None = None

    # Research
    research_fetch_allow_private: bool = False
    research_fetch_timeout_seconds: float = 5.0
    research_fetch_max_bytes: int = 1_000_000

    # Lead import
    import_max_bytes: int = 50 * 1024 * 1024
    import_max_rows: int = 500_000
    import_max_uncompressed_bytes: int = 500 * 1024 * 1024
    import_max_compression_ratio: float = 100.0
    # Checked before the rows are parsed: a wider file is refused with a message.
    import_max_columns: int = 200
    # Longer cells are cut (with a warning on their row); notes and custom field values are cut
    # shorter, since they end up in every lead's record and, for notes, in the model's prompt.
    import_max_cell_chars: int = 10_000
    import_max_note_chars: int = 2_000
    import_max_custom_fields: int = 50
    import_max_custom_field_chars: int = 1_000

    # Job runner
    embedded_runner: bool = True
    worker_concurrency: int = 16
    lease_seconds: int = 120
    tick_seconds: float = 1.0
    claim_batch_size: int = 32
    # A lead whose worker died is retried at most this many claims before it ends `failed`.
    max_lead_attempts: int = 10

    # Rate limits shared by every worker of a database (0 means no limit). The model limits are
    # the provider account's (OpenAI: requests and tokens per minute per model); the send limits
    # are per channel (a Twilio long code sends about one SMS per second).
    llm_requests_per_minute: float = 500.0
    llm_tokens_per_minute: float = 200_000.0
    sms_sends_per_second: float = 1.0
    email_sends_per_second: float = 10.0

    @field_validator("database_url")
    @classmethod
    def _sqlite_parent_dir(cls, value: str) -> str:
        if value.startswith("sqlite:///") and not value.startswith("sqlite:///:memory:"):
            Path(value.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def require_cookie_key(self) -> str:
        """The cookie-signing key, refused when missing or short outside development mode."""
        key = self.cookie_key.get_secret_value() if self.cookie_key else ""
        if len(key) >= MIN_COOKIE_KEY_LENGTH:
            return key
        if self.dev_mode:
            return "leadflow-development-only-cookie-key-not-secret"
        raise ConfigError(
            "LEADFLOW_COOKIE_KEY is missing or shorter than "
            f"{MIN_COOKIE_KEY_LENGTH} characters. Set it in the environment or in "
            ".streamlit/secrets.toml (python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
            "or set LEADFLOW_DEV_MODE=true on a development machine."
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments win, then the environment, then .env, then Streamlit's secrets file.
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            _SecretsTomlSource(settings_cls),
        )


class _SecretsTomlSource(TomlConfigSettingsSource):
    """`.streamlit/secrets.toml`, read with the same LEADFLOW_-prefixed or bare lower-case keys."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, toml_file=SECRETS_FILE)

    def __call__(self) -> dict[str, object]:
        raw = super().__call__()
        out: dict[str, object] = {}
        for key, value in raw.items():
            name = key.lower().removeprefix("leadflow_")
            if name in {"openai_api_key", "openai_base_url"} or name in Settings.model_fields:
                out[name] = value
        return out


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message says which one and how to fix it."""
