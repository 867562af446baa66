//! What the Lambda service does: runs each function's binary as a Lambda process ([`runtime`]),
//! and polls its event sources ([`sources`]: SQS, DynamoDB streams, schedules) and EventBridge
//! Pipes ([`pipes`]) under the principal AWS uses for each.

pub mod pipes;
pub mod queues;
pub mod runtime;
pub mod sources;
pub mod streams;

/// Now, as the event shapes Lambda and Pipes deliver carry it (RFC 3339, UTC).
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current UTC time has an RFC 3339 form")
}

/// An event source's `BatchSize`: `default` when absent (Lambda: 10 for SQS, 100 for DynamoDB
/// streams, AWS::Lambda::EventSourceMapping BatchSize; the Pipes reference states no default,
/// only the range, and the local runner keeps Lambda's 100), otherwise 1 to `max`, as the
/// services refuse anything else.
pub fn batch_size(value: &serde_json::Value, default: usize, max: usize) -> Result<usize, String> {
    if value.is_null() {
        return Ok(default);
    }
    crate::cloudformation::template::whole_number(value)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("BatchSize {value} is not between 1 and {max}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_batch_size_is_the_default_or_within_the_services_range() {
        assert_eq!(super::batch_size(&json!(null), 10, 10_000), Ok(10));
        assert_eq!(super::batch_size(&json!(25), 100, 10_000), Ok(25));
        assert_eq!(super::batch_size(&json!("25"), 100, 10_000), Ok(25));
        for bad in [
            json!(0),
            json!(10_001),
            json!(-1),
            json!("ten"),
            json!([10]),
        ] {
            assert!(super::batch_size(&bad, 10, 10_000).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_stream_source_names_where_it_starts() {
        use aws_sdk_dynamodbstreams::types::ShardIteratorType;
        let start = super::streams::starting_position;
        assert_eq!(start(&json!("LATEST")), Ok(ShardIteratorType::Latest));
        assert_eq!(
            start(&json!("TRIM_HORIZON")),
            Ok(ShardIteratorType::TrimHorizon)
        );
        assert!(start(&json!(null)).is_err(), "StartingPosition is required");
        assert!(start(&json!("AT_TIMESTAMP")).is_err());
    }
}
