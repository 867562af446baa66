//! Partial batch responses (`ReportBatchItemFailures`,
//! docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html): a consumer names only
//! what failed, so only that returns to its queue or is retried from its stream position.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};

/// The SQS batch response naming each of `failed` by its message id.
pub fn sqs_failures<'a>(failed: impl IntoIterator<Item = &'a SqsMessage>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in failed {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = message.message_id.clone().unwrap_or_default();
        response.batch_item_failures.push(failure);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failed_message_is_named_by_its_id() {
        let mut message = SqsMessage::default();
        message.message_id = Some("m-2".into());
        let response = sqs_failures([&message]);
        let ids: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(ids, ["m-2"]);
        assert!(sqs_failures([]).batch_item_failures.is_empty());
    }
}
