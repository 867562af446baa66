//! Amazon S3 (Service Authorization Reference: "Actions, resources, and condition keys for
//! Amazon S3"): objects and buckets, path or virtual-hosted style, presigned or signed.

use super::*;

pub(super) fn s3(request: &HttpRequest<'_>) -> Result<Call, Unmapped> {
    let s = "s3";
    let (bucket, key) = s3_bucket_and_key(request);
    if bucket.is_empty() {
        return match request.method {
            "GET" => Ok(Call::new(
                s,
                "ListBuckets",
                vec![("s3:ListAllMyBuckets".into(), "*".into())],
            )),
            other => Err(unmapped(s, format!("{other} on the service"))),
        };
    }
    s3_refuse_unmapped_parts(request, key.is_empty())?;
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    if key.is_empty() {
        s3_bucket_call(request, bucket_arn)
    } else {
        s3_object_call(request, format!("{bucket_arn}/{key}"))
    }
}

/// The bucket and key a request names: virtual-hosted style only under an S3 host name
/// (`bucket.s3[.region].amazonaws.com`, `bucket.localhost`); an IP address or any other host is
/// path style, as the emulator reads it.
fn s3_bucket_and_key(request: &HttpRequest<'_>) -> (String, String) {
    let host = request
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default(); // no Host header: path style, as the emulator reads it
    let path = request.path.trim_start_matches('/');
    let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let virtual_bucket = hostname
        .split_once('.')
        .filter(|(_, rest)| {
            *rest == "localhost"
                || (rest.starts_with("s3.") || rest.starts_with("s3-"))
                    && rest.ends_with(".amazonaws.com")
        })
        .map(|(b, _)| b.to_string())
        .filter(|b| !b.is_empty());
    match virtual_bucket {
        Some(bucket) => (bucket, decode(path)),
        None => match path.split_once('/') {
            Some((b, k)) => (decode(b), decode(k)),
            None => (decode(path), String::new()),
        },
    }
}

/// Only the query parameters of the mapped operations (ListObjectsV2's, the SDK's `x-id`, a
/// presigned URL's X-Amz-*) and no ACL or tagging headers: a subresource (`?acl`, `?uploadId`,
/// `?encryption`, ...) is another operation, not mapped here.
fn s3_refuse_unmapped_parts(request: &HttpRequest<'_>, on_bucket: bool) -> Result<(), Unmapped> {
    const LIST: [&str; 8] = [
        "list-type",
        "prefix",
        "delimiter",
        "continuation-token",
        "max-keys",
        "start-after",
        "encoding-type",
        "fetch-owner",
    ];
    let method = request.method;
    for (name, _) in request.query {
        let listing = on_bucket && method == "GET" && LIST.contains(&name.as_str());
        if !(name == "x-id" || name.starts_with("X-Amz-") || listing) {
            return Err(unmapped("s3", format!("{method} with ?{name}")));
        }
    }
    for header in [
        "x-amz-acl",
        "x-amz-tagging",
        "x-amz-grant-full-control",
        "x-amz-grant-read",
    ] {
        if request.headers.contains_key(header) {
            return Err(unmapped("s3", format!("{method} with {header}")));
        }
    }
    Ok(())
}

fn s3_bucket_call(request: &HttpRequest<'_>, bucket_arn: String) -> Result<Call, Unmapped> {
    match request.method {
        "GET" | "HEAD" => {
            let prefix = request
                .query
                .iter()
                .find(|(k, _)| k == "prefix")
                .map(|(_, v)| v.clone())
                .unwrap_or_default(); // a listing without a prefix lists from the start ("")
            let op = if request.method == "HEAD" {
                "HeadBucket"
            } else {
                "ListObjectsV2"
            };
            let mut c = Call::new("s3", op, vec![("s3:ListBucket".to_string(), bucket_arn)]);
            c.context.insert("s3:prefix".to_string(), vec![prefix]);
            Ok(c)
        }
        "PUT" => Ok(Call::new(
            "s3",
            "CreateBucket",
            vec![("s3:CreateBucket".to_string(), bucket_arn)],
        )),
        other => Err(unmapped("s3", format!("{other} on a bucket"))),
    }
}

fn s3_object_call(request: &HttpRequest<'_>, object_arn: String) -> Result<Call, Unmapped> {
    let (op, checks) = match request.method {
        "GET" => ("GetObject", vec![("s3:GetObject".to_string(), object_arn)]),
        // HeadObject is authorised as s3:GetObject.
        "HEAD" => ("HeadObject", vec![("s3:GetObject".to_string(), object_arn)]),
        "PUT" => {
            let mut checks = vec![("s3:PutObject".to_string(), object_arn)];
            if let Some(source) = request
                .headers
                .get("x-amz-copy-source")
                .and_then(|v| v.to_str().ok())
            {
                if source.contains('?') {
                    return Err(unmapped("s3", "a copy of an object version"));
                }
                let source = decode(source.trim_start_matches('/'));
                checks.push(("s3:GetObject".to_string(), format!("arn:aws:s3:::{source}")));
            }
            ("PutObject", checks)
        }
        "DELETE" => (
            "DeleteObject",
            vec![("s3:DeleteObject".to_string(), object_arn)],
        ),
        other => return Err(unmapped("s3", format!("{other} on an object"))),
    };
    Ok(Call::new("s3", op, checks))
}
