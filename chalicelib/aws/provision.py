"""Deploys infra/boxoffice.yaml and answers its Outputs (topic ARN, queue URLs).

The template goes to CloudFormation as stack `boxoffice-<stage>`. On AWS that is all. On a local
endpoint the result is then checked against the template, because emulators may report a stack
complete without building all of it: moto 5.2.5 marks AWS::SNS::Subscription and
AWS::SQS::QueuePolicy CREATE_COMPLETE but creates neither, and an endpoint may have no
CloudFormation at all. Then the same template is applied with direct SNS/SQS calls, which are
idempotent, so every `make run` (and every instance of it) can call this.

    python -m chalicelib.aws.provision --stage local     # prints the outputs as JSON
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "boxoffice.yaml"
log = logging.getLogger("boxoffice.provision")

# Properties of AWS::SQS::Queue that are queue attributes, and how each is written for the API.
QUEUE_ATTRIBUTES = {
    "DelaySeconds": str,
    "MaximumMessageSize": str,
    "MessageRetentionPeriod": str,
    "ReceiveMessageWaitTimeSeconds": str,
    "VisibilityTimeout": str,
    "RedrivePolicy": json.dumps,
}
# A local endpoint answers at once or not at all; botocore's default retries (with backoff) only
# delay the fallback, e.g. when LocalStack runs without its CloudFormation service.
LOCAL_ENDPOINT_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2)
STACK_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}


# --- the template --------------------------------------------------------------------------------


class _TemplateLoader(yaml.SafeLoader):
    """Reads short-form intrinsics (!Ref, !GetAtt, !Sub...) as their long forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_TemplateLoader)  # a SafeLoader subclass


def resources_of(template: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (logical_id, resource.get("Properties", {}))
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == kind
    ]


class _Resolver:
    """Evaluates Ref, Fn::GetAtt (Arn) and Fn::Sub against known parameters and resources."""

    def __init__(self, parameters: dict[str, str], sqs: Any) -> None:
        self.parameters = parameters
        self.sqs = sqs
        self.refs: dict[str, str] = {}  # logical id -> Ref value (topic ARN, queue URL)
        self.arns: dict[str, str] = {}  # logical id -> Arn attribute

    def arn(self, logical_id: str) -> str:
        if logical_id not in self.arns:  # only queues lack it: their Ref is the URL
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.refs[logical_id], AttributeNames=["QueueArn"]
            )
            self.arns[logical_id] = attributes["Attributes"]["QueueArn"]
        return self.arns[logical_id]

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.parameters[arg] if arg in self.parameters else self.refs[arg]
            if key == "Fn::GetAtt":
                logical_id, attribute = arg
                if attribute != "Arn":
                    raise ValueError(f"unsupported attribute {logical_id}.{attribute}")
                return self.arn(logical_id)
            if key == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self({"Ref": m.group(1)}), arg)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


def _parameters(template: dict[str, Any], stage: str) -> dict[str, str]:
    defaults = {
        name: str(spec["Default"])
        for name, spec in template.get("Parameters", {}).items()
        if "Default" in spec
    }
    return {**defaults, "Stage": stage}


def _outputs(template: dict[str, Any], resolve: _Resolver) -> dict[str, str]:
    return {name: resolve(spec["Value"]) for name, spec in template.get("Outputs", {}).items()}


def _queue_attributes(props: dict[str, Any], resolve: _Resolver) -> dict[str, str]:
    return {
        key: write(resolve(props[key])) for key, write in QUEUE_ATTRIBUTES.items() if key in props
    }


def _subscription_attributes(props: dict[str, Any]) -> dict[str, str]:
    attributes = {"RawMessageDelivery": str(props.get("RawMessageDelivery", False)).lower()}
    if "FilterPolicy" in props:
        attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
        attributes["FilterPolicyScope"] = props.get("FilterPolicyScope", "MessageAttributes")
    return attributes


# --- direct SNS/SQS calls ------------------------------------------------------------------------


