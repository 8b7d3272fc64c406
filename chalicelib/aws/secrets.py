"""Secrets of a deployed stage, read from AWS Secrets Manager once per container.

The database secret is the JSON secret RDS Proxy itself authenticates with (`username`,
`password`, as RDS writes them); the endpoint it is used against (the proxy) comes from the stack's
parameters, not from the secret. The JWT secret is a plain-text secret of 32+ characters.

A rotated secret reaches a container when the container is replaced (a deployment, or Lambda
recycling it), since each value is kept for the container's life.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities import parameters
from psycopg.conninfo import make_conninfo

from chalicelib.log import logger
from chalicelib.settings import ConfigurationError, DatabaseLocation


class SecretUnavailable(RuntimeError):
    """Secrets Manager did not answer: retryable (the web layer answers 503)."""


def _read(arn: str, transform: str | None = None) -> Any:
    try:
        return parameters.get_secret(arn, transform=transform)
    except parameters.TransformParameterError:
        raise ConfigurationError(f"the secret {arn} is not the JSON it should be") from None
    except parameters.GetParameterError as exc:
        # Not cached: the next request tries again.
        logger.error("could not read a secret", extra={"secret": arn, "error": repr(exc)})
        raise SecretUnavailable("the service's configuration could not be read; retry") from exc


@functools.cache
def jwt_secret(arn: str) -> str:
    value = _read(arn)
    if not isinstance(value, str):
        raise ConfigurationError(f"the secret {arn} has no SecretString")
    return value.strip()


@functools.cache
def database_url(location: DatabaseLocation) -> str:
    credentials = _read(location.secret_arn, transform="json")
    if not (
        isinstance(credentials, dict)
        and isinstance(credentials.get("username"), str)
        and isinstance(credentials.get("password"), str)
    ):
        raise ConfigurationError(
            f"the secret {location.secret_arn} must be JSON with a username and a password"
        )
    # A key/value conninfo string: no URL escaping to get wrong whatever the password holds.
    return make_conninfo(
        host=location.host,
        port=location.port,
        dbname=location.name,
        user=credentials["username"],
        password=credentials["password"],
        sslmode=location.sslmode,
    )


def forget() -> None:
    """Drop the values read so far and powertools' provider, whose client keeps the endpoint it
    was made with (tests point the process at a new one)."""
    jwt_secret.cache_clear()
    database_url.cache_clear()
    parameters.clear_caches()
