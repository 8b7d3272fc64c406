"""Configuration read from the environment once per process (one Lambda container).

Development stages (`local`, `test`) have defaults for everything, so `make run` and the tests need
no setup. Any other stage has none: it refuses to start unless the environment names where the
database and the JWT secret come from, and it never falls back to a local address.

On AWS the template gives each function the Secrets Manager ARNs (DATABASE_SECRET_ARN,
JWT_SECRET_ARN) and the RDS Proxy endpoint (DATABASE_HOST); the secrets themselves are read on
first use and kept for the container's life (chalicelib/aws/secrets.py). A plain DATABASE_URL or
JWT_SECRET in the environment is accepted too (a host that injects secrets as variables), but the
template never puts one there.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TypeVar

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/boxoffice"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_JWT_SECRET = "boxoffice-local-development-secret-change-me"
DEVELOPMENT_STAGES = ("local", "test")
MIN_JWT_SECRET_LENGTH = 32

T = TypeVar("T")


class ConfigurationError(RuntimeError):
    pass


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, got {value}")
    return value


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def check_jwt_secret(stage: str, secret: str) -> str:
    """The built-in secret is public (it is in this file): only development stages may use it."""
    if stage not in DEVELOPMENT_STAGES and (
        secret == DEFAULT_JWT_SECRET or len(secret) < MIN_JWT_SECRET_LENGTH
    ):
        raise ConfigurationError(
            f"refusing to start stage {stage!r} without a JWT_SECRET of "
            f"{MIN_JWT_SECRET_LENGTH}+ characters"
        )
    return secret


@dataclass(frozen=True)
class DatabaseLocation:
    """Where a deployed stage's database is: an endpoint (RDS Proxy) and the Secrets Manager
    secret holding the credentials, in the JSON shape RDS and RDS Proxy use."""

    host: str
    port: int
    name: str
    secret_arn: str
    sslmode: str


@dataclass(frozen=True)
class Settings:
    stage: str
    db_pool_size: int
    redis_prefix: str
    aws_region: str
    hold_seconds: int
    jwt_issuer: str
    token_seconds: int
    rate_limit_per_minute: int
    rate_limit_holds_per_minute: int
    rate_limit_auth_per_minute: int
    seats_per_customer: int
    events_topic_name: str
    expiry_queue_name: str
    notifications_queue_name: str
    analytics_queue_name: str
    # Set by the template together with ReportBatchItemFailures on the SQS event sources.
    report_batch_item_failures: bool = False
    # Exactly one source each, checked in from_environment: a value, or where to read it.
    database_url_value: str | None = None
    database_location: DatabaseLocation | None = None
    jwt_secret_value: str | None = None
    jwt_secret_arn: str | None = None
    redis_url_value: str | None = None

    @property
    def redis_url(self) -> str:
        return _require(self.redis_url_value, "Redis")

    @property
    def jwt_audience(self) -> str:
        """Tokens name the stage that issued them, so a stage refuses another stage's tokens even
        if both were (wrongly) given the same secret."""
        return f"boxoffice-{self.stage}"

    @property
    def database_url(self) -> str:
        if self.database_url_value is not None:
            return self.database_url_value
        from chalicelib.aws import secrets

        return secrets.database_url(_require(self.database_location, "the database"))

    @property
    def jwt_secret(self) -> str:
        if self.jwt_secret_value is not None:
            return self.jwt_secret_value
        from chalicelib.aws import secrets

        arn = _require(self.jwt_secret_arn, "the JWT secret")
        return check_jwt_secret(self.stage, secrets.jwt_secret(arn))

    @classmethod
    def from_environment(cls) -> Settings:
        stage = _env("STAGE")
        if stage is None:
            raise ConfigurationError(
                "STAGE is not set: use local or test for development, or the deployed stage's name"
            )
        development = stage in DEVELOPMENT_STAGES
        prefix = f"boxoffice-{stage}"
        settings = cls(
            stage=stage,
            db_pool_size=_int("DB_POOL_SIZE", 4, minimum=1),
            redis_prefix=_env("REDIS_PREFIX") or f"{prefix}:",
            aws_region=_env("AWS_DEFAULT_REGION") or _env("AWS_REGION") or "us-east-1",
            hold_seconds=_int("HOLD_SECONDS", 30, minimum=1),
            jwt_issuer=_env("JWT_ISSUER") or "boxoffice",
            token_seconds=_int("TOKEN_SECONDS", 24 * 3600, minimum=1),
            rate_limit_per_minute=_int("RATE_LIMIT_PER_MINUTE", 600),
            rate_limit_holds_per_minute=_int("RATE_LIMIT_HOLDS_PER_MINUTE", 30),
            rate_limit_auth_per_minute=_int("RATE_LIMIT_AUTH_PER_MINUTE", 20),
            seats_per_customer=_int("SEATS_PER_CUSTOMER", 10),
            events_topic_name=_env("EVENTS_TOPIC_NAME") or f"{prefix}-events",
            expiry_queue_name=_env("EXPIRY_QUEUE_NAME") or f"{prefix}-expiry",
            notifications_queue_name=_env("NOTIFICATIONS_QUEUE_NAME") or f"{prefix}-notifications",
            analytics_queue_name=_env("ANALYTICS_QUEUE_NAME") or f"{prefix}-analytics",
            report_batch_item_failures=_env("SQS_REPORT_BATCH_ITEM_FAILURES") == "true",
            **_database_source(stage, development),
            **_jwt_source(stage, development),
            **_redis_source(stage, development),
        )
        if settings.hold_seconds > 900:
            # SQS delays a message by at most 900 s; the expiry message must fit.
            raise ConfigurationError("HOLD_SECONDS must be at most 900")
        return settings


def _require(value: T | None, what: str) -> T:
    # Settings built by hand (tests) may lack a source that from_environment would have demanded.
    if value is None:
        raise ConfigurationError(f"no source configured for {what}")
    return value


def _chalice_cli() -> bool:
    """Chalice's CLI (package, deploy) imports app.py only to read its routes and handlers, and
    sets this variable for that. The secrets' sources are checked again when they are used."""
    return os.environ.get("AWS_CHALICE_CLI_MODE") == "true"


