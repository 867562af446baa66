//! Amazon SNS (Service Authorization Reference: "Actions, resources, and condition keys for
//! Amazon SNS"): publishing and subscribing on the topic the request names.

use super::*;

pub(super) fn sns(request: &HttpRequest<'_>) -> Result<Call, Unmapped> {
    let s = "sns";
    let params = query_params(s, request)?;
    let op = params
        .get("Action")
        .cloned()
        .ok_or_else(|| unmapped(s, "no Action"))?;
    if params.contains_key("TargetArn") || params.contains_key("PhoneNumber") {
        // moto publishes to these before TopicArn; this project only publishes to topics.
        return Err(unmapped(s, format!("{op} to a TargetArn or PhoneNumber")));
    }
    let topic = params.get("TopicArn").cloned();
    match (op.as_str(), topic) {
        ("Publish" | "PublishBatch", Some(topic)) => {
            Ok(Call::new(s, &op, vec![("sns:Publish".into(), topic)]))
        }
        ("Subscribe" | "GetTopicAttributes", Some(topic)) => {
            Ok(Call::new(s, &op, vec![(format!("sns:{op}"), topic)]))
        }
        (other, _) => Err(unmapped(s, format!("operation {other}"))),
    }
}
