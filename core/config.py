"""Settings: the single source of configuration (environment, .env, .streamlit/secrets.toml)."""

from __future__ import annotations

import functools
import re
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
# Used in development mode only; public, like every key that has been printed in a document.
DEV_COOKIE_KEY = "leadflow-development-only-cookie-key-not-secret"
# Keys that are public: the development key and the placeholder that
# .streamlit/secrets.toml.example once shipped as an active line. Compared without case or
# punctuation, so a copy with other separators or capitals is still refused.
PUBLIC_COOKIE_KEYS = (
    DEV_COOKIE_KEY,
    "replace-me-with-a-long-random-string-of-48-characters",
)
# A key must have at least this many different characters (a random 32-character key has ~14
# even from the 16 of hex).
MIN_COOKIE_KEY_DISTINCT_CHARACTERS = 10
# zxcvbn's guess estimate, as a base-10 exponent per character: a random key (hex, base64,
# token_urlsafe) scores 0.89 to 0.99, words, phrases and placeholders 0.7 to 0.82, repeats and
# sequences far less.
MIN_COOKIE_KEY_STRENGTH_PER_CHARACTER = 0.86
# Only this much of a longer key is scored (zxcvbn slows down with the length); a prefix that is
# random enough makes the whole key random enough.
COOKIE_KEY_SCORED_LENGTH = 128
MAKE_COOKIE_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


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
    # unset, the service's own LEADFLOW_PUBLIC_URL/api/unsubscribe/{token}, and with neither set,
    # List-Unsubscribe carries a mailto: address only.
    email_unsubscribe_url: str | None = None
    # Signs the one-click unsubscribe tokens; unset: a key derived from the cookie key. Changing it
    # makes the links in every email already sent stop working.
    unsubscribe_secret: SecretStr | None = None

    # Inbound mailbox (replies and bounces), read over IMAP by the job runner; unset host: not read.
    imap_host: str | None = None
    imap_port: int = 993
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    imap_folder: str = "INBOX"
    imap_ssl: bool = True
    # A PEM bundle of the CAs the IMAP server's certificate is checked against; unset: the system's.
    imap_ca_file: Path | None = None
    imap_timeout_seconds: float = 20.0
    imap_poll_seconds: float = Field(default=60.0, gt=0)
    # At most this many new messages are read per poll (the rest at the next one).
    imap_batch_size: int = Field(default=100, gt=0)

    # The HTTP service (api/): webhooks, unsubscribe links, health
    # The base URL providers call (https://leadflow.example.com): webhook URLs and the signatures
    # Twilio computes over them are built from it. Unset: no webhook can be verified.
    public_url: str | None = None
    # The port of the service when it runs beside the dashboard (`streamlit run app.py`) or alone.
    api_port: int = Field(default=8502, ge=1, le=65535)
    api_host: str = "0.0.0.0"
    # How long the service keeps an idle connection open. Longer than the idle timeout of anything
    # that reuses connections to it (load balancers and proxies: AWS ALB and nginx 60 s; HTTP
    # clients' pools: httpx 5 s), so that the client always closes an idle connection first:
    # a server that closes it first races the client's next request on it, which then fails
    # unanswered (uvicorn's own default, 5 s, lost webhooks that way; see api/server.py).
    api_keep_alive_seconds: int = Field(default=75, ge=1)
    # Serve the api from the dashboard's process too (off where `python -m api` runs it).
    embedded_api: bool = True
    # The REST API (/api/v1): access tokens' lifetime, unused refresh tokens' lifetime, and the
    # requests per minute per credential (counted in the database: every replica shares it; 0: none).
    api_token_minutes: float = Field(default=15.0, gt=0)
    api_refresh_token_days: float = Field(default=30.0, gt=0)
    api_rate_limit: int = Field(default=600, ge=0)

    # Observability: Prometheus metrics and OpenTelemetry traces
    # The port each `python -m jobs.worker` serves its metrics on (unset: none served; the HTTP
    # service serves its own at /api/metrics).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # The OTLP/HTTP collector's base URL (`/v1/traces` is appended); unset: no span is exported.
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("LEADFLOW_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )

    # Research
    research_fetch_allow_private: bool = False
    research_fetch_timeout_seconds: float = 5.0  # per connect, read or write
    research_fetch_deadline_seconds: float = 15.0  # the whole fetch, redirects included
    research_fetch_max_bytes: int = 1_000_000

    # Outgoing webhooks (core.webhooks): endpoints on private or loopback addresses are refused
    # unless this is set or in development mode; each POST ends within the timeout; a delivery
    # not answered 2xx is retried with backoff for the retry period, then marked failed.
    webhooks_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_hours: float = Field(default=24.0, gt=0)
    webhook_concurrency: int = Field(default=8, gt=0)
    # How long an old secret still signs beside a new one after a rotation (hours).
    webhook_secret_overlap_hours: float = Field(default=24.0, ge=0)

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
    # A campaign pauses after this many provider failures in a row, counted across workers and
    # reset by any success (0: never). Refused credentials and empty accounts pause at once.
    provider_failure_threshold: int = Field(default=10, ge=0)

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

    @field_validator("public_url")
    @classmethod
    def _public_base_url(cls, value: str | None) -> str | None:
        text = (value or "").strip().rstrip("/")
        if not text:
            return None
        if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", text):
            raise ValueError(
                f"LEADFLOW_PUBLIC_URL '{text}' must be the base URL providers call, such as "
                "https://leadflow.example.com (http or https, no query)"
            )
        return text

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def require_cookie_key(self) -> str:
        """The cookie-signing key, refused when missing, public or weak outside development mode.

        A weak key lets anyone forge a sign-in cookie offline, so the dashboard does not start
        with one. Development mode signs with a public key and the dashboard says so.
        """
        key = self.cookie_key.get_secret_value() if self.cookie_key else ""
        if self.dev_mode:
            return key if len(key) >= MIN_COOKIE_KEY_LENGTH else DEV_COOKIE_KEY
        problem = cookie_key_problem(key)
        if problem is None:
            return key
        raise ConfigError(
            f"LEADFLOW_COOKIE_KEY {problem}. Make a random one with {MAKE_COOKIE_KEY} and set it "
            "in the environment or in .streamlit/secrets.toml, or set LEADFLOW_DEV_MODE=true on a "
            "development machine."
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


def _letters_and_digits(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


@functools.lru_cache(maxsize=16)
def cookie_key_problem(key: str) -> str | None:
    """Why `key` may not sign sign-in cookies (ending a sentence that starts with the setting's
    name), or None for a key that is long, unknown and random enough."""
    if not key:
        return "is missing"
    if len(key) < MIN_COOKIE_KEY_LENGTH:
        return f"is shorter than {MIN_COOKIE_KEY_LENGTH} characters"
    if _letters_and_digits(key) in {_letters_and_digits(k) for k in PUBLIC_COOKIE_KEYS}:
        return "is a public example or development key"
    if len(set(key)) < MIN_COOKIE_KEY_DISTINCT_CHARACTERS:
        return (
            f"has fewer than {MIN_COOKIE_KEY_DISTINCT_CHARACTERS} different characters, "
            "so it is easy to guess"
        )
    from zxcvbn import zxcvbn  # imported here: only a key being checked needs its word lists

    scored = key[:COOKIE_KEY_SCORED_LENGTH]
    strength = zxcvbn(scored, max_length=len(scored))["guesses_log10"] / len(scored)
    if strength < MIN_COOKIE_KEY_STRENGTH_PER_CHARACTER:
        return "is made of words, repeats or sequences, so it is easy to guess; it must be random"
    return None


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
