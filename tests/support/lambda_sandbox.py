"""Run the packaged deployment.zip as the Lambda Python runtime would: a fresh interpreter whose
sys.path holds the unzipped package, the standard library, and what the runtime itself provides
(boto3, botocore and their dependencies), nothing from this project's virtualenv.

`python -I -S` ignores PYTHONPATH, the user's site and the virtualenv's site-packages; the runner
then puts exactly two directories on sys.path. It reports each answer's time (wall clock, and the
process's CPU time), the same for importing `app`, the process's peak RSS, and any module that
came from somewhere else.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

# What the python3.11 Lambda runtime ships besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "jmespath", "s3transfer", "dateutil", "six", "urllib3")

RUNNER = r"""
import json, os, resource, sys, sysconfig, time
started, started_cpu = time.perf_counter(), time.process_time()
package, runtime, events_file = sys.argv[1:4]
sys.path[:0] = [package, runtime]

class Context:
    function_name = "boxoffice-sandbox-api"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:boxoffice-sandbox-api"
    def __init__(self, request_id):
        self.aws_request_id = request_id
    def get_remaining_time_in_millis(self):
        return 30000

import app
imported, imported_cpu = time.perf_counter(), time.process_time()
answers = []
for number, event in enumerate(json.load(open(events_file))):
    began, began_cpu = time.perf_counter(), time.process_time()
    response = app.app(event, Context(f"sandbox-{number}"))
    answers.append({"statusCode": response["statusCode"], "body": response["body"],
                    "ms": (time.perf_counter() - began) * 1000,
                    "cpu_ms": (time.process_time() - began_cpu) * 1000})
allowed = (os.path.realpath(package), os.path.realpath(runtime),
           os.path.realpath(sysconfig.get_paths()["stdlib"]),
           os.path.realpath(sysconfig.get_paths()["platstdlib"]))
foreign = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None)
    and not os.path.realpath(module.__file__).startswith(allowed)
)
print(json.dumps({
    "import_ms": (imported - started) * 1000,
    "import_cpu_ms": (imported_cpu - started_cpu) * 1000,
    "answers": answers,
    "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "foreign_modules": foreign,
    "loaded": sorted(sys.modules),
}))
"""


def unpack(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(dest)
    return dest


def runtime_dependencies(dest: Path) -> Path:
    """Copies of boto3 and its dependencies, taken from this interpreter's installation."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec and spec.origin, f"{name} is not installed"
        source = Path(spec.origin)
        if source.name == "__init__.py":
            shutil.copytree(source.parent, dest / name, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest / source.name)
    return dest


def api_event(method: str, path: str, resource: str | None = None, **extra: Any) -> dict:
    """An API Gateway (REST, proxy integration) event as Lambda receives it."""
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": {"Host": "api.example.com", **extra.pop("headers", {})},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": extra.pop("path_parameters", None),
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource or path,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "203.0.113.9"},
        },
        "body": extra.pop("body", None),
        "isBase64Encoded": False,
    }


def invoke(
    package: Path, runtime: Path, events: list[dict], env: dict[str, str], scratch: Path
) -> dict[str, Any]:
    """One fresh process (a cold container) answering `events` in order."""
    events_file = scratch / f"events-{uuid.uuid4().hex}.json"
    events_file.write_text(json.dumps(events))
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(package), str(runtime), str(events_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
