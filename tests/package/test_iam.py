"""Least privilege, checked against the code: every AWS call a function's code can make (read
from the source by tests/support/aws_calls.py) is allowed by that function's role in the packaged
template, on a named resource, and the role allows nothing else; no policy anywhere allows a
wildcard action, and every action named is a real IAM action."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from cfnlint.data import AdditionalSpecs
from cfnlint.helpers import load_resource

from infra import package as packaging
from tests.support.aws_calls import AwsCall, CodeIndex

pytestmark = pytest.mark.package

# Batch operations have no IAM action of their own: the single-message action authorises them
# ("Amazon SQS batch actions" in the SQS Developer Guide; sns:Publish "grants permission to both
# publish and publish batch" in the SNS API permissions reference).
BATCH_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "sns:PublishBatch": "sns:Publish",
}
# Calls the code makes only where the stack does not apply; the test checks the condition holds
# for every function that can reach them, so no role needs the permission.
NOT_ON_AWS = {
    # chalicelib/aws/clients.events_topic_arn looks the topic up by name only when
    # EVENTS_TOPIC_ARN is unset, as under `make run`: with CreateTopic (idempotent) before the
    # local runner moved to devtools/ (#12), with ListTopics after.
    "sns:CreateTopic": "EVENTS_TOPIC_ARN",
    "sns:ListTopics": "EVENTS_TOPIC_ARN",
}
# Method names the safety net flags that are not AWS calls.
NOT_AWS = {
    ("chalicelib/cache/watch.py", "send_command"): "redis-py's Connection.send_command",
    ("chalicelib/services/accounts.py", "verify"): "argon2's PasswordHasher.verify",
}
# What Lambda itself does with a function's role, beside the code's own calls.
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
NETWORK = {  # the VPC's network interfaces; EC2 has no resource-level permission for these
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
SQS_POLLER = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
SECRETS_KEY = {"kms:Decrypt"}  # only with SecretsKmsKeyArn, for Secrets Manager


@functools.cache
def iam_actions() -> dict[str, Any]:
    """The IAM service authorisation data cfn-lint ships: service prefix -> actions."""
    return load_resource(AdditionalSpecs, "Policies.json")


def is_real(action: str) -> bool:
    prefix, _, name = action.partition(":")
    return name.lower() in iam_actions().get(prefix, {}).get("Actions", {})


def iam_action(call: AwsCall) -> str:
    prefix = botocore.session.get_session().get_service_model(call.service).signing_name
    action = f"{prefix}:{call.operation}"
    action = BATCH_ACTIONS.get(action, action)
    assert is_real(action), f"{call}: no IAM action {action}; extend BATCH_ACTIONS?"
    return action


@pytest.fixture(scope="module")
def code() -> CodeIndex:
    return CodeIndex()


def _statements(document: Any) -> Iterator[dict[str, Any]]:
    statements = document["Statement"]
    for statement in statements if isinstance(statements, list) else [statements]:
        if "Fn::If" in statement:  # both branches may be deployed
            for branch in statement["Fn::If"][1:]:
                if branch != {"Ref": "AWS::NoValue"}:
                    yield branch
        else:
            yield statement


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("PolicyDocument", "AssumeRolePolicyDocument"):
            if key in properties:
                yield name, properties[key]
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                yield name, policy["PolicyDocument"]


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    resources = template["Resources"]
    properties = resources[role]["Properties"]
    documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    for arn in properties.get("ManagedPolicyArns", []):
        assert isinstance(arn, dict) and "Ref" in arn, f"{role}: {arn} cannot be checked here"
        documents.append(resources[arn["Ref"]]["Properties"]["PolicyDocument"])
    documents += [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
    ]
    return [s for d in documents for s in _statements(d) if s["Effect"] == "Allow"]


def allowed(template: dict[str, Any], function: str) -> dict[str, list[Any]]:
    """Action -> the resources the function's role allows it on."""
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    grants: dict[str, list[Any]] = {}
    for statement in role_statements(template, role):
        for action in _listed(statement["Action"]):
            grants.setdefault(action, []).extend(_listed(statement["Resource"]))
    return grants


