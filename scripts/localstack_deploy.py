"""Deploy the packaged stack (dist/<stage>/) to a LocalStack endpoint's CloudFormation and report
what it created, resource by resource. A trial, not a test: LocalStack on this host runs without
Docker, so it can create some resources and not others (docs/deploy.md has the last result).

    LOCALSTACK_PORT=4617 LOCALSTACK_SERVICES=cloudformation,sqs,sns,iam,sts,lambda,apigateway,\\
        events,logs,cloudwatch,s3,secretsmanager,ec2 bash scripts/localstack.sh
    .venv/bin/python scripts/localstack_deploy.py http://127.0.0.1:4617 [dist/prod]
    .venv/bin/python scripts/localstack_deploy.py http://127.0.0.1:4617 --without-functions
    bash scripts/localstack.sh stop   # with the same LOCALSTACK_PORT

--without-functions leaves out the Lambda functions (LocalStack cannot create one without Docker)
and everything that refers to them, to see whether the rest of the stack deploys.

It does what `aws cloudformation package` + `deploy` would: uploads deployment.zip to a bucket,
points the functions' CodeUri at it, and creates the stack with the parameters docs/deploy.md
lists (the VPC's from LocalStack's default VPC, the endpoints placeholders, real secrets).
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.package import functions, load  # noqa: E402

DONE = {"CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED"}


def references(value: object) -> set[str]:
    """Logical ids a template value refers to (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
            found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def without_functions(template: dict) -> dict:
    """The template less its functions and whatever refers to them, directly or not."""
    resources = template["Resources"]
    gone = set(functions(template))
    changed = True
    while changed:
        changed = False
        for name, resource in resources.items():
            depends = resource.get("DependsOn", [])
            uses = references(resource) | set(depends if isinstance(depends, list) else [depends])
            if name not in gone and uses & gone:
                gone.add(name)
                changed = True
    template["Resources"] = {n: r for n, r in resources.items() if n not in gone}
    template["Outputs"] = {
        n: o for n, o in template.get("Outputs", {}).items() if not references(o) & gone
    }
    template.pop("Globals", None)
    print(f"left out: {', '.join(sorted(gone))}")
    return template


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    endpoint = args[0] if args else "http://127.0.0.1:4566"
    package = Path(args[1]) if len(args) > 1 else ROOT / "dist" / "prod"

    def aws(service: str):
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    run = uuid.uuid4().hex[:6]
    bucket = f"boxoffice-artifacts-{run}"
    aws("s3").create_bucket(Bucket=bucket)
    aws("s3").upload_file(str(package / "deployment.zip"), bucket, "deployment.zip")
    template = load(package / "sam.yaml")
    for function in functions(template).values():
        function["Properties"]["CodeUri"] = f"s3://{bucket}/deployment.zip"
    if "--without-functions" in sys.argv:
        template = without_functions(template)

    ec2 = aws("ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    groups = [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]][:1]
    secrets = aws("secretsmanager")
    database_secret = secrets.create_secret(
        Name=f"boxoffice-{run}/database", SecretString='{"username":"u","password":"p"}'
    )["ARN"]
    jwt_secret = secrets.create_secret(Name=f"boxoffice-{run}/jwt", SecretString="j" * 40)["ARN"]
    parameters = {
        "SubnetIds": ",".join(subnets),
        "SecurityGroupIds": ",".join(groups),
        "DatabaseProxyEndpoint": "proxy.boxoffice.invalid",
        "DatabaseSecretArn": database_secret,
        "JwtSecretArn": jwt_secret,
        "RedisEndpoint": "redis.boxoffice.invalid",
    }
    cloudformation = aws("cloudformation")
    stack = f"boxoffice-{run}"
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=yaml.safe_dump(template, sort_keys=False),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    status = ""
    deadline = time.monotonic() + 600
    while status not in DONE and time.monotonic() < deadline:
        time.sleep(3)
        status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    print(f"stack {stack}: {status}")
    resources = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    for resource in sorted(resources, key=lambda r: (r["ResourceType"], r["LogicalResourceId"])):
        reason = resource.get("ResourceStatusReason", "")
        print(
            f"  {resource['ResourceStatus']:16} {resource['ResourceType']:36} "
            f"{resource['LogicalResourceId']}  {reason[:160]}"
        )
    failures = [
        e
        for e in cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
        if e["ResourceStatus"].endswith("FAILED")
    ]
    for event in failures:
        reason = event.get("ResourceStatusReason", "")[:400]
        print(f"  FAILED {event['LogicalResourceId']}: {reason}")
    return 0 if status == "CREATE_COMPLETE" else 1


if __name__ == "__main__":
    sys.exit(main())
