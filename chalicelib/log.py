"""Structured JSON logs with levels; every line carries the request id of the invocation."""

from aws_lambda_powertools import Logger

logger = Logger(service="boxoffice")