def apply_directly(template: dict[str, Any], stage: str, sns: Any, sqs: Any) -> dict[str, str]:
    """Creates (or brings up to the template) every resource with SNS/SQS calls; the Outputs."""
    resolve = _Resolver(_parameters(template, stage), sqs)
    for logical_id, props in resources_of(template, "AWS::SNS::Topic"):
        arn = sns.create_topic(Name=resolve(props["TopicName"]))["TopicArn"]
        resolve.refs[logical_id] = resolve.arns[logical_id] = arn
    # Dead-letter queues first: the others' redrive policies name them.
    queues = sorted(
        resources_of(template, "AWS::SQS::Queue"), key=lambda q: "RedrivePolicy" in q[1]
    )
    for logical_id, props in queues:
        # Attributes are set after creation: CreateQueue refuses an existing queue whose
        # attributes differ, SetQueueAttributes brings it up to the template instead.
        url = sqs.create_queue(QueueName=resolve(props["QueueName"]))["QueueUrl"]
        resolve.refs[logical_id] = url
        attributes = _queue_attributes(props, resolve)
        if attributes:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    for _, props in resources_of(template, "AWS::SQS::QueuePolicy"):
        policy = json.dumps(resolve(props["PolicyDocument"]))
        for url in resolve(props["Queues"]):
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    for _, props in resources_of(template, "AWS::SNS::Subscription"):
        props = resolve(props)
        # Subscribe is idempotent only without attributes (AWS refuses differing ones), so the
        # attributes are set one by one afterwards.
        arn = sns.subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props["Endpoint"],
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        for name, value in _subscription_attributes(props).items():
            sns.set_subscription_attributes(
                SubscriptionArn=arn, AttributeName=name, AttributeValue=value
            )
    return _outputs(template, resolve)


# --- CloudFormation ------------------------------------------------------------------------------


def _stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def deploy_stack(
    cfn: Any, name: str, template_body: str, stage: str, *, poll_seconds: float = 0.5
) -> dict[str, Any]:
    """Creates the stack unless it exists, waits until it is complete; the stack description.

    An existing complete stack is read as it is, not updated. A stack whose creation failed
    (ROLLBACK_COMPLETE, so nothing of it exists) is deleted and created again.
    """
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        stack = _stack(cfn, name)
        status = stack["StackStatus"] if stack else "ABSENT"
        if status in STACK_DONE:
            return stack
        if status == "ROLLBACK_COMPLETE":
            log.warning("stack %s failed to create before (%s); recreating", name, status)
            cfn.delete_stack(StackName=name)
        elif status in ("ABSENT", "DELETE_COMPLETE"):
            try:
                cfn.create_stack(
                    StackName=name,
                    TemplateBody=template_body,
                    Parameters=[{"ParameterKey": "Stage", "ParameterValue": stage}],
                )
            except ClientError as error:
                if "AlreadyExists" not in str(error):  # else another instance is creating it
                    raise
            continue  # moto creates stacks at once: look again before sleeping
        elif not status.endswith("_IN_PROGRESS"):
            reason = stack.get("StackStatusReason", "")
            raise RuntimeError(f"stack {name} is {status}: {reason}")
        time.sleep(poll_seconds)
    raise TimeoutError(f"stack {name} did not complete within 15 minutes")


def stack_shortfalls(
    template: dict[str, Any], stage: str, cfn: Any, name: str, sns: Any, sqs: Any
) -> list[str]:
    """What the endpoint left out of the stack it reports complete (empty if nothing)."""
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    }
    shortfalls = [
        f"{logical_id} ({resource['Type']}) was not created"
        for logical_id, resource in template["Resources"].items()
        if not physical.get(logical_id)
    ]
    if shortfalls:
        return shortfalls
    resolve = _Resolver(_parameters(template, stage), sqs)
    resolve.refs.update(physical)
    for logical_id, _ in resources_of(template, "AWS::SNS::Topic"):
        resolve.arns[logical_id] = physical[logical_id]
    for logical_id, props in resources_of(template, "AWS::SQS::Queue"):
        want = _queue_attributes(props, resolve)
        have = sqs.get_queue_attributes(QueueUrl=physical[logical_id], AttributeNames=["All"])
        shortfalls += _differences(logical_id, want, have["Attributes"])
    for logical_id, props in resources_of(template, "AWS::SQS::QueuePolicy"):
        for url in resolve(props["Queues"]):
            have = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
            if not have.get("Attributes", {}).get("Policy"):
                shortfalls.append(f"{logical_id} left {url} without a policy")
    for logical_id, props in resources_of(template, "AWS::SNS::Subscription"):
        want = _subscription_attributes(props)
        have = sns.get_subscription_attributes(SubscriptionArn=physical[logical_id])
        shortfalls += _differences(logical_id, want, have["Attributes"])
    return shortfalls


