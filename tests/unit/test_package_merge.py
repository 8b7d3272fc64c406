"""infra/package.py's merge, without building anything: our two templates must agree, and laying
them over Chalice's output adds resources, overrides the generated functions' properties and
replaces intrinsic functions whole."""

from __future__ import annotations

import copy

import pytest

from infra import package as packaging


def chalice_output() -> dict:
    return {
        "Transform": "AWS::Serverless-2016-10-31",
        "Parameters": {},
        "Outputs": {"RestAPIId": {"Value": {"Ref": "RestAPI"}}},
        "Resources": {
            "Worker": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Handler": "app.worker",
                    "MemorySize": 1024,
                    "Role": "arn:aws:iam::000000000000:role/placeholder",
                    "Environment": {"Variables": {"STAGE": "prod"}},
                    "Events": {
                        "WorkerSqsEventSource": {
                            "Type": "SQS",
                            "Properties": {
                                "BatchSize": 10,
                                "Queue": {"Fn::Sub": "arn:${AWS::Partition}:sqs:::work"},
                            },
                        }
                    },
                },
            }
        },
    }


OURS = {
    "Parameters": {"Stage": {"Type": "String", "Default": "local"}},
    "Resources": {
        "WorkQueue": {"Type": "AWS::SQS::Queue"},
        "WorkerRole": {"Type": "AWS::IAM::Role"},
        "Worker": {
            "Properties": {
                "Role": {"Fn::GetAtt": ["WorkerRole", "Arn"]},
                "Environment": {"Variables": {"QUEUE": {"Ref": "WorkQueue"}}},
                "Events": {
                    "WorkerSqsEventSource": {
                        "Properties": {"Queue": {"Fn::GetAtt": ["WorkQueue", "Arn"]}}
                    }
                },
            }
        },
    },
}


def test_our_templates_must_agree() -> None:
    first = {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"DelaySeconds": 0}}}}
    same = copy.deepcopy(first)
    assert packaging.combine(first, same) == first
    other = {"Resources": {"Q": {"Properties": {"DelaySeconds": 5}}}}
    with pytest.raises(packaging.PackagingError, match=r"Resources\.Q\.Properties\.DelaySeconds"):
        packaging.combine(first, other)


def test_overrides_merge_properties_and_replace_intrinsics_whole() -> None:
    merged = packaging.lay_over(chalice_output(), OURS)
    worker = merged["Resources"]["Worker"]["Properties"]
    assert worker["Role"] == {"Fn::GetAtt": ["WorkerRole", "Arn"]}
    assert worker["MemorySize"] == 1024  # untouched
    assert worker["Environment"]["Variables"] == {"STAGE": "prod", "QUEUE": {"Ref": "WorkQueue"}}
    source = worker["Events"]["WorkerSqsEventSource"]["Properties"]
    # Chalice's own deep merge would leave {"Fn::Sub": ..., "Fn::GetAtt": ...} here.
    assert source == {"BatchSize": 10, "Queue": {"Fn::GetAtt": ["WorkQueue", "Arn"]}}
    assert merged["Outputs"] == {"RestAPIId": {"Value": {"Ref": "RestAPI"}}}
    assert {"WorkQueue", "WorkerRole"} <= set(merged["Resources"])


def test_an_override_of_a_function_chalice_did_not_generate_is_an_error() -> None:
    ours = {"Resources": {"Renamed": {"Properties": {"MemorySize": 128}}}}
    with pytest.raises(packaging.PackagingError, match="did not generate"):
        packaging.lay_over(chalice_output(), ours)
    clash = {"Resources": {"Worker": {"Type": "AWS::Serverless::Function"}}}
    with pytest.raises(packaging.PackagingError, match="also generated"):
        packaging.lay_over(chalice_output(), clash)


def test_the_stack_is_pinned_to_its_stage_and_every_function_has_its_role() -> None:
    finished = packaging.finish(packaging.lay_over(chalice_output(), OURS), "prod")
    assert finished["Parameters"]["Stage"]["AllowedValues"] == ["prod"]
    assert finished["Parameters"]["Stage"]["Default"] == "prod"
    without_role = copy.deepcopy(OURS)
    del without_role["Resources"]["Worker"]["Properties"]["Role"]
    with pytest.raises(packaging.PackagingError, match="no role of its own"):
        packaging.finish(packaging.lay_over(chalice_output(), without_role), "prod")


def test_the_repository_templates_merge() -> None:
    ours: dict = {}
    for path in packaging.TEMPLATES:
        ours = packaging.combine(ours, packaging.load(path))
    overridden = {n for n, r in ours["Resources"].items() if "Type" not in r}
    assert overridden == {
        "APIHandler",
        "RelayOutbox",
        "Sweep",
        "ExpireHolds",
        "SendReceipts",
        "CountSales",
    }
