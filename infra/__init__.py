"""The stack's CloudFormation (boxoffice.yaml, aws.yaml) and the tool that packages it."""
