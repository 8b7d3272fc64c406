"""Files the app serves itself: the seat-map page (chalicelib/web/page/) and Swagger UI
(chalicelib/web/routes/docs.py). No CDN, so both work offline; all of it is text (HTML, CSS,
JavaScript, SVG), so nothing needs API Gateway's binary media types. Each file is read once per
process."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chalice import Response

from chalicelib.domain.errors import NotFound

CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml; charset=utf-8",
}
# The schema of a text body, for the document.
TEXT = {"type": "string"}
# Neither is ever read as another type, nor tells another site where its visitor came from.
COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


_SOURCE_MAP = re.compile(r"\n?(?://# sourceMappingURL=\S+|/\*# sourceMappingURL=[^*]+\*/)\s*$")


@functools.cache
def text(path: Path) -> str:
    # Source maps are not served: without this line browsers' dev tools would ask for them.
    return _SOURCE_MAP.sub("\n", path.read_text(encoding="utf-8"))


def policy(*directives: str) -> str:
    """A Content-Security-Policy from its directives."""
    return "; ".join(directives)


def html_page(html: str, content_security_policy: str, headers: Mapping[str, str]) -> Response:
    """An HTML page, revalidated on every visit (a new deployment shows at once)."""
    return Response(
        body=html,
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": content_security_policy,
            "Cache-Control": "no-cache",
            **COMMON_HEADERS,
            **headers,
        },
    )


@dataclass(frozen=True)
class Assets:
    """The files a page loads, by the name in their URL; any other name is 404."""

    files: Mapping[str, Path]
    what: str  # says what was not found: "no {what} {name}"
    cache_control: str
    headers: Mapping[str, str]

    @property
    def enum(self) -> dict[str, list[str]]:
        """The names, for the JSON Schema of the path parameter that names one."""
        return {"enum": list(self.files)}

    def answer(self, name: str) -> Response:
        path = self.files.get(name)
        if path is None:
            raise NotFound(f"no {self.what} {name}")
        return Response(
            body=text(path),
            status_code=200,
            headers={
                "Content-Type": CONTENT_TYPES[path.suffix],
                "Cache-Control": self.cache_control,
                **COMMON_HEADERS,
                **self.headers,
            },
        )
