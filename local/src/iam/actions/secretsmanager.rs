//! AWS Secrets Manager (Service Authorization Reference: "Actions, resources, and condition
//! keys for AWS Secrets Manager"): reading a secret by its ARN.

use super::*;

/// Secrets Manager (JSON protocol, `X-Amz-Target: secretsmanager.<Op>`). The resource is the
/// secret's ARN; this project always names secrets by ARN (a name would need resolving first).
pub(super) fn secretsmanager(request: &HttpRequest<'_>) -> Result<Call, Unmapped> {
    let s = "secretsmanager";
    let (op, body) = json_operation(s, "secretsmanager", request)?;
    let secret = body["SecretId"]
        .as_str()
        .filter(|id| id.starts_with("arn:aws:secretsmanager:"))
        .ok_or_else(|| unmapped(s, format!("{op} without a SecretId ARN")))?;
    match op.as_str() {
        "GetSecretValue" | "DescribeSecret" => Ok(Call::new(
            s,
            &op,
            vec![(format!("secretsmanager:{op}"), secret.to_string())],
        )),
        other => Err(unmapped(s, format!("operation {other}"))),
    }
}
