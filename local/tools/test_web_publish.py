"""web_publish.py against moto's S3 and CloudFront (in-process): every app file lands with its
content type and cache policy, config.json comes from the stack, a stale object goes, and the
distribution is invalidated (make test runs this; `make web-publish` runs it for real)."""

import json
import os
import pathlib
import sys

import boto3
from moto import mock_aws

sys.path.insert(0, os.path.dirname(__file__))
import web_publish  # noqa: E402


def main() -> int:
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="web-bucket")
        s3.put_object(Bucket="web-bucket", Key="old.js", Body=b"stale")
        distribution = boto3.client("cloudfront").create_distribution(DistributionConfig={
            "CallerReference": "t", "Comment": "", "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "web-bucket.s3.amazonaws.com",
                                                  "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "redirect-to-https",
                                     "TrustedSigners": {"Enabled": False, "Quantity": 0}, "MinTTL": 0,
                                     "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}}},
        })["Distribution"]
        state = {
            "gateway": "https://abc.execute-api.us-east-1.amazonaws.com/prod",
            "websockets": {"ChatWebSocketApi": "wss://def.execute-api.us-east-1.amazonaws.com/prod"},
            "api_key": "the-key",
            "cors_allow_origin": "*",
            "region": "eu-west-1",
            "outputs": {"WebAppBucketName": "web-bucket", "WebAppDistributionId": distribution["Id"],
                        "WebAppUrl": "https://d111.cloudfront.net", "UserPoolId": "eu-west-1_pool",
                        "UserPoolClientId": "client1"},
        }
        result = web_publish.publish(state)
        head = lambda key: s3.head_object(Bucket="web-bucket", Key=key)  # noqa: E731
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="web-bucket")["Contents"]}
        config = json.loads(s3.get_object(Bucket="web-bucket", Key="config.json")["Body"].read())
        app_files = {p.relative_to(web_publish.WEB).as_posix() for p in web_publish.WEB.rglob("*") if p.is_file()}
        checks = {
            "every app file uploaded": app_files - {"config.json"} <= keys,
            "the stale object removed": "old.js" not in keys and result["removed"] == ["old.js"],
            "index.html is html": head("index.html")["ContentType"] == "text/html; charset=utf-8",
            "every file revalidates": all(head(k)["CacheControl"] == "no-cache" for k in keys),
            "modules are javascript": head("pages/chat.js")["ContentType"].startswith("text/javascript"),
            "config from the stack": config == {"apiUrl": state["gateway"], "websocketUrl": state["websockets"]["ChatWebSocketApi"],
                                                "apiKey": "the-key",
                                                "cognitoEndpoint": "https://cognito-idp.eu-west-1.amazonaws.com/",
                                                "userPoolId": "eu-west-1_pool", "userPoolClientId": "client1"},
            "invalidated": bool(result["invalidation"]),
            "served types only": all(pathlib.Path(k).suffix in web_publish.SERVED for k in keys),
        }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        print(f"web_publish.py: {failed} wrong ({sorted(keys)})", file=sys.stderr)
        return 1
    print(f"web_publish.py: {len(checks)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
