"""The Chalice application object, made safe for a threaded local server.

Chalice keeps `current_request` and `lambda_context` on the app instance: right for Lambda, where a
container serves one request at a time, wrong for a local server answering requests on many
threads at once (one request would read another's headers). They are thread-local here.
"""

from __future__ import annotations

import threading

from chalice import Chalice


class _PerThread:
    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, app: BoxOfficeApp | None, owner: type) -> object:
        if app is None:
            return self
        return getattr(app._per_thread, self.name, None)

    def __set__(self, app: BoxOfficeApp, value: object) -> None:
        app._per_thread.__dict__[self.name] = value


class BoxOfficeApp(Chalice):
    current_request = _PerThread("current_request")
    lambda_context = _PerThread("lambda_context")

    def __init__(self, app_name: str, **kwargs: object) -> None:
        self._per_thread = threading.local()
        super().__init__(app_name, **kwargs)
