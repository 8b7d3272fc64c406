"""Applies infra/boxoffice.yaml to a local AWS endpoint (moto, LocalStack) and answers its Outputs
(topic ARN, queue URLs).

On AWS, CloudFormation applies the template (dist/<stage>/, `make package`). Locally this reads
the same file and makes what it declares (the SNS topic, the SQS queues and their dead-letter
queues, the queue policy, the subscriptions with their filter policies) with direct SNS/SQS calls,
which are idempotent: every `make run`, and every instance of it, calls this at start, and again
whenever the endpoint has lost what it made (a restarted emulator without persistence).
Emulators' own CloudFormation is not used: moto 5.2.5 reports subscriptions and queue policies
created without creating them.

    python -m devtools.provision --stage local     # prints the outputs as JSON
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config

TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "boxoffice.yaml"
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
# A local endpoint answers at once or not at all: no long back-off between attempts.
LOCAL_ENDPOINT_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2)


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


def apply_template(template: dict[str, Any], stage: str, sns: Any, sqs: Any) -> dict[str, str]:
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


# --- the entry point -----------------------------------------------------------------------------


def provision(
    stage: str, *, endpoint_url: str | None = None, region: str | None = None
) -> dict[str, str]:
    """Creates, or brings up to the template, the stage's topic, queues and subscriptions on a
    local AWS endpoint (default AWS_ENDPOINT_URL); returns the template's Outputs. Idempotent, so
    every instance may call it at any time, and calls it again when the endpoint has lost them."""
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint_url:
        raise SystemExit(
            "provision is for local endpoints; on AWS, deploy dist/<stage>/ (make package)"
        )
    region = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    credentials = {}
    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        # Local endpoints accept any credentials; boto3 refuses to sign without some.
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    session = boto3.session.Session(region_name=region, **credentials)
    sns, sqs = (
        session.client(service, endpoint_url=endpoint_url, config=LOCAL_ENDPOINT_CONFIG)
        for service in ("sns", "sqs")
    )
    return apply_template(load_template(), stage, sns, sqs)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.provision", description=__doc__.splitlines()[0]
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
