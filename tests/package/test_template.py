"""The packaged template (dist/<stage>/sam.yaml): it lints, takes the network, endpoints and
secrets as parameters, wires the functions to this stack's queues and topic, and carries the
production shape (memory, concurrency, alarms) the docs describe."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.events import metrics
from infra import package as packaging

pytestmark = pytest.mark.package

SQS_FUNCTIONS = {"ExpireHolds": "ExpiryQueue", "SendReceipts": "NotificationsQueue",
                 "CountSales": "AnalyticsQueue"}  # fmt: skip
ACCOUNT_CONCURRENCY = 1000  # a new account's default; Lambda keeps 100 of it unreserved


def environment(template: dict[str, Any], name: str) -> dict[str, Any]:
    """A function's environment as SAM deploys it: Globals merged under the function's own."""
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    own = template["Resources"][name]["Properties"].get("Environment", {})
    return {**shared.get("Variables", {}), **own.get("Variables", {})}


def test_the_template_passes_cfn_lint(package_dir: Path) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    command = str(cfn_lint) if cfn_lint.exists() else shutil.which("cfn-lint")
    assert command, "cfn-lint is not installed (requirements-dev.txt)"
    result = subprocess.run(
        [command, str(package_dir / packaging.TEMPLATE_NAME)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_network_endpoints_and_secrets_are_parameters(template) -> None:
    parameters = template["Parameters"]
    assert parameters["SubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert parameters["SecurityGroupIds"]["Type"] == "List<AWS::EC2::SecurityGroup::Id>"
    for name in ("DatabaseProxyEndpoint", "RedisEndpoint", "DatabaseSecretArn", "JwtSecretArn"):
        assert "Default" not in parameters[name], f"{name} must be given at deploy time"
    stage = parameters["Stage"]
    assert (stage["Default"], stage["AllowedValues"]) == ("prod", ["prod"])
    vpc = template["Globals"]["Function"]["VpcConfig"]
    assert vpc == {
        "SubnetIds": {"Ref": "SubnetIds"},
        "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
    }


def test_no_secret_value_and_no_local_address_reaches_a_function(template) -> None:
    for name in packaging.functions(template):
        env = environment(template, name)
        assert env["STAGE"] == "prod"
        assert "DATABASE_URL" not in env and "JWT_SECRET" not in env
        assert env["DATABASE_SECRET_ARN"] == {"Ref": "DatabaseSecretArn"}
        assert env["JWT_SECRET_ARN"] == {"Ref": "JwtSecretArn"}
        assert env["DATABASE_HOST"] == {"Ref": "DatabaseProxyEndpoint"}
        assert "127.0.0.1" not in json.dumps(env) and "localhost" not in json.dumps(env)
        # Names and ARNs come from the stack itself.
        assert env["EVENTS_TOPIC_ARN"] == {"Ref": "EventsTopic"}
        assert env["EXPIRY_QUEUE_NAME"] == {"Fn::GetAtt": ["ExpiryQueue", "QueueName"]}


def test_each_queue_handler_reads_its_own_stack_queue_and_reports_partial_failures(template):
    functions = packaging.functions(template)
    sqs_sources = {
        name: source["Properties"]
        for name, function in functions.items()
        for source in function["Properties"].get("Events", {}).values()
        if source["Type"] == "SQS"
    }
    assert set(sqs_sources) == set(SQS_FUNCTIONS)
    for name, source in sqs_sources.items():
        assert source["Queue"] == {"Fn::GetAtt": [SQS_FUNCTIONS[name], "Arn"]}
        # The handler reports failed ids only with this flag, and Lambda honours them only with
        # ReportBatchItemFailures: one without the other loses or repeats messages.
        assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert environment(template, name)["SQS_REPORT_BATCH_ITEM_FAILURES"] == "true"
        assert source["ScalingConfig"]["MaximumConcurrency"] == {
            "Ref": "SubscriberMaximumConcurrency"
        }
        # Lambda requires a queue's visibility timeout to cover the function's timeout.
        queue = template["Resources"][SQS_FUNCTIONS[name]]["Properties"]
        assert queue["VisibilityTimeout"] >= functions[name]["Properties"]["Timeout"]


def test_production_shape(template) -> None:
    functions = {name: f["Properties"] for name, f in packaging.functions(template).items()}
    for name in ("RelayOutbox", "Sweep"):
        assert 128 <= functions[name]["MemorySize"] <= 256
        assert functions[name]["ReservedConcurrentExecutions"] >= 1
    assert functions["APIHandler"]["ReservedConcurrentExecutions"] == {
        "Ref": "ApiReservedConcurrency"
    }
    reserved = template["Parameters"]["ApiReservedConcurrency"]["Default"] + sum(
        f["ReservedConcurrentExecutions"]
        for name, f in functions.items()
        if name != "APIHandler" and "ReservedConcurrentExecutions" in f
    )
    assert reserved <= ACCOUNT_CONCURRENCY - 100, "a default account could not deploy this"
    for name, function in functions.items():
        role = function["Role"]["Fn::GetAtt"][0]
        assert template["Resources"][role]["Type"] == "AWS::IAM::Role", name


def test_every_dead_letter_queue_and_the_outbox_have_an_alarm(template) -> None:
    resources = template["Resources"]
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = {
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in alarms if a["Namespace"] == "AWS/SQS"
    }
    dead_letter_queues = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in resources.values()
        if q["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in q["Properties"]
    }
    assert watched == dead_letter_queues and len(watched) == 3
    (outbox,) = [a for a in alarms if a["Namespace"] == metrics.NAMESPACE]
    # The same names the relay emits (chalicelib/events/metrics.py).
    assert outbox["MetricName"] == metrics.OUTBOX_AGE
    assert {d["Name"] for d in outbox["Dimensions"]} == {"service", "stage"}
    assert outbox["TreatMissingData"] == "breaching"
