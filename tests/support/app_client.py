"""Calls the Chalice app the way API Gateway does (proxy events through chalice.local's gateway),
in-process, so most tests skip the socket but still run routing, middleware and handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalice.config import Config
from chalice.local import ForbiddenError, LocalGateway


@dataclass
class Answer:
    status: int
    headers: dict[str, Any]
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("Code") if isinstance(self.body, dict) else None


class AppClient:
    def __init__(self, app: Any) -> None:
        self.gateway = LocalGateway(
            app, Config(chalice_stage="local", user_provided_params={"app_name": "boxoffice"})
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        raw: bytes | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = {"content-type": "application/json", **(headers or {})}
        if token:
            sent["authorization"] = f"Bearer {token}"
        body = (
            raw
            if raw is not None
            else (json.dumps(json_body).encode() if json_body is not None else None)
        )
        try:
            response = self.gateway.handle_request(method, path, sent, body)
        except ForbiddenError:
            return Answer(404, {}, {"Code": "NotFound"})
        text = response.get("body")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return Answer(response["statusCode"], response.get("headers", {}), parsed)

    def get(self, path: str, **kw: Any) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.request("POST", path, json_body=body, **kw)

    def delete(self, path: str, **kw: Any) -> Answer:
        return self.request("DELETE", path, **kw)
