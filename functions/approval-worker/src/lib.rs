//! `approval-worker`: emails the manager the approve/reject links for an approval task.
//!
//! One email core ([`Mailer`]), two ways in:
//! - callback pattern (default): the state machine sends `{taskToken, employeeName,
//!   managerEmail, attempt}` to SQS; each message is one email, failures are reported per message
//!   (redelivered, then the DLQ);
//! - activity pattern (the seed's): a schedule invokes the worker, which long-polls
//!   `GetActivityTask` while the invocation has time for a whole poll ([`ActivityPoller`]).

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sesv2::types::{Body as EmailBody, Content, Destination, EmailContent, Message};
use shared::approval::{self, ApprovalTask, Promotion};
use shared::config::{self, ConfigError, EnvSource};
use shared::error::{BackendError, classify_sdk_error};

#[derive(Debug, Clone)]
pub struct Mailer {
    ses: aws_sdk_sesv2::Client,
    sender: String,
    link_base: String,
}

impl Mailer {
    /// Reads `APPROVAL_SENDER` and `APPROVAL_LINK_BASE`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            ses: aws_sdk_sesv2::Client::new(sdk),
            sender: config::required(env, "APPROVAL_SENDER")?,
            link_base: config::required(env, "APPROVAL_LINK_BASE")?,
        })
    }

    pub async fn send(&self, task: &ApprovalTask) -> Result<(), BackendError> {
        let email = approval::approval_email(task, &self.link_base);
        let content = |text: String| {
            Content::builder()
                .data(text)
                .charset("UTF-8")
                .build()
                .map_err(|e| BackendError::failed("ses", e))
        };
        let message = Message::builder()
            .subject(content(email.subject)?)
            .body(
                EmailBody::builder()
                    .html(content(email.html)?)
                    .text(content(email.text)?)
                    .build(),
            )
            .build();
        self.ses
            .send_email()
            .from_email_address(&self.sender)
            .destination(
                Destination::builder()
                    .to_addresses(&task.promotion.manager_email)
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| classify_sdk_error("ses", &e))?;
        tracing::info!(%task, "approval email sent");
        metrics::counter!(shared::telemetry::metric::APPROVALS_REQUESTED).increment(1);
        Ok(())
    }

    /// The callback pattern: one SQS message per approval request.
    pub async fn handle_queue(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failed = Vec::new();
        for message in &event.records {
            let task: Result<ApprovalTask, _> =
                serde_json::from_str(message.body.as_deref().unwrap_or_default());
            let outcome = match task {
                Ok(task) => self.send(&task).await,
                // Not an approval request: redrive takes it to the DLQ for inspection.
                Err(err) => Err(BackendError::failed(
                    "sqs",
                    format!("unreadable approval request: {err}"),
                )),
            };
            if let Err(err) = outcome {
                tracing::error!(message_id = ?message.message_id, error = %err, "approval request not handled; will be retried");
                failed.push(message);
            }
        }
        shared::batch::sqs_failures(failed)
    }
}

/// Long-polls an activity for approval tasks.
#[derive(Debug, Clone)]
pub struct ActivityPoller {
    sfn: aws_sdk_sfn::Client,
    activity_arn: String,
    worker_name: String,
    /// The longest a poll can take (Step Functions holds it up to 60 s) plus a margin: no poll is
    /// started with less time than this left, so none is cut off holding a task.
    poll_budget: Duration,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollSummary {
    pub tasks: usize,
    pub empty_polls: usize,
    pub failed: usize,
}

/// Step Functions holds `GetActivityTask` open for up to 60 s.
pub const LONG_POLL: Duration = Duration::from_secs(60);

impl ActivityPoller {
    /// `read_timeout` must exceed the 60 s long poll; `poll_budget` is the time a poll may take.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        activity_arn: String,
        read_timeout: Duration,
        poll_budget: Duration,
    ) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .read_timeout(read_timeout)
            .operation_attempt_timeout(read_timeout)
            .build();
        let config = aws_sdk_sfn::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .build();
        Self {
            sfn: aws_sdk_sfn::Client::from_conf(config),
            activity_arn,
            worker_name: "approval-worker".into(),
            poll_budget,
        }
    }

    /// The production settings: 65 s read timeout, 70 s budget per poll.
    pub fn for_lambda(sdk: &aws_config::SdkConfig, activity_arn: String) -> Self {
        Self::new(
            sdk,
            activity_arn,
            LONG_POLL + Duration::from_secs(5),
            LONG_POLL + Duration::from_secs(10),
        )
    }

    /// Polls while `remaining()` leaves room for a whole poll; emails each task it gets.
    pub async fn run(&self, mailer: &Mailer, remaining: impl Fn() -> Duration) -> PollSummary {
        let mut summary = PollSummary::default();
        while remaining() >= self.poll_budget {
            let polled = self
                .sfn
                .get_activity_task()
                .activity_arn(&self.activity_arn)
                .worker_name(&self.worker_name)
                .send()
                .await;
            let out = match polled {
                Ok(out) => out,
                Err(err) => {
                    tracing::error!(error = %classify_sdk_error("states", &err), "GetActivityTask failed");
                    summary.failed += 1;
                    break;
                }
            };
            let Some(token) = out.task_token.filter(|t| !t.is_empty()) else {
                summary.empty_polls += 1;
                continue;
            };
            let input = out.input.unwrap_or_default();
            #[derive(serde::Deserialize)]
            struct ActivityInput {
                #[serde(flatten)]
                promotion: Promotion,
                #[serde(default)]
                attempt: Option<u32>,
            }
            match serde_json::from_str::<ActivityInput>(&input) {
                Ok(parsed) => {
                    let task = ApprovalTask {
                        task_token: token,
                        promotion: parsed.promotion,
                        attempt: parsed.attempt.unwrap_or(1),
                    };
                    match mailer.send(&task).await {
                        Ok(()) => summary.tasks += 1,
                        // The state machine's timeout sends a reminder: the request is not lost.
                        Err(err) => {
                            tracing::error!(error = %err, "approval email failed");
                            summary.failed += 1;
                        }
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "activity input is not a promotion");
                    summary.failed += 1;
                }
            }
        }
        summary
    }
}
