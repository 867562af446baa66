"""Publishes the web app to a deployed stack (`make web-publish STACK=... | ENV=...`): every file
of web/ to the stack's WebAppBucket with its content type and cache policy, a config.json written
from the stack's outputs (API URL, WebSocket URL, API key, the user pool, its app client and
the regional Cognito endpoint), stale objects removed, and one
CloudFront invalidation. Default credentials and region, as the AWS CLI.

The files are uploaded as the local stack serves them (local/src/web.rs): the same extensions,
nothing else, and every one revalidated on each load (`no-cache`; an ETag answers 304): the
modules are not content-hashed, so a cached old module beside a new index.html would mix two
versions of the app."""

import json
import mimetypes
import pathlib
import sys
import time

import boto3

import stack_state

ROOT = pathlib.Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
SERVED = {".html", ".js", ".css", ".json", ".svg", ".png", ".ico"}


def app_config(state: dict) -> dict:
    """What the app reads from config.json (web/app.js)."""
    return {
        "apiUrl": state["gateway"],
        "websocketUrl": state["websockets"]["ChatWebSocketApi"],
        "apiKey": state["api_key"],
        "cognitoEndpoint": f"https://cognito-idp.{state['region']}.amazonaws.com/",
        "userPoolId": state["outputs"]["UserPoolId"],
        "userPoolClientId": state["outputs"]["UserPoolClientId"],
    }


def plan(web: pathlib.Path, config: dict) -> list[tuple[str, bytes, str, str]]:
    """(key, body, content type, cache control) of every object the bucket should hold."""
    objects = []
    for path in sorted(p for p in web.rglob("*") if p.is_file()):
        key = path.relative_to(web).as_posix()
        if path.suffix not in SERVED or any(part.startswith(".") for part in key.split("/")):
            continue
        if key == "config.json":
            continue  # written below from the stack, never a local leftover
        objects.append((key, path.read_bytes()))
    objects.append(("config.json", json.dumps(config, indent=1).encode()))
    planned = []
    for key, body in objects:
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("image/svg+xml",):
            content_type += "; charset=utf-8"
        planned.append((key, body, content_type, "no-cache"))
    return planned


def publish(state: dict, web: pathlib.Path = WEB) -> dict:
    outputs = state["outputs"]
    bucket, distribution = outputs["WebAppBucketName"], outputs["WebAppDistributionId"]
    s3 = boto3.client("s3")
    planned = plan(web, app_config(state))
    for key, body, content_type, cache in planned:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, CacheControl=cache)
    wanted = {key for key, *_ in planned}
    stale = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        stale += [o["Key"] for o in page.get("Contents", []) if o["Key"] not in wanted]
    for start in range(0, len(stale), 1000):
        deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[start:start + 1000]]})
        # Per-key failures come back in the answer, not as an exception.
        if deleted.get("Errors"):
            raise RuntimeError(f"could not remove stale objects: {deleted['Errors']}")
    invalidation = boto3.client("cloudfront").create_invalidation(
        DistributionId=distribution,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(time.time_ns())},
    )
    return {
        "url": outputs["WebAppUrl"],
        "uploaded": sorted(wanted),
        "removed": stale,
        "invalidation": invalidation["Invalidation"]["Id"],
        "cors_allow_origin": state["cors_allow_origin"],
    }


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: web_publish.py STACK_NAME", file=sys.stderr)
        return 2
    result = publish(stack_state.stack_state(sys.argv[1]))
    print(f"published {len(result['uploaded'])} files; CloudFront invalidation {result['invalidation']}")
    print(f"Web app: {result['url']}")
    if result["cors_allow_origin"] != result["url"]:
        print(
            f"note: CorsAllowOrigin is {result['cors_allow_origin']!r}; to allow only this app, deploy with "
            f"--parameter-overrides CorsAllowOrigin={result['url']} (README, 'The web app')"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
