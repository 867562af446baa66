//! What AWS authorises for a request: the IAM action(s), the resource ARN(s) and the condition
//! keys, derived from the HTTP request the SDK sent (the service from the SigV4 credential
//! scope, the operation from `X-Amz-Target`, the query `Action`, or the REST method and path).
//!
//! Only operations this project makes are mapped; anything else is [`Unmapped`] and the gate
//! refuses it, so a new SDK call cannot pass unchecked. The action names and ARN formats follow
//! the Service Authorization Reference ("Actions, resources, and condition keys for ...").

mod dynamodb;
mod s3;
mod secretsmanager;
mod ses;
mod sns;
mod sqs;
mod states;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::emulator::{ACCOUNT_ID, REGION};

/// One request as the gate sees it.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// Raw path (percent-encoded).
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// The authorisation one request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub service: String,
    /// The API operation (`PutItem`, `GetObject`, ...), for logs and the report.
    pub operation: String,
    /// Every (action, resource) pair that must be allowed.
    pub checks: Vec<(String, String)>,
    pub context: BTreeMap<String, Vec<String>>,
    /// Set for Step Functions task-token calls: the token, resolved by the gate to the state
    /// machine or activity that issued it.
    pub task_token: Option<String>,
    /// Set for DynamoDB Streams `GetRecords`: the iterator, resolved by the gate to its stream.
    pub shard_iterator: Option<String>,
}

impl Call {
    /// A call with no condition context, task token or shard iterator.
    pub fn new(service: &str, operation: &str, checks: Vec<(String, String)>) -> Self {
        Self {
            service: service.into(),
            operation: operation.into(),
            checks,
            context: BTreeMap::new(),
            task_token: None,
            shard_iterator: None,
        }
    }

