//! Each requester's approval requests: one row per execution in `ApprovalRequestsTable`
//! (partition key `id`, the execution's name `promotion-<UUIDv7>`; `RequesterIndex` on the
//! requester's `sub` and the id, so a query backwards is their requests newest first).
//!
//! `POST /approvals` writes the row as pending before it starts the execution. The outcome is
//! the execution's: `GET /approvals` asks Step Functions (`DescribeExecution`) about each row
//! still pending and records a final answer on the row, so a settled request is read once.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client as DynamoDb;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sfn::types::ExecutionStatus;
use serde::{Deserialize, Serialize};

use super::{Promotion, REJECTED};
use crate::cursor::Page;
use crate::error::{ApiError, BackendError, classify_sdk_error};
use crate::{dynamo, validate};

pub const REQUESTER_INDEX: &str = "RequesterIndex";
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;
/// The error the state machines fail with once every reminder went unanswered.
pub const EXPIRED: &str = "ApprovalExpired";
const INDEX_KEY: [&str; 2] = ["id", "requester"];

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Pending,
    Approved,
    Rejected,
    /// Nobody answered the request or its reminders in time.
    TimedOut,
    /// The execution ended some other way (stopped, or failed for a reason of its own).
    Failed,
}

/// A request's row, and what `GET /approvals` answers for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    pub id: String,
    /// The requester's `sub`.
    pub requester: String,
    pub employee_name: String,
    pub manager_email: String,
    pub execution_arn: String,
    pub created_at: String,
    pub status: RequestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
}

impl ApprovalRequest {
    /// A fresh execution name: time-ordered, so ids sort by when they were asked.
    pub fn new_id() -> String {
        format!("promotion-{}", uuid::Uuid::now_v7())
    }

    pub fn pending(
        id: &str,
        requester: &str,
        promotion: &Promotion,
        execution_arn: String,
    ) -> Self {
        Self {
            id: id.to_string(),
            requester: requester.to_string(),
            employee_name: promotion.employee_name.clone(),
            manager_email: promotion.manager_email.clone(),
            execution_arn,
            created_at: crate::timestamp::now(),
            status: RequestStatus::Pending,
            decided_at: None,
        }
    }
}

/// What an execution's status and error mean to the requester; `None` while it runs.
pub fn outcome(status: &ExecutionStatus, error: Option<&str>) -> Option<RequestStatus> {
    match status {
        ExecutionStatus::Running | ExecutionStatus::PendingRedrive => None,
        ExecutionStatus::Succeeded => Some(RequestStatus::Approved),
        ExecutionStatus::Failed if error == Some(REJECTED.0) => Some(RequestStatus::Rejected),
        ExecutionStatus::Failed if error == Some(EXPIRED) => Some(RequestStatus::TimedOut),
        ExecutionStatus::TimedOut => Some(RequestStatus::TimedOut),
        _ => Some(RequestStatus::Failed),
    }
}

/// How long an execution may stay unknown to `DescribeExecution` after its request was
/// recorded (the call is eventually consistent) before the request counts as never started.
const START_GRACE: time::Duration = time::Duration::minutes(5);

/// Whether a request recorded at `created_at` whose execution Step Functions does not know
/// has had time enough to appear, so it never started.
fn never_started(created_at: &str, now: time::OffsetDateTime) -> bool {
    crate::timestamp::parse(created_at).is_none_or(|at| now - at > START_GRACE)
}

/// DynamoDB and Step Functions access for requests. Built once per process; cheap to clone.
#[derive(Debug, Clone)]
pub struct Requests {
    db: DynamoDb,
    sfn: aws_sdk_sfn::Client,
    table: String,
}

fn key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("id".to_string(), AttributeValue::S(id.to_string()))])
}

impl Requests {
    pub fn new(db: DynamoDb, sfn: aws_sdk_sfn::Client, table: impl Into<String>) -> Self {
        Self {
            db,
            sfn,
            table: table.into(),
        }
    }

    /// Records a request about to be started.
    pub async fn add(&self, request: &ApprovalRequest) -> Result<(), BackendError> {
        if dynamo::put_new(&self.db, &self.table, request, &["id"]).await? {
            Ok(())
        } else {
            Err(BackendError::failed("dynamodb", "request id already taken"))
        }
    }

