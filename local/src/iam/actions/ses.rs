//! Amazon SES v2 (Service Authorization Reference: "Actions, resources, and condition keys for
//! Amazon SES"): sending, on the identities of the sender and recipients.

use super::*;

pub(super) fn ses(request: &HttpRequest<'_>) -> Result<Call, Unmapped> {
    let s = "ses";
    match (request.method, request.path) {
        ("POST", "/v2/email/outbound-emails") => {
            let body = json_body(s, request.body)?;
            let from = body["FromEmailAddress"]
                .as_str()
                .ok_or_else(|| unmapped(s, "SendEmail without FromEmailAddress"))?;
            let identity = |address: &str| {
                format!(
                    "arn:aws:ses:{REGION}:{ACCOUNT_ID}:identity/{}",
                    bare_address(address)
                )
            };
            let mut checks = vec![("ses:SendEmail".to_string(), identity(from))];
            // In the SES sandbox recipients are verified identities too, and SendEmail is
            // authorised against each of them.
            for list in ["ToAddresses", "CcAddresses", "BccAddresses"] {
                for to in body
                    .pointer(&format!("/Destination/{list}"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    checks.push(("ses:SendEmail".to_string(), identity(to)));
                }
            }
            checks.dedup();
            let mut c = Call::new(s, "SendEmail", checks);
            c.context.insert(
                "ses:FromAddress".into(),
                vec![bare_address(from).to_string()],
            );
            Ok(c)
        }
        (method, path) => Err(unmapped(s, format!("{method} {path}"))),
    }
}

/// `"Name" <a@b.c>` -> `a@b.c`.
fn bare_address(address: &str) -> &str {
    match (address.rfind('<'), address.rfind('>')) {
        (Some(start), Some(end)) if start < end => &address[start + 1..end],
        _ => address.trim(),
    }
}
