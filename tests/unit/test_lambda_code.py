"""chalicelib/ is what Chalice packages into every Lambda function: it must not depend on what
serves local runs only (devtools/: the runner, the embedded endpoint, provisioning from YAML)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ONLY = {"devtools", "moto", "yaml", "werkzeug", "granian", "tests", "bench"}


def imported_top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_lambda_code_imports_nothing_local_only() -> None:
    files = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_top_level_names(path) & LOCAL_ONLY)
        for path in files
    }
    assert {path: names for path, names in offenders.items() if names} == {}
    assert len(files) > 20  # the scan saw the package
