"""The scanner behind the IAM test (tests/support/aws_calls.py), on a small made-up project:
what it counts as an AWS call, and which handler reaches which call."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.aws_calls import CodeIndex

FILES = {
    "app.py": """
        from chalice import Chalice, Rate
        from chalicelib import jobs
        from chalicelib.web import pages as views

        app = Chalice(app_name="demo")

        @app.route("/")
        def index():
            return views.front()

        @app.on_sqs_message(queue="q")
        def consume(event):
            jobs.Worker().drain()

        @app.schedule(Rate(1, unit=Rate.MINUTES))
        def tick(event):
            jobs.send()
    """,
    "chalicelib/__init__.py": "",
    "chalicelib/aws/__init__.py": "",
    "chalicelib/aws/clients.py": """
        import boto3

        def client(service):
            return boto3.client(service)  # not a literal: the factory itself is no call
    """,
    "chalicelib/web/__init__.py": "",
    "chalicelib/web/pages.py": """
        from ..aws import clients
        from . import secrets_of_pages

        def front():
            sqs = clients.client("sqs")
            sqs.get_queue_url(QueueName="q")
            return secrets_of_pages.token()
    """,
    "chalicelib/web/routes.py": """
        from chalice import Blueprint
        from chalicelib.aws.clients import client

        routes = Blueprint(__name__)

        @routes.route("/topics")
        def topics():
            return client("sns").list_topics()
    """,
    "chalicelib/web/secrets_of_pages.py": """
        def token():
            from aws_lambda_powertools.utilities.parameters import get_secret as read
            return read("arn")
    """,
    "chalicelib/jobs.py": """
        import boto3
        from aws_lambda_powertools.utilities import parameters
        from chalicelib.aws import clients

        def send():
            clients.client("sns").publish_batch(TopicArn="t", PublishBatchRequestEntries=[])
            return boto3.session.Session().client("sqs").send_message_batch(QueueUrl="u")

        class Worker:
            def __init__(self):
                self._sqs = clients.client("sqs")

            def drain(self):
                for page in self._sqs.get_paginator("list_queues").paginate():
                    self._sqs.delete_message_batch(QueueUrl="u", Entries=[])
                return parameters.get_parameter("/p")

        def unused():
            clients.client("s3").delete_bucket(Bucket="b")

        def _own_client():
            return boto3.session.Session().client("sqs", region_name="r")

        def purge():
            sqs = _own_client()
            sqs.change_message_visibility(QueueUrl="u", ReceiptHandle="h", VisibilityTimeout=0)
    """,
    "devtools/runner.py": """
        import boto3
        boto3.client("sqs").purge_queue(QueueUrl="u")
    """,
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def operations(index: CodeIndex, handler: str) -> set[tuple[str, str]]:
    entries = index.app_handlers()[handler]
    return {(call.service, call.operation) for call in index.calls(entries)}


def test_each_handler_reaches_the_calls_of_what_it_names(project):
    index = CodeIndex(project)
    assert set(index.app_handlers()) == {"app.app", "app.consume", "app.tick"}
    assert operations(index, "app.app") == {
        ("sqs", "GetQueueUrl"),  # through a client held in a variable, via a relative import
        ("secretsmanager", "GetSecretValue"),  # powertools, imported inside the function
        ("sns", "ListTopics"),  # a route on a blueprint
    }
    assert operations(index, "app.consume") == {
        ("sqs", "ListQueues"),  # a paginator makes the operation's requests
        ("sqs", "DeleteMessageBatch"),  # through an attribute the client was assigned to
        ("ssm", "GetParameter"),
    }
    assert operations(index, "app.tick") == {("sns", "PublishBatch"), ("sqs", "SendMessageBatch")}
    # A client from a function that makes and returns it (`purge` is named by no handler).
    purge = index.units["chalicelib.jobs.purge"]
    assert {(c.service, c.operation) for c in purge.calls} == {("sqs", "ChangeMessageVisibility")}


def test_code_that_is_not_deployed_and_code_never_named_do_not_count(project):
    index = CodeIndex(project)
    every = {(c.service, c.operation) for c in index.calls(index.units)}
    assert ("sqs", "PurgeQueue") not in every  # devtools/ is not packaged, nor scanned
    assert ("s3", "DeleteBucket") in every  # it is there...
    reached = set().union(*(operations(index, h) for h in index.app_handlers()))
    assert ("s3", "DeleteBucket") not in reached  # ...but no handler names `unused`


def test_an_aws_looking_call_on_an_unknown_receiver_is_reported(project):
    (project / "chalicelib" / "mystery.py").write_text(
        "def poll(queue):\n    return queue.receive_message(QueueUrl='u')\n"
    )
    assert CodeIndex(project).unresolved() == {("chalicelib/mystery.py", 2, "receive_message")}
