//! Amazon SQS (Service Authorization Reference: "Actions, resources, and condition keys for
//! Amazon SQS"): every action on the queue the request's `QueueUrl` names.

use super::*;

pub(super) fn sqs(request: &HttpRequest<'_>) -> Result<Call, Unmapped> {
    let s = "sqs";
    // JSON protocol (X-Amz-Target: AmazonSQS.Op) or the query protocol (Action=Op).
    // The queue is the request's QueueUrl; moto would fall back to the path, so a request
    // must name it in the body and be posted to `/`.
    if request.path != "/" {
        return Err(unmapped(s, format!("request to {}", request.path)));
    }
    let (op, url, name) = match target(request.headers) {
        Some((prefix, op)) => {
            if prefix != "AmazonSQS" {
                return Err(unmapped(s, format!("X-Amz-Target {prefix} is not SQS's")));
            }
            let body = json_body(s, request.body)?;
            let url = body["QueueUrl"].as_str().map(str::to_string);
            let name = body["QueueName"].as_str().map(str::to_string);
            (op, url, name)
        }
        None => {
            let params = query_params(s, request)?;
            let op = params
                .get("Action")
                .cloned()
                .ok_or_else(|| unmapped(s, "no X-Amz-Target or Action"))?;
            (
                op,
                params.get("QueueUrl").cloned(),
                params.get("QueueName").cloned(),
            )
        }
    };
    let action = match op.as_str() {
        "SendMessage" | "SendMessageBatch" => "sqs:SendMessage",
        "ReceiveMessage" => "sqs:ReceiveMessage",
        "DeleteMessage" | "DeleteMessageBatch" => "sqs:DeleteMessage",
        "ChangeMessageVisibility" | "ChangeMessageVisibilityBatch" => "sqs:ChangeMessageVisibility",
        "GetQueueAttributes" => "sqs:GetQueueAttributes",
        "GetQueueUrl" => "sqs:GetQueueUrl",
        "PurgeQueue" => "sqs:PurgeQueue",
        "StartMessageMoveTask" => "sqs:StartMessageMoveTask",
        "ListQueues" => {
            let checks = vec![("sqs:ListQueues".into(), "*".into())];
            return Ok(Call::new(s, &op, checks));
        }
        other => return Err(unmapped(s, format!("operation {other}"))),
    };
    let arn = match (url, name) {
        (Some(url), _) => queue_arn(&url).ok_or_else(|| unmapped(s, format!("queue URL {url}")))?,
        (None, Some(name)) if op == "GetQueueUrl" => {
            format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}")
        }
        _ => return Err(unmapped(s, format!("{op} without a QueueUrl"))),
    };
    Ok(Call::new(s, &op, vec![(action.into(), arn)]))
}
