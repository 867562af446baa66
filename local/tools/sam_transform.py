#!/usr/bin/env python3
"""The SAM transform, run locally: template.yaml -> the CloudFormation template AWS receives.

aws-sam-translator is the library behind `sam build`, `sam validate` and CloudFormation's
AWS::Serverless-2016-10-31 transform (pinned in local/requirements-sam.txt, the version SAM CLI
pins). The translator refuses local paths in CodeUri/DefinitionUri (they are packaged to S3 by
`sam deploy`), so they are replaced with placeholders that keep the path:
`s3://local-placeholder/<path>`; the local stack maps them back to the crate or file.

    sam_transform.py TEMPLATE [--parameter Name=Value ...] [--region R]                     > transformed.json
"""
import argparse
import json
import os
import sys

from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

PLACEHOLDER_BUCKET = "local-placeholder"


class BundledManagedPolicies:
    """Managed policy names -> ARNs from the map the translator ships (no IAM call)."""

    def __init__(self, partition):
        self.partition = partition

    def load(self):
        return get_bundled_managed_policy_map(self.partition) or {}


def placeholders(template):
    """Local CodeUri/DefinitionUri paths -> s3://local-placeholder/<path> (Globals included)."""
    sections = [template.get("Resources", {})]
    for body in sections[0].values():
        props = body.get("Properties") or {}
        for key in ("CodeUri", "DefinitionUri", "ContentUri"):
            value = props.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                props[key] = f"s3://{PLACEHOLDER_BUCKET}/{value.strip('./')}"
    for section in (template.get("Globals") or {}).values():
        value = section.get("CodeUri") if isinstance(section, dict) else None
        if isinstance(value, str) and not value.startswith("s3://"):
            section["CodeUri"] = f"s3://{PLACEHOLDER_BUCKET}/{value.strip('./')}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("template")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()

    with open(args.template, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    placeholders(template)
    parameters = {}
    for pair in args.parameter:
        name, sep, value = pair.partition("=")
        if not sep:
            sys.exit(f"--parameter {pair}: expected Name=Value")
        parameters[name] = value
    # The translator needs a region (for ARNs it builds); everything else stays an intrinsic
    # for CloudFormation (here: the local stack) to resolve, as in AWS.
    os.environ["AWS_DEFAULT_REGION"] = args.region
    parameters.setdefault("AWS::Region", args.region)
    parameters.setdefault("AWS::Partition", "aws")
    try:
        out = transform(template, parameters, BundledManagedPolicies("aws"))
    except InvalidDocumentException as err:
        for cause in err.causes:
            print(f"sam transform: {cause.message}", file=sys.stderr)
        sys.exit(1)
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
