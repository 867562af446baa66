//! What S3 refuses of a presigned URL before any policy (moto checks neither): a request
//! without every header the URL signed (`X-Amz-SignedHeaders`, e.g. the upload ticket's
//! content-type, content-length and `x-amz-meta-*`) does not match the signature; a URL past
//! `X-Amz-Date` + `X-Amz-Expires` has expired
//! (docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html). The signature itself
//! is not recomputed.

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use crate::aws_errors::AwsError;
use crate::gate::audit::refused;
use crate::gate::body::{BufferedRequest, buffered};

/// Layer: a presigned request S3 would refuse never reaches the emulator.
pub async fn refuse_mismatched(request: Request, next: Next) -> Response {
    let now = OffsetDateTime::now_utc();
    match refusal(request.headers(), buffered(&request), now) {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    }
}

/// S3's answer to a presigned request at `now`, if it refuses it.
pub fn refusal(
    headers: &HeaderMap,
    request: &BufferedRequest,
    now: OffsetDateTime,
) -> Option<AwsError> {
    let signed = request.param("X-Amz-SignedHeaders")?;
    let missing: Vec<&str> = signed
        .split(';')
        .filter(|h| !h.eq_ignore_ascii_case("host") && !headers.contains_key(*h))
        .collect();
    if !missing.is_empty() {
        refused(&format!(
            "presigned request without its signed headers {missing:?}"
        ));
        return Some(AwsError::new(
            "s3",
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }
    let issued = request.param("X-Amz-Date").and_then(|d| {
        time::PrimitiveDateTime::parse(
            d,
            time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
        )
        .ok()
    })?;
    let expires: i64 = request.param("X-Amz-Expires")?.parse().ok()?;
    let deadline = issued.assume_utc() + time::Duration::seconds(expires);
    (now > deadline).then(|| {
        AwsError::new(
            "s3",
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Request has expired",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn presigned(signed_headers: &str) -> BufferedRequest {
        let query = [
            ("X-Amz-SignedHeaders", signed_headers),
            ("X-Amz-Date", "20261207T100000Z"),
            ("X-Amz-Expires", "300"),
        ];
        BufferedRequest {
            body: Default::default(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_signed_header_left_out_does_not_match_the_signature() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "image/jpeg".parse().unwrap());
        let in_time = datetime!(2026-12-07 10:01:00 UTC);
        let request = presigned("content-type;content-length;host");
        let error = refusal(&headers, &request, in_time).unwrap();
        assert_eq!(error.code, "SignatureDoesNotMatch");
        headers.insert("content-length", "10".parse().unwrap());
        assert_eq!(refusal(&headers, &request, in_time), None);
    }

    #[test]
    fn a_url_past_its_expiry_is_refused() {
        let request = presigned("host");
        let late = datetime!(2026-12-07 10:05:01 UTC);
        let error = refusal(&HeaderMap::new(), &request, late).unwrap();
        assert_eq!(
            (error.code.as_str(), error.message.as_str()),
            ("AccessDenied", "Request has expired")
        );
        assert_eq!(
            refusal(
                &HeaderMap::new(),
                &request,
                datetime!(2026-12-07 10:05:00 UTC)
            ),
            None
        );
    }
}