def _differences(logical_id: str, want: dict[str, str], have: dict[str, str]) -> list[str]:
    def normal(name: str, value: str | None) -> Any:
        if value is None or name not in ("RedrivePolicy", "FilterPolicy"):
            return value
        # Emulators rewrite JSON attributes (spacing, "5" for 5, the order of a list).
        return {
            k: sorted(map(str, v)) if isinstance(v, list) else str(v)
            for k, v in json.loads(value).items()
        }

    return [
        f"{logical_id}.{name} is {have.get(name)!r}, the template says {value!r}"
        for name, value in want.items()
        if normal(name, have.get(name)) != normal(name, value)
    ]


# --- the entry point -----------------------------------------------------------------------------


def _session(endpoint_url: str | None, region: str) -> boto3.session.Session:
    credentials = {}
    if endpoint_url and not os.environ.get("AWS_ACCESS_KEY_ID"):
        # Local endpoints accept any credentials; boto3 refuses to sign without some.
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.session.Session(region_name=region, **credentials)


def _outputs_of(stack: dict[str, Any]) -> dict[str, str]:
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def provision(
    stage: str, *, endpoint_url: str | None = None, region: str | None = None
) -> dict[str, str]:
    """Deploys the template as stack boxoffice-<stage>; returns its Outputs.

    endpoint_url defaults to AWS_ENDPOINT_URL; without either this talks to AWS itself, where
    CloudFormation alone does the work. On a local endpoint whatever CloudFormation did not build
    faithfully is made with direct SNS/SQS calls, and the Outputs then name the queues by the
    URLs the endpoint itself answers.
    """
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    region = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = _session(endpoint_url, region)
    config = LOCAL_ENDPOINT_CONFIG if endpoint_url else None
    cfn, sns, sqs = (
        session.client(service, endpoint_url=endpoint_url, config=config)
        for service in ("cloudformation", "sns", "sqs")
    )
    name = f"boxoffice-{stage}"
    if endpoint_url is None:
        return _outputs_of(deploy_stack(cfn, name, TEMPLATE.read_text(), stage, poll_seconds=5))

    template = load_template()
    try:
        stack = deploy_stack(cfn, name, TEMPLATE.read_text(), stage)
        shortfalls = stack_shortfalls(template, stage, cfn, name, sns, sqs)
    except (BotoCoreError, ClientError, RuntimeError) as error:
        stack, shortfalls = {}, [f"CloudFormation failed: {error}"]
    if not shortfalls:
        log.info("stack %s is complete at %s (CloudFormation)", name, endpoint_url)
        return _outputs_of(stack)
    log.info(
        "stack %s at %s is not faithful to the template (%s); applying it with SNS/SQS calls",
        name,
        endpoint_url,
        "; ".join(shortfalls),
    )
    return apply_directly(template, stage, sns, sqs)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.aws.provision", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--stage", default=os.environ.get("STAGE", "local"))
    parser.add_argument("--endpoint-url", default=None, help="default: $AWS_ENDPOINT_URL")
    parser.add_argument("--region", default=None, help="default: $AWS_DEFAULT_REGION or us-east-1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    outputs = provision(args.stage, endpoint_url=args.endpoint_url, region=args.region)
    print(json.dumps(outputs, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
