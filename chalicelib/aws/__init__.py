"""Adapters for AWS: SNS/SQS clients, provisioning from infra/, an embedded endpoint."""
