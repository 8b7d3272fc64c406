"""The packaged stack (`make package`): built once per run, or taken from PACKAGE_DIR (what
`make test-package` passes after building dist/<stage>/). These tests need PyPI (chalice package
downloads Lambda wheels), so each module is marked `package` and left out of the default run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from infra import package as packaging

STAGE = "prod"


@pytest.fixture(scope="session")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("PACKAGE_DIR")
    if given:
        path = Path(given)
        assert (path / packaging.TEMPLATE_NAME).exists(), f"no template in {path}"
        return path
    out = tmp_path_factory.mktemp("package") / STAGE
    packaging.package(STAGE, out)
    return out


@pytest.fixture(scope="session")
def template(package_dir: Path) -> dict[str, Any]:
    return packaging.load(package_dir / packaging.TEMPLATE_NAME)


@pytest.fixture(scope="session")
def deployment_zip(package_dir: Path) -> Path:
    return package_dir / "deployment.zip"