    /// Names `resource` where a check holds `placeholder` ([`TASK_TOKEN_RESOURCE`],
    /// [`SHARD_ITERATOR_RESOURCE`]), once the gate knows what the token or iterator names.
    pub fn resolve_placeholder(&mut self, placeholder: &str, resource: &str) {
        for check in &mut self.checks {
            if check.1 == placeholder {
                check.1 = resource.to_string();
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{service} request not mapped to an IAM action: {detail}")]
pub struct Unmapped {
    pub service: String,
    pub detail: String,
}

/// Placeholder resources that the gate replaces once it knows what a token or iterator names.
pub const TASK_TOKEN_RESOURCE: &str = "<issuer of the task token>";
pub const SHARD_ITERATOR_RESOURCE: &str = "<stream of the shard iterator>";

/// A table's ARN from a `TableName` (a name, or an ARN, which DynamoDB also accepts).
pub fn table_arn(name: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_string();
    }
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}")
}

/// `http://host/123456789012/name` -> `arn:aws:sqs:region:123456789012:name` (the emulator
/// serves one account and ignores the URL's, so the ARN names that account).
pub fn queue_arn(url: &str) -> Option<String> {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let name = parts.next().filter(|n| !n.is_empty())?;
    parts
        .next()
        .filter(|a| a.chars().all(|c| c.is_ascii_digit()))?;
    Some(format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"))
}

/// Query-protocol parameters: from the form body or the query string, never both and never
/// one name twice (the emulator and the gate could each read a different one).
fn query_params(
    service: &str,
    request: &HttpRequest<'_>,
) -> Result<BTreeMap<String, String>, Unmapped> {
    if !request.body.is_empty() && !request.query.is_empty() {
        return Err(unmapped(
            service,
            "parameters in both the body and the query",
        ));
    }
    let pairs: Vec<(String, String)> = if request.body.is_empty() {
        request.query.to_vec()
    } else {
        url::form_urlencoded::parse(request.body)
            .into_owned()
            .collect()
    };
    let mut params = BTreeMap::new();
    for (k, v) in pairs {
        if params.insert(k.clone(), v).is_some() {
            return Err(unmapped(service, format!("parameter {k} given twice")));
        }
    }
    Ok(params)
}

fn unmapped(service: &str, detail: impl Into<String>) -> Unmapped {
    Unmapped {
        service: service.into(),
        detail: detail.into(),
    }
}

fn target(headers: &http::HeaderMap) -> Option<(String, String)> {
    let target = headers.get("x-amz-target")?.to_str().ok()?;
    let (prefix, op) = target.split_once('.')?;
    Some((prefix.to_string(), op.to_string()))
}

pub(crate) fn secure_transport() -> BTreeMap<String, Vec<String>> {
    // The gate stands in for AWS's TLS endpoint: every request arrived over HTTPS.
    BTreeMap::from([("aws:SecureTransport".to_string(), vec!["true".to_string()])])
}

/// The authorisation `request` needs, for the service named in its credential scope.
pub fn derive(service: &str, request: &HttpRequest<'_>) -> Result<Call, Unmapped> {
    let mut call = match service {
        "dynamodb" => dynamodb::dynamodb(request)?,
        "sqs" => sqs::sqs(request)?,
        "sns" => sns::sns(request)?,
        "s3" => s3::s3(request)?,
        "states" => states::states(request)?,
        "ses" => ses::ses(request)?,
        "secretsmanager" => secretsmanager::secretsmanager(request)?,
        other => return Err(unmapped(other, "service not used by this project")),
    };
    call.context.extend(secure_transport());
    Ok(call)
}

/// A JSON-protocol call: the operation its `X-Amz-Target` names (which must be `prefix`'s) and
/// its body.
fn json_operation(
    service: &str,
    prefix: &str,
    request: &HttpRequest<'_>,
) -> Result<(String, Value), Unmapped> {
    let (sent, op) = target(request.headers).ok_or_else(|| unmapped(service, "no X-Amz-Target"))?;
    if sent != prefix {
        return Err(unmapped(
            service,
            format!("X-Amz-Target {sent} is not {service}'s"),
        ));
    }
    Ok((op, json_body(service, request.body)?))
}

fn json_body(service: &str, body: &[u8]) -> Result<Value, Unmapped> {
    if body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body).map_err(|e| unmapped(service, format!("body is not JSON: {e}")))
}

fn decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

/// Layer: the [`Call`] the request makes, named once for every later layer; a request this
/// project does not make is refused (nothing passes unchecked).
pub async fn name_the_call(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let caller = crate::iam::sigv4::caller(&request);
    let buffered = crate::gate::body::buffered(&request);
    let http_request = HttpRequest {
        method: request.method().as_str(),
        path: request.uri().path(),
        query: &buffered.query,
        headers: request.headers(),
        body: &buffered.body,
    };
    match derive(&caller.service, &http_request) {
        Ok(call) => {
            request.extensions_mut().insert(call);
            next.run(request).await
        }
        Err(unmapped) => {
            crate::gate::audit::refused(&format!("{}: {unmapped}", caller.access_key));
            crate::aws_errors::AwsError::access_denied(&caller.service, &unmapped.to_string())
                .into_response()
        }
    }
}

pub fn call_of(request: &axum::extract::Request) -> &Call {
    request
        .extensions()
        .get::<Call>()
        .expect("iam::actions::name_the_call runs first")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `derive` for `"SERVICE METHOD PATH[?QUERY]"` with `"name: value"` headers and a body.
    fn derive_line(line: &str, headers: &[&str], body: &str) -> Result<Call, Unmapped> {
        let [service, method, target] = line.splitn(3, ' ').collect::<Vec<_>>()[..] else {
            panic!("{line}: SERVICE METHOD PATH");
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let headers: http::HeaderMap = headers
            .iter()
            .map(|h| h.split_once(": ").expect("name: value"))
            .map(|(k, v)| {
                (
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                )
            })
            .collect();
        let request = HttpRequest {
            method,
            path,
            query: &query,
            headers: &headers,
            body: body.as_bytes(),
        };
        derive(service, &request)
    }

    /// The (action, resource) pairs a request maps to.
    fn checks(line: &str, headers: &[&str], body: &str) -> Vec<(String, String)> {
        derive_line(line, headers, body).unwrap().checks
    }

    fn pair(action: &str, resource: &str) -> (String, String) {
        (action.to_string(), resource.to_string())
    }

    const DYNAMODB: &str = "dynamodb POST /";

    #[test]
    fn dynamodb_indexes_batches_and_transactions() {
        let target = |op: &str| format!("x-amz-target: DynamoDB_20120810.{op}");
        let query = r#"{"TableName":"T","IndexName":"EmailIndex"}"#;
        let q = derive_line(DYNAMODB, &[&target("Query")], query).unwrap();
        let index = table_arn("T") + "/index/EmailIndex";
        assert_eq!(q.checks, [pair("dynamodb:Query", &index)]);
        assert_eq!(q.context["aws:SecureTransport"], ["true"]);
        let batch = r#"{"RequestItems":{"A":{},"B":{}}}"#;
        assert_eq!(checks(DYNAMODB, &[&target("BatchGetItem")], batch).len(), 2);
        let transaction =
            r#"{"TransactItems":[{"Put":{"TableName":"A"}},{"Delete":{"TableName":"B"}}]}"#;
        assert_eq!(
            checks(DYNAMODB, &[&target("TransactWriteItems")], transaction),
            [
                pair("dynamodb:PutItem", &table_arn("A")),
                pair("dynamodb:DeleteItem", &table_arn("B"))
            ]
        );
    }

    #[test]
    fn s3_objects_and_buckets_path_and_virtual_style() {
        for (line, host, expected) in [
            (
                "s3 GET /b/uploads/a%20b.jpg",
                "host: 127.0.0.1:4566",
                pair("s3:GetObject", "arn:aws:s3:::b/uploads/a b.jpg"),
            ),
            (
                "s3 HEAD /k",
                "host: b.s3.amazonaws.com",
                pair("s3:GetObject", "arn:aws:s3:::b/k"),
            ),
            (
                "s3 GET /b",
                "host: 127.0.0.1:1",
                pair("s3:ListBucket", "arn:aws:s3:::b"),
            ),
        ] {
            assert_eq!(checks(line, &[host], ""), [expected], "{line}");
        }
    }

    #[test]
    fn queues_by_url_sns_by_topic_ses_by_identities() {
        let send = r#"{"QueueUrl":"http://127.0.0.1:1/123456789012/q1"}"#;
        assert_eq!(
            checks(
                "sqs POST /",
                &["x-amz-target: AmazonSQS.SendMessageBatch"],
                send
            ),
            [pair(
                "sqs:SendMessage",
                "arn:aws:sqs:us-east-1:123456789012:q1"
            )]
        );
        let publish = "Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3At";
        assert_eq!(
            checks("sns POST /", &[], publish),
            [pair("sns:Publish", "arn:aws:sns:us-east-1:1:t")]
        );
        let mail = r#"{"FromEmailAddress":"Approvals <a@x.com>","Destination":{"ToAddresses":["m@y.com"]}}"#;
        let identities = checks("ses POST /v2/email/outbound-emails", &[], mail);
        assert_eq!(
            identities.iter().map(|c| c.1.as_str()).collect::<Vec<_>>(),
            [
                "arn:aws:ses:us-east-1:123456789012:identity/a@x.com",
                "arn:aws:ses:us-east-1:123456789012:identity/m@y.com",
            ]
        );
    }

    #[test]
    fn unknown_operations_are_unmapped_not_allowed() {
        let delete = ["x-amz-target: DynamoDB_20120810.DeleteTable"];
        assert!(derive_line(DYNAMODB, &delete, r#"{"TableName":"T"}"#).is_err());
        assert!(derive_line("iam POST /", &delete, r#"{"TableName":"T"}"#).is_err());
    }

    #[test]
    fn requests_the_emulator_could_read_otherwise_are_refused() {
        let sqs: &[&str] = &["x-amz-target: AmazonSQS.SendMessage"];
        let ip: &[&str] = &["host: 127.0.0.1:1"];
        let queue = r#"{"QueueUrl":"http://h/123456789012/q"}"#;
        for (line, headers, body, maps) in [
            // SNS: a TargetArn beside the TopicArn, a parameter twice, body and query both.
            (
                "sns POST /",
                &[][..],
                "Action=Publish&TopicArn=a&TargetArn=b",
                false,
            ),
            (
                "sns POST /",
                &[],
                "Action=Publish&TopicArn=a&TopicArn=b",
                false,
            ),
            (
                "sns POST /?Action=GetTopicAttributes",
                &[],
                "Action=Subscribe&TopicArn=a",
                false,
            ),
            // SQS: the queue from the path, or a QueueName standing for one.
            ("sqs POST /123456789012/secret", sqs, queue, false),
            ("sqs POST /", sqs, r#"{"QueueName":"q"}"#, false),
            // S3: subresources are other operations; the SDK's x-id is not one.
            ("s3 PUT /b?encryption=", ip, "", false),
            ("s3 DELETE /b/k?uploadId=1", ip, "", false),
            ("s3 GET /b/k?x-id=GetObject", ip, "", true),
            // DynamoDB: another service's target under DynamoDB's scope.
            ("dynamodb POST /", sqs, "{}", false),
            ("sqs POST /", sqs, queue, true),
        ] {
            assert_eq!(
                derive_line(line, headers, body).is_ok(),
                maps,
                "{line} {body}"
            );
        }
    }
}
