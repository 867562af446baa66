"""stack_state.py against moto's CloudFormation (in-process): the state file has the shape the
end-to-end tests read (make test runs this; `make e2e-aws` runs stack_state.py for real)."""

import json
import os
import sys

import boto3
from moto import mock_aws

sys.path.insert(0, os.path.dirname(__file__))
import stack_state  # noqa: E402


def main() -> int:
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        key = boto3.client("apigateway").create_api_key(name="k", enabled=True, value="the-key-value-0123456789")
        template = {
            "Resources": {"PhotoUploadQueue": {"Type": "AWS::SQS::Queue"}, "ItemsTopic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {
                "RestApiUrl": {"Value": "https://abc.execute-api.us-east-1.amazonaws.com/prod/"},
                "RestApiKeyId": {"Value": key["id"]},
                "ChatWebSocketUrl": {"Value": "wss://def.execute-api.us-east-1.amazonaws.com/prod"},
                "WebAppUrl": {"Value": "https://d111.cloudfront.net"},
            },
            "Parameters": {"CorsAllowOrigin": {"Type": "String", "Default": "*"}},
        }
        boto3.client("cloudformation").create_stack(
            StackName="kit-dev",
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": "CorsAllowOrigin", "ParameterValue": "https://d111.cloudfront.net"}],
        )
        state = stack_state.stack_state("kit-dev")
    checks = {
        "target": state["target"] == "aws",
        "stack": state["stack"] == "kit-dev",
        "gateway without trailing slash": state["gateway"] == "https://abc.execute-api.us-east-1.amazonaws.com/prod",
        "api key value": state["api_key"] == "the-key-value-0123456789",
        "websocket": state["websockets"]["ChatWebSocketApi"].startswith("wss://def."),
        "web app with a trailing slash": state["web"] == "https://d111.cloudfront.net/",
        "the stack's CORS origin": state["cors_allow_origin"] == "https://d111.cloudfront.net",
        "queue ref is its URL": state["resources"]["PhotoUploadQueue"]["ref"].startswith("https://"),
        "topic ref is its ARN": state["resources"]["ItemsTopic"]["ref"].startswith("arn:aws:sns:"),
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        print(f"stack_state.py: {failed} wrong in {json.dumps(state, indent=1)}", file=sys.stderr)
        return 1
    print(f"stack_state.py: {len(checks)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