def needed(template: dict[str, Any], code: CodeIndex, function: str) -> dict[str, set[AwsCall]]:
    """IAM action -> the calls in the function's code that need it (conditions checked apart)."""
    handler = template["Resources"][function]["Properties"]["Handler"]
    calls: dict[str, set[AwsCall]] = {}
    for call in code.calls(code.app_handlers()[handler]):
        calls.setdefault(iam_action(call), set()).add(call)
    return calls


def sqs_queues(template: dict[str, Any], function: str) -> list[Any]:
    events = template["Resources"][function]["Properties"].get("Events", {})
    return [e["Properties"]["Queue"] for e in events.values() if e["Type"] == "SQS"]


# --- the template as a whole ---------------------------------------------------------------


def test_no_policy_allows_a_wildcard_action_and_every_action_exists(template) -> None:
    for name, document in policy_documents(template):
        for statement in _statements(document):
            assert "NotAction" not in statement and "NotResource" not in statement, name
            for action in _listed(statement["Action"]):
                assert "*" not in action and "?" not in action, f"{name}: {action}"
                assert is_real(action), f"{name}: {action} is not an IAM action"


def test_only_network_interfaces_are_granted_on_every_resource(template) -> None:
    for function in packaging.functions(template):
        for action, resources in allowed(template, function).items():
            for resource in resources:
                if isinstance(resource, str):
                    assert resource == "*" and action in NETWORK, f"{function}: {action} {resource}"


def test_every_handler_of_app_py_is_deployed(template, code) -> None:
    handlers = {f["Properties"]["Handler"] for f in packaging.functions(template).values()}
    assert handlers == set(code.app_handlers())


def test_the_scanner_understands_every_aws_looking_call(code) -> None:
    unexplained = {(path, line, method) for path, line, method in code.unresolved()
                   if (path, method) not in NOT_AWS}  # fmt: skip
    assert not unexplained, "calls the scanner cannot tie to a client (extend aws_calls.py)"


# --- per function ------------------------------------------------------------------------


def test_each_function_may_make_every_call_its_code_makes(template, code) -> None:
    missing = []
    for function in packaging.functions(template):
        grants = allowed(template, function)
        for action, calls in needed(template, code, function).items():
            if action in NOT_ON_AWS:
                continue
            if not any(not isinstance(r, str) for r in grants.get(action, [])):
                missing += [f"{function}: {action} for {c.where}" for c in sorted(calls)]
    assert not missing


def test_calls_left_out_of_the_roles_never_happen_on_aws(template, code) -> None:
    for function in packaging.functions(template):
        env = {
            **template["Globals"]["Function"]["Environment"]["Variables"],
            **template["Resources"][function]["Properties"]["Environment"]["Variables"],
        }
        for action in needed(template, code, function):
            if action in NOT_ON_AWS:
                assert env.get(NOT_ON_AWS[action]), f"{function} would call {action}"
                assert action not in allowed(template, function)


def test_each_function_may_do_nothing_else(template, code) -> None:
    for function in packaging.functions(template):
        grants = set(allowed(template, function))
        expected = set(needed(template, code, function)) - set(NOT_ON_AWS)
        expected |= LOGS | NETWORK | SECRETS_KEY
        if sqs_queues(template, function):
            expected |= SQS_POLLER
        assert grants - expected == set(), function


def test_the_poller_may_read_only_the_queue_its_function_is_mapped_to(template) -> None:
    for function in packaging.functions(template):
        queues = sqs_queues(template, function)
        grants = allowed(template, function)
        for action in SQS_POLLER:
            assert grants.get(action, []) == queues, f"{function}: {action}"


def test_a_function_writes_only_its_own_log_group(template) -> None:
    for function in packaging.functions(template):
        group = template["Resources"][function]["DependsOn"]
        grants = allowed(template, function)
        for action in LOGS:
            assert grants[action] == [{"Fn::GetAtt": [g, "Arn"]} for g in group], function
