//! DynamoDB and DynamoDB Streams (Service Authorization Reference: "Actions, resources, and
//! condition keys for Amazon DynamoDB"): tables, their indexes, batches and transactions by
//! table, and streams by stream ARN.

use super::*;

pub(super) fn dynamodb(request: &HttpRequest<'_>) -> Result<Call, Unmapped> {
    let s = "dynamodb";
    let (prefix, op) = target(request.headers).ok_or_else(|| unmapped(s, "no X-Amz-Target"))?;
    if !prefix.starts_with("DynamoDB") {
        return Err(unmapped(
            s,
            format!("X-Amz-Target {prefix} is not DynamoDB's"),
        ));
    }
    let body = json_body(s, request.body)?;
    let str_field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
    if prefix.starts_with("DynamoDBStreams") {
        let action = format!("dynamodb:{op}");
        return match op.as_str() {
            "DescribeStream" | "GetShardIterator" => {
                let stream = str_field("StreamArn").ok_or_else(|| unmapped(s, "no StreamArn"))?;
                Ok(Call::new(s, &op, vec![(action, stream)]))
            }
            "GetRecords" => {
                let mut c = Call::new(s, &op, vec![(action, SHARD_ITERATOR_RESOURCE.into())]);
                c.shard_iterator = str_field("ShardIterator");
                Ok(c)
            }
            // ListStreams is not scoped to a resource.
            "ListStreams" => Ok(Call::new(s, &op, vec![(action, "*".into())])),
            other => Err(unmapped(s, format!("streams operation {other}"))),
        };
    }
    let table =
        || str_field("TableName").ok_or_else(|| unmapped(s, format!("{op} without TableName")));
    let checks = match op.as_str() {
        "GetItem" | "PutItem" | "UpdateItem" | "DeleteItem" | "DescribeTable"
        | "DescribeTimeToLive" => {
            vec![(format!("dynamodb:{op}"), table_arn(&table()?))]
        }
        // A query or scan of an index is authorised on the index's ARN.
        "Query" | "Scan" => {
            let mut arn = table_arn(&table()?);
            if let Some(index) = str_field("IndexName") {
                arn = format!("{arn}/index/{index}");
            }
            vec![(format!("dynamodb:{op}"), arn)]
        }
        "BatchGetItem" | "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .ok_or_else(|| unmapped(s, format!("{op} without RequestItems")))?
            .keys()
            .map(|t| (format!("dynamodb:{op}"), table_arn(t)))
            .collect(),
        // Each part of a transaction is authorised as the single-item action it performs.
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .ok_or_else(|| unmapped(s, format!("{op} without TransactItems")))?
            .iter()
            .filter_map(|item| item.as_object()?.iter().next())
            .map(|(kind, part)| {
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    _ => "GetItem",
                };
                let table = part["TableName"]
                    .as_str()
                    .ok_or_else(|| unmapped(s, format!("{op} part without TableName")))?;
                Ok((format!("dynamodb:{action}"), table_arn(table)))
            })
            .collect::<Result<_, Unmapped>>()?,
        "ListTables" => vec![("dynamodb:ListTables".into(), "*".into())],
        other => return Err(unmapped(s, format!("operation {other}"))),
    };
    Ok(Call::new(s, &op, checks))
}
