"""JWT bearer tokens (PyJWT, HS256): issued at signup and login, checked on every protected call."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from chalicelib.domain.errors import Forbidden
from chalicelib.settings import get_settings
from chalicelib.web.errors import Unauthorized

ALGORITHM = "HS256"


@dataclass(frozen=True)
class Caller:
    user_id: str
    role: str
    token_version: int = 0  # the user's token_version when the token was issued

    def require(self, role: str) -> Caller:
        if self.role != role:
            raise Forbidden(f"this operation needs the {role} role")
        return self


def issue(user_id: str, role: str, token_version: int = 0) -> str:
    settings = get_settings()
    now = int(time.time())
    claims = {
        "sub": user_id,
        "role": role,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + settings.token_seconds,
        **version_claim(token_version),
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM)


# The token version: which of its user's tokens this is. Changing the user's password or role
# bumps the version in the database, and each use case compares the two in its own transaction
# (chalicelib.services.accounts), so older tokens end at once rather than at their expiry.
VERSION_CLAIM = "ver"


def version_claim(token_version: int) -> dict[str, int]:
    return {VERSION_CLAIM: token_version}


def version_in(claims: dict) -> int:
    """The token's version; 401 for a token without one (issued before versions existed)."""
    version = claims.get(VERSION_CLAIM)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise Unauthorized("the token is missing, expired or invalid")
    return version


def verify(token: str) -> Caller:
    settings = get_settings()
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[ALGORITHM],  # a token claiming any other algorithm, "none" included, fails
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,  # another stage's token fails here
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError:
        raise Unauthorized("the token is missing, expired or invalid") from None
    role = claims.get("role")
    if role not in ("CUSTOMER", "MANAGER") or not isinstance(claims["sub"], str):
        raise Unauthorized("the token is missing, expired or invalid")
    return Caller(claims["sub"], role, version_in(claims))


def caller_from_header(authorization: str | None) -> Caller:
    if not authorization:
        raise Unauthorized("an Authorization: Bearer <token> header is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an Authorization: Bearer <token> header is required")
    return verify(token.strip())


def caller_if_any(authorization: str | None) -> Caller | None:
    try:
        return caller_from_header(authorization) if authorization else None
    except Unauthorized:
        return None
