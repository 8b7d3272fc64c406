"""deployment.zip as Lambda runs it: small enough, holding the app and its runtime dependencies
only, and answering an API Gateway event with nothing but its own files, the standard library and
the runtime's boto3 importable."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from infra import package as packaging
from tests.support.lambda_sandbox import api_event, invoke, runtime_dependencies, unpack

pytestmark = pytest.mark.package

LAMBDA_ZIP_LIMIT = 50 * 1024 * 1024  # direct upload limit for a zipped deployment package
NOT_SHIPPED = ("moto", "yaml", "granian", "pytest", "tests", "bench", "devtools", "infra")


def top_level(names: list[str]) -> set[str]:
    found = set()
    for name in names:
        parts = name.split("/")
        found.add(parts[0].removesuffix(".py"))
        if len(parts) > 2:
            found.add("/".join(parts[:2]))
    return found


def test_the_zip_is_under_lambdas_limit(deployment_zip: Path) -> None:
    assert deployment_zip.stat().st_size < LAMBDA_ZIP_LIMIT


def test_the_zip_holds_the_app_and_no_test_emulator_or_local_runner_code(deployment_zip) -> None:
    with zipfile.ZipFile(deployment_zip) as archive:
        shipped = top_level(archive.namelist())
    assert not shipped & set(NOT_SHIPPED)
    assert {"app", "chalicelib", "psycopg", "redis", "jwt", "argon2"} <= shipped


def test_unzipped_alone_it_answers_an_api_gateway_event(deployment_zip, tmp_path) -> None:
    package = unpack(deployment_zip, tmp_path / "task")
    runtime = runtime_dependencies(tmp_path / "runtime")
    env = {
        # What the template sets (values are placeholders: nothing here reads them).
        "STAGE": "prod",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DATABASE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
        "DATABASE_HOST": "proxy.invalid",
        "JWT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt",
        # Nothing listens there: the rate limiter degrades, as when Redis is down.
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "SQS_REPORT_BATCH_ITEM_FAILURES": "true",
    }
    outcome = invoke(package, runtime, [api_event("GET", "/openapi.json")], env, tmp_path)

    (answer,) = outcome["answers"]
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["openapi"].startswith("3.")
    assert outcome["foreign_modules"] == []  # nothing came from this project or its virtualenv
    loaded = outcome["loaded"]
    assert not [name for name in loaded if name.split(".")[0] in ("moto", "yaml", "pytest")]
    assert not [name for name in loaded if name.startswith("devtools")]


def test_every_module_ships_compiled_for_the_runtime(deployment_zip: Path, template) -> None:
    # /var/task is read-only: a module without its .pyc is compiled again on every cold start.
    (runtime,) = {f["Properties"]["Runtime"] for f in packaging.functions(template).values()}
    tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
    with zipfile.ZipFile(deployment_zip) as archive:
        names = set(archive.namelist())
    sources = [n for n in names if n.endswith(".py")]
    assert sources and not [s for s in sources if compiled_name(s, tag) not in names]


def compiled_name(source: str, tag: str) -> str:
    folder, _, file = source.rpartition("/")
    compiled = f"__pycache__/{file.removesuffix('.py')}.{tag}.pyc"
    return f"{folder}/{compiled}" if folder else compiled