def _database_source(stage: str, development: bool) -> dict[str, object]:
    url = _env("DATABASE_URL")
    secret_arn, host = _env("DATABASE_SECRET_ARN"), _env("DATABASE_HOST")
    if url is not None:
        return {"database_url_value": url}
    if secret_arn is not None and host is not None:
        location = DatabaseLocation(
            host=host,
            port=_int("DATABASE_PORT", 5432, minimum=1),
            name=_env("DATABASE_NAME") or "boxoffice",
            secret_arn=secret_arn,
            sslmode=_env("DATABASE_SSLMODE") or "require",
        )
        return {"database_location": location}
    return _no_source(
        stage,
        development,
        {"database_url_value": DEFAULT_DATABASE_URL},
        "a database: set DATABASE_SECRET_ARN and DATABASE_HOST (or DATABASE_URL)",
    )


def _jwt_source(stage: str, development: bool) -> dict[str, object]:
    value, arn = _env("JWT_SECRET"), _env("JWT_SECRET_ARN")
    if value is not None:
        return {"jwt_secret_value": check_jwt_secret(stage, value)}
    if arn is not None:
        return {"jwt_secret_arn": arn}
    return _no_source(
        stage,
        development,
        {"jwt_secret_value": DEFAULT_JWT_SECRET},
        "a JWT secret of its own: set JWT_SECRET_ARN "
        f"(or a JWT_SECRET of {MIN_JWT_SECRET_LENGTH}+ characters)",
    )


def _redis_source(stage: str, development: bool) -> dict[str, object]:
    url = _env("REDIS_URL")
    if url is not None:
        return {"redis_url_value": url}
    return _no_source(stage, development, {"redis_url_value": DEFAULT_REDIS_URL}, "REDIS_URL")


def _no_source(
    stage: str, development: bool, default: dict[str, object], wanted: str
) -> dict[str, object]:
    """Nothing in the environment: a development stage's default; nothing while Chalice's CLI
    imports the app (checked again on use); otherwise a refusal to start."""
    if development:
        return default
    if _chalice_cli():
        return {}
    raise ConfigurationError(f"refusing to start stage {stage!r} without {wanted}")


@functools.cache
def get_settings() -> Settings:
    return Settings.from_environment()


def for_operator_command() -> Settings:
    """Settings for a command an operator types (migrate, admin): with STAGE unset they work on
    the local stage, the same default database as `make run`. A deployed stage is chosen by
    setting STAGE (and its sources) or by passing --database-url."""
    os.environ.setdefault("STAGE", "local")
    return get_settings()
