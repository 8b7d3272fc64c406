"""Configuration that security depends on: a deployed stage refuses to start without its own
secrets and endpoints (no built-in default, no local fallback), reads secrets from Secrets Manager
through the adapter, refuses other stages' tokens, and never hashes passwords cheaply."""

from __future__ import annotations

import jwt
import pytest

from chalicelib.aws import secrets
from chalicelib.aws.secrets import SecretUnavailable
from chalicelib.services import accounts
from chalicelib.settings import (
    DEFAULT_DATABASE_URL,
    DEFAULT_JWT_SECRET,
    DEFAULT_REDIS_URL,
    ConfigurationError,
    Settings,
    get_settings,
)
from chalicelib.web import tokens
from chalicelib.web.errors import Unauthorized

STRONG = "s" * 32
SOURCES = (
    "DATABASE_URL",
    "DATABASE_SECRET_ARN",
    "DATABASE_HOST",
    "DATABASE_PORT",
    "DATABASE_NAME",
    "DATABASE_SSLMODE",
    "JWT_SECRET",
    "JWT_SECRET_ARN",
    "REDIS_URL",
    "AWS_CHALICE_CLI_MODE",
)
DATABASE_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:boxoffice-prod-db-AbCdEf"
JWT_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:boxoffice-prod-jwt-AbCdEf"


@pytest.fixture
def deployed(monkeypatch):
    """A deployed stage's environment as the template writes it: names of secrets, no values."""
    for name in SOURCES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("REDIS_URL", "rediss://cache.example.internal:6379/0")
    monkeypatch.setenv("DATABASE_SECRET_ARN", DATABASE_ARN)
    monkeypatch.setenv("DATABASE_HOST", "proxy.example.internal")
    monkeypatch.setenv("JWT_SECRET_ARN", JWT_ARN)
    secrets.forget()
    yield monkeypatch
    secrets.forget()


@pytest.fixture
def secret_store(deployed):
    """What Secrets Manager would answer, and how often it was asked (a unit test: the
    integration test in tests/integration/test_secrets.py reads them over HTTP)."""
    store = {
        DATABASE_ARN: {"username": "boxoffice", "password": "p@ss word/with:odd=chars"},
        JWT_ARN: "j" * 48,
    }
    reads: list[str] = []

    def get_secret(name, transform=None):
        reads.append(name)
        if name not in store:
            raise secrets.parameters.GetParameterError("AccessDeniedException")
        return store[name]

    deployed.setattr(secrets.parameters, "get_secret", get_secret)
    return store, reads


@pytest.mark.parametrize("stage", ["prod", "staging"])
@pytest.mark.parametrize("secret", [None, "", DEFAULT_JWT_SECRET, "short-secret", "x" * 31])
def test_deployed_stages_refuse_a_default_or_short_jwt_secret(deployed, stage, secret):
    deployed.setenv("STAGE", stage)
    deployed.delenv("JWT_SECRET_ARN")
    if secret is not None:
        deployed.setenv("JWT_SECRET", secret)
    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        Settings.from_environment()


def test_a_stage_must_be_named(deployed):
    deployed.delenv("STAGE")
    with pytest.raises(ConfigurationError, match="STAGE"):
        Settings.from_environment()


@pytest.mark.parametrize(
    "missing", [("DATABASE_SECRET_ARN",), ("DATABASE_HOST",), ("REDIS_URL",)], ids=str
)
def test_a_deployed_stage_never_falls_back_to_a_local_service(deployed, missing):
    for name in missing:
        deployed.delenv(name)
    with pytest.raises(ConfigurationError, match="refusing to start stage 'prod'"):
        Settings.from_environment()


def test_development_stages_keep_their_defaults(deployed):
    for name in SOURCES:
        deployed.delenv(name, raising=False)
    deployed.setenv("STAGE", "local")
    settings = Settings.from_environment()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.redis_url == DEFAULT_REDIS_URL
    assert settings.jwt_secret == DEFAULT_JWT_SECRET


