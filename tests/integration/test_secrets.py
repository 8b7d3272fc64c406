"""A deployed stage's secrets read from Secrets Manager (moto over HTTP): the database credentials
open a real PostgreSQL connection, the JWT secret signs tokens, and each is read once."""

from __future__ import annotations

import json
import uuid

import boto3
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from chalicelib.aws import secrets
from chalicelib.settings import Settings, get_settings
from chalicelib.web import tokens

JWT_VALUE = "a-deployed-stage-secret-" + "x" * 24


@pytest.fixture
def secretsmanager(aws_endpoint: str):
    return boto3.client("secretsmanager", endpoint_url=aws_endpoint, region_name="us-east-1")


@pytest.fixture
def deployed_stage(monkeypatch, secretsmanager, database: str):
    """The environment the template gives a function: secret ARNs and the database endpoint."""
    run = uuid.uuid4().hex[:8]
    target = conninfo_to_dict(database)
    database_secret = secretsmanager.create_secret(
        Name=f"boxoffice-prod-{run}/database",
        # The JSON shape RDS writes and RDS Proxy reads (PostgreSQL here trusts local users).
        SecretString=json.dumps({"username": target["user"], "password": "unused-by-trust"}),
    )["ARN"]
    jwt_secret = secretsmanager.create_secret(
        Name=f"boxoffice-prod-{run}/jwt", SecretString=JWT_VALUE
    )["ARN"]
    for name in ("DATABASE_URL", "JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("DATABASE_SECRET_ARN", database_secret)
    monkeypatch.setenv("DATABASE_HOST", target["host"])
    monkeypatch.setenv("DATABASE_PORT", target["port"])
    monkeypatch.setenv("DATABASE_NAME", target["dbname"])
    monkeypatch.setenv("DATABASE_SSLMODE", "disable")  # no TLS on the local server
    monkeypatch.setenv("JWT_SECRET_ARN", jwt_secret)
    secrets.forget()
    get_settings.cache_clear()
    yield {"database": database_secret, "jwt": jwt_secret}
    secrets.forget()
    get_settings.cache_clear()


def test_a_deployed_stage_reads_its_secrets_once_from_secrets_manager(
    deployed_stage, secretsmanager
):
    settings = Settings.from_environment()
    expected = conninfo_to_dict(settings.database_url)["dbname"]
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == expected
    assert settings.jwt_secret == JWT_VALUE
    # Tokens are signed with it, for this stage's audience.
    token = tokens.issue("user-1", "MANAGER")
    assert tokens.verify(token) == tokens.Caller("user-1", "MANAGER")
    # Kept for the container's life: gone from Secrets Manager, still known here.
    for arn in deployed_stage.values():
        secretsmanager.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert settings.jwt_secret == JWT_VALUE
    assert Settings.from_environment().database_url == settings.database_url


def test_a_missing_secret_fails_closed(deployed_stage, secretsmanager):
    from chalicelib.aws.secrets import SecretUnavailable

    secretsmanager.delete_secret(SecretId=deployed_stage["jwt"], ForceDeleteWithoutRecovery=True)
    with pytest.raises(SecretUnavailable):
        tokens.issue("user-1", "CUSTOMER")
