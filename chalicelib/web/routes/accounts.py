"""POST /auth/signup and POST /auth/login: customer accounts and their bearer tokens."""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import Field
from typing_extensions import TypedDict

from chalicelib.domain.errors import Conflict
from chalicelib.services import accounts, views
from chalicelib.web import rate_limits, tokens
from chalicelib.web.errors import Unauthorized
from chalicelib.web.registry import Routes
from chalicelib.web.schemas import Email, Name, Strict, parse_model


class SignUp(Strict):
    """A new customer account (managers are created from the command line only)."""

    email: Email
    password: str = Field(min_length=8, max_length=128, examples=["s3cret-pass"])
    name: Name = Field(examples=["Ana"])


class Credentials(Strict):
    email: Email
    password: str = Field(min_length=1, max_length=128, examples=["s3cret-pass"])


Form = TypeVar("Form", bound=Strict)
Token = Annotated[str, Field(description="A bearer JWT")]


@views.shape
class SignedUp(TypedDict):
    user: views.User
    token: Token


@views.shape
class LoggedIn(TypedDict):
    token: Token


routes = Routes(__name__, tag="auth")


def _form(model: type[Form]) -> Form:
    """The body, after the sign-in limit per client IP: each sign-in costs a password hash."""
    request = routes.current_request
    rate_limits.check_sign_in(request)
    return parse_model(model, request.raw_body)


def _token(user: views.User, version: int) -> str:
    return tokens.issue(user["id"], user["role"], version)


@routes.post(
    "/auth/signup",
    summary="Create a customer account",
    status=201,
    response=SignedUp,
    errors=(Conflict,),
    body=SignUp,
    description="409 `Conflict` when an account with this email (in any letter case) exists.",
)
def sign_up() -> SignedUp:
    form = _form(SignUp)
    user, version = accounts.sign_up(email=form.email, password=form.password, name=form.name)
    return {"user": user, "token": _token(user, version)}


@routes.post(
    "/auth/login",
    summary="Exchange email and password for a bearer token",
    response=LoggedIn,
    errors=(Unauthorized,),
    body=Credentials,
    description="An unknown email and a wrong password get the same 401.",
)
def log_in() -> LoggedIn:
    form = _form(Credentials)
    user, version = accounts.authenticate(email=form.email, password=form.password)
    return {"token": _token(user, version)}