def test_secrets_are_read_on_first_use_and_once_per_container(secret_store):
    _, reads = secret_store
    settings = Settings.from_environment()
    assert reads == []  # nothing is read to start
    url = settings.database_url
    assert settings.jwt_secret == "j" * 48
    for _ in range(3):
        assert settings.database_url == url and settings.jwt_secret == "j" * 48
    assert sorted(reads) == sorted([DATABASE_ARN, JWT_ARN])
    # The proxy endpoint comes from the stack, the credentials from the secret, TLS required;
    # the password reaches libpq intact whatever characters it holds.
    from psycopg.conninfo import conninfo_to_dict

    assert conninfo_to_dict(url) == {
        "host": "proxy.example.internal",
        "port": "5432",
        "dbname": "boxoffice",
        "user": "boxoffice",
        "password": "p@ss word/with:odd=chars",
        "sslmode": "require",
    }


def test_a_short_jwt_secret_in_secrets_manager_is_refused(secret_store):
    store, _ = secret_store
    store[JWT_ARN] = "x" * 31
    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        _ = Settings.from_environment().jwt_secret


def test_a_database_secret_without_credentials_is_refused(secret_store):
    store, _ = secret_store
    store[DATABASE_ARN] = {"password": "no user"}
    with pytest.raises(ConfigurationError, match="username and a password"):
        _ = Settings.from_environment().database_url


def test_an_unreadable_secret_is_a_retryable_503_and_is_not_cached(secret_store):
    store, reads = secret_store
    missing = store.pop(JWT_ARN)
    settings = Settings.from_environment()
    with pytest.raises(SecretUnavailable):
        _ = settings.jwt_secret
    store[JWT_ARN] = missing
    assert settings.jwt_secret == missing
    assert reads.count(JWT_ARN) == 2


def test_chalice_cli_imports_the_app_without_secrets_but_nothing_runs_on_them(deployed):
    # `chalice package` imports app.py with the stage's environment to read its routes; the
    # template supplies the secrets' ARNs only when the stack is deployed.
    for name in ("DATABASE_SECRET_ARN", "DATABASE_HOST", "JWT_SECRET_ARN", "REDIS_URL"):
        deployed.delenv(name)
    deployed.setenv("AWS_CHALICE_CLI_MODE", "true")
    settings = Settings.from_environment()
    for source in ("database_url", "jwt_secret", "redis_url"):
        with pytest.raises(ConfigurationError, match="no source"):
            getattr(settings, source)


def test_prod_starts_with_a_strong_secret(deployed):
    deployed.delenv("JWT_SECRET_ARN")
    deployed.setenv("JWT_SECRET", STRONG)
    settings = Settings.from_environment()
    assert settings.jwt_secret == STRONG and settings.jwt_issuer == "boxoffice"
    assert settings.jwt_audience == "boxoffice-prod"
    assert settings.token_seconds > 0


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_stages_refuse_each_others_tokens(deployed):
    """Even with the same secret (a mistake), a prod token is no test token and vice versa."""
    deployed.delenv("JWT_SECRET_ARN")
    deployed.setenv("JWT_SECRET", STRONG)
    issued = {}
    for stage in ("prod", "staging"):
        deployed.setenv("STAGE", stage)
        get_settings.cache_clear()
        try:
            issued[stage] = tokens.issue("user-1", "CUSTOMER")
            assert jwt.decode(issued[stage], options={"verify_signature": False})["aud"] == (
                f"boxoffice-{stage}"
            )
            assert tokens.verify(issued[stage]).user_id == "user-1"
        finally:
            get_settings.cache_clear()
    for stage, other in (("prod", "staging"), ("staging", "prod")):
        deployed.setenv("STAGE", stage)
        get_settings.cache_clear()
        try:
            with pytest.raises(Unauthorized):
                tokens.verify(issued[other])
        finally:
            get_settings.cache_clear()


def test_prod_never_hashes_passwords_cheaply(deployed):
    deployed.setenv("PASSWORD_HASH_PROFILE", "CHEAPEST")
    for stage in ("prod", None):
        if stage is None:
            deployed.delenv("STAGE")
        accounts.password_hasher.cache_clear()
        try:
            hasher = accounts.password_hasher()
            assert hasher.time_cost >= 2 and hasher.memory_cost >= 19 * 1024
            assert hasher.hash("password123").startswith("$argon2id$")
        finally:
            accounts.password_hasher.cache_clear()
