"""Configuration read from the environment once per process (one Lambda container)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/boxoffice"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_JWT_SECRET = "boxoffice-local-development-secret-change-me"
DEVELOPMENT_STAGES = ("local", "test")


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


@dataclass(frozen=True)
class Settings:
    stage: str
    database_url: str
    db_pool_size: int
    redis_url: str
    redis_prefix: str
    aws_region: str
    hold_seconds: int
    jwt_secret: str
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

    @classmethod
    def from_environment(cls) -> Settings:
        stage = os.environ.get("STAGE", "local")
        prefix = f"boxoffice-{stage}"
        settings = cls(
            stage=stage,
            database_url=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            db_pool_size=_int("DB_POOL_SIZE", 4, minimum=1),
            redis_url=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
            redis_prefix=os.environ.get("REDIS_PREFIX") or f"{prefix}:",
            aws_region=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            hold_seconds=_int("HOLD_SECONDS", 30, minimum=1),
            jwt_secret=os.environ.get("JWT_SECRET") or DEFAULT_JWT_SECRET,
            jwt_issuer=os.environ.get("JWT_ISSUER") or "boxoffice",
            token_seconds=_int("TOKEN_SECONDS", 24 * 3600, minimum=1),
            rate_limit_per_minute=_int("RATE_LIMIT_PER_MINUTE", 600),
            rate_limit_holds_per_minute=_int("RATE_LIMIT_HOLDS_PER_MINUTE", 30),
            rate_limit_auth_per_minute=_int("RATE_LIMIT_AUTH_PER_MINUTE", 20),
            seats_per_customer=_int("SEATS_PER_CUSTOMER", 10),
            events_topic_name=os.environ.get("EVENTS_TOPIC_NAME") or f"{prefix}-events",
            expiry_queue_name=os.environ.get("EXPIRY_QUEUE_NAME") or f"{prefix}-expiry",
            notifications_queue_name=os.environ.get("NOTIFICATIONS_QUEUE_NAME")
            or f"{prefix}-notifications",
            analytics_queue_name=os.environ.get("ANALYTICS_QUEUE_NAME") or f"{prefix}-analytics",
        )
        if settings.hold_seconds > 900:
            # SQS delays a message by at most 900 s; the expiry message must fit.
            raise ConfigurationError("HOLD_SECONDS must be at most 900")
        # The built-in secret is public (it is in this file): only development stages may use it.
        if stage not in DEVELOPMENT_STAGES and (
            settings.jwt_secret == DEFAULT_JWT_SECRET or len(settings.jwt_secret) < 32
        ):
            raise ConfigurationError(
                f"refusing to start stage {stage!r} without a JWT_SECRET of 32+ characters"
            )
        return settings


@functools.cache
def get_settings() -> Settings:
    return Settings.from_environment()
