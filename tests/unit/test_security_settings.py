"""Configuration that security depends on: prod refuses to start with the development JWT secret
or a short one, and never uses the cheap password hashing the tests use."""

from __future__ import annotations

import pytest

from chalicelib.services import accounts
from chalicelib.settings import DEFAULT_JWT_SECRET, ConfigurationError, Settings

STRONG = "s" * 32


@pytest.mark.parametrize("stage", ["prod", "staging"])
@pytest.mark.parametrize("secret", [None, "", DEFAULT_JWT_SECRET, "short-secret", "x" * 31])
def test_deployed_stages_refuse_a_default_or_short_jwt_secret(monkeypatch, stage, secret):
    monkeypatch.setenv("STAGE", stage)
    if secret is None:
        monkeypatch.delenv("JWT_SECRET", raising=False)
    else:
        monkeypatch.setenv("JWT_SECRET", secret)
    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        Settings.from_environment()


def test_prod_starts_with_a_strong_secret(monkeypatch):
    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("JWT_SECRET", STRONG)
    settings = Settings.from_environment()
    assert settings.jwt_secret == STRONG and settings.jwt_issuer == "boxoffice"
    assert settings.token_seconds > 0


def test_prod_never_hashes_passwords_cheaply(monkeypatch):
    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("PASSWORD_HASH_PROFILE", "CHEAPEST")
    accounts.password_hasher.cache_clear()
    try:
        hasher = accounts.password_hasher()
        assert hasher.time_cost >= 2 and hasher.memory_cost >= 19 * 1024
        assert hasher.hash("password123").startswith("$argon2id$")
    finally:
        accounts.password_hasher.cache_clear()