    /// Forgets a request whose execution never started.
    pub async fn remove(&self, id: &str) -> Result<(), BackendError> {
        dynamo::delete(&self.db, &self.table, key(id)).await
    }

    /// A page of `requester`'s requests, newest first, each with its current status.
    pub async fn list(
        &self,
        requester: &str,
        limit: Option<&str>,
        after: Option<&str>,
    ) -> Result<Page<ApprovalRequest>, ApiError> {
        let limit = validate::limit(limit, DEFAULT_PAGE, MAX_PAGE)?;
        let page = dynamo::NewestFirst {
            table: &self.table,
            index: Some(REQUESTER_INDEX),
            partition: ("requester", requester),
            key: &INDEX_KEY,
            scope: format!("approvals/{requester}"),
        }
        .page(&self.db, limit, after)
        .await?;
        let mut items = Vec::new();
        for row in page.items {
            items.push(self.current(dynamo::decode(row)?).await?);
        }
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    /// A pending request as its execution now stands; a final answer is recorded on the row.
    async fn current(&self, mut request: ApprovalRequest) -> Result<ApprovalRequest, BackendError> {
        if request.status != RequestStatus::Pending {
            return Ok(request);
        }
        let execution = self
            .sfn
            .describe_execution()
            .execution_arn(&request.execution_arn)
            .send()
            .await;
        let (status, decided_at) = match execution {
            Ok(out) => match outcome(&out.status, out.error.as_deref()) {
                None => return Ok(request),
                Some(status) => (
                    status,
                    out.stop_date
                        .and_then(|d| time::OffsetDateTime::from_unix_timestamp(d.secs()).ok())
                        .map(crate::timestamp::format),
                ),
            },
            // Either the execution never started (and the row's removal failed), or it started a
            // moment ago: DescribeExecution is eventually consistent, so only an old row's
            // missing execution is a failure.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_execution_does_not_exist()) =>
            {
                if !never_started(&request.created_at, time::OffsetDateTime::now_utc()) {
                    return Ok(request);
                }
                (RequestStatus::Failed, None)
            }
            Err(err) => return Err(classify_sdk_error("states", &err)),
        };
        request.status = status;
        request.decided_at = decided_at;
        let status = serde_dynamo::to_attribute_value(status)
            .map_err(|e| BackendError::failed("dynamodb", e))?;
        let update = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&request.id)))
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", status);
        let update = match &request.decided_at {
            Some(at) => update
                .update_expression("SET #status = :status, decidedAt = :at")
                .expression_attribute_values(":at", AttributeValue::S(at.clone())),
            None => update.update_expression("SET #status = :status"),
        };
        dynamo::unless_condition_failed(update.send().await)?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_says_how_its_request_ended() {
        use RequestStatus::*;
        let cases = [
            (ExecutionStatus::Running, None, None),
            (ExecutionStatus::Succeeded, None, Some(Approved)),
            (ExecutionStatus::Failed, Some("Rejected"), Some(Rejected)),
            (
                ExecutionStatus::Failed,
                Some("ApprovalExpired"),
                Some(TimedOut),
            ),
            (ExecutionStatus::TimedOut, None, Some(TimedOut)),
            (
                ExecutionStatus::Failed,
                Some("States.Runtime"),
                Some(Failed),
            ),
            (ExecutionStatus::Aborted, None, Some(Failed)),
        ];
        for (status, error, want) in cases {
            assert_eq!(outcome(&status, error), want, "{status:?} {error:?}");
        }
        assert_eq!(
            serde_json::to_value(TimedOut).unwrap(),
            serde_json::json!("timed_out")
        );
    }

    #[test]
    fn a_missing_execution_is_a_failure_only_once_it_had_time_to_appear() {
        let now = time::macros::datetime!(2026-12-07 18:00 UTC);
        assert!(!never_started("2026-12-07T17:59:00Z", now), "just asked");
        assert!(
            !never_started("2026-12-07T17:55:00Z", now),
            "at the grace's edge"
        );
        assert!(never_started("2026-12-07T17:54:59Z", now));
        assert!(never_started("not a time", now));
    }

    #[test]
    fn request_ids_sort_by_time_and_name_the_execution() {
        let (a, b) = (ApprovalRequest::new_id(), ApprovalRequest::new_id());
        assert!(a.starts_with("promotion-") && a.len() == "promotion-".len() + 36);
        assert!(a < b, "{a} then {b}");
    }
}
