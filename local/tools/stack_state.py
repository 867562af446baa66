"""A deployed stack's state, in the shape `local-stack dev` writes for the running local stack.

    stack_state.py STACK_NAME > state.json

The end-to-end tests read it (E2E_STACK_STATE=state.json, what `make e2e-aws STACK=...` sets) to
drive the deployed stack instead of a local one: the REST API's URL and key, the WebSocket URL,
and every logical id's physical id (what `Ref` gives: table and bucket names, queue URLs, topic
and state machine ARNs), straight from CloudFormation. Runs in .venv-sam (boto3 comes with the SAM
CLI) with the default credentials chain and region, as the AWS CLI does.
"""

import json
import sys

import boto3


def stack_state(stack_name: str) -> dict:
    cloudformation = boto3.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    resources = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for resource in page["StackResourceSummaries"]:
            resources[resource["LogicalResourceId"]] = {
                "ref": resource.get("PhysicalResourceId"),
                "type": resource["ResourceType"],
            }
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    key = boto3.client("apigateway").get_api_key(apiKey=outputs["RestApiKeyId"], includeValue=True)
    return {
        "target": "aws",
        "stack": stack_name,
        "region": cloudformation.meta.region_name,
        "gateway": outputs["RestApiUrl"].rstrip("/"),
        "api_key": key["value"],
        "websockets": {"ChatWebSocketApi": outputs["ChatWebSocketUrl"]},
        "web": outputs.get("WebAppUrl", "").rstrip("/") + "/",
        "cors_allow_origin": parameters.get("CorsAllowOrigin", "*"),
        "resources": resources,
        "outputs": outputs,
    }


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: stack_state.py STACK_NAME", file=sys.stderr)
        return 2
    json.dump(stack_state(sys.argv[1]), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
