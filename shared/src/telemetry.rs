//! What every function sets up before its first invocation: logs ([`crate::logging`]) and
//! metrics, and the runtime loop that flushes the metrics after each invocation.
//!
//! Metrics go through the `metrics` facade (`metrics::counter!(metric::ITEMS_CREATED)`) and are
//! written to stdout as CloudWatch Embedded Metric Format documents by
//! `metrics_cloudwatch_embedded`; CloudWatch Logs turns them into metrics, so a function needs no
//! `cloudwatch:PutMetricData` permission and adds no request latency. Namespace: the
//! `METRICS_NAMESPACE` variable (the template sets the stack name); dimension: `Function`, the
//! function's name, plus whatever labels a metric adds (`Reason`). Each document also carries
//! the invocation's `requestId` and `xrayTraceId` as properties, so a metric point leads to its
//! logs and its trace.
//!
//! Per-invocation flush: [`run`] is `lambda_runtime::run` with one more layer, written here rather
//! than taken from the crate's `lambda` feature, which would link `lambda_http` with every event
//! type into each binary (consumers included). The layer counts `ColdStart` on the first
//! invocation and flushes once the handler finished, errors and panics included.

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::future::Inspect;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{Diagnostic, IntoFunctionResponse, LambdaEvent, LambdaInvocation, Runtime};
use metrics_cloudwatch_embedded::Collector;
use serde::{Deserialize, Serialize};

use crate::config::{EnvSource, ProcessEnv, optional};

/// The metric names the code emits (the dashboard and the end-to-end tests read the same).
pub mod metric {
    /// 1 on an execution environment's first invocation.
    pub const COLD_START: &str = "ColdStart";
    pub const ITEMS_CREATED: &str = "ItemsCreated";
    pub const ITEMS_UPDATED: &str = "ItemsUpdated";
    pub const ITEMS_DELETED: &str = "ItemsDeleted";
    pub const THUMBNAILS_RENDERED: &str = "ThumbnailsRendered";
    /// Milliseconds from the downloaded bytes to the encoded thumbnail.
    pub const RENDER_MS: &str = "RenderMs";
    pub const INPUT_MEGAPIXELS: &str = "InputMegapixels";
    /// Uploads that can never become a thumbnail, by `Reason` ([`super::label::REASON`]).
    pub const UPLOADS_FAILED: &str = "UploadsFailed";
    pub const FANOUT_DELIVERED: &str = "FanoutDelivered";
    /// Connections that were gone (410) and were removed from the room.
    pub const FANOUT_PRUNED: &str = "FanoutPruned";
    pub const FANOUT_FAILED: &str = "FanoutFailed";
    /// Approval emails sent (one per approval the state machine asked a person for).
    pub const APPROVALS_REQUESTED: &str = "ApprovalsRequested";
    pub const APPROVALS_APPROVED: &str = "ApprovalsApproved";
    pub const APPROVALS_REJECTED: &str = "ApprovalsRejected";
    /// A link clicked after its task timed out or was already decided.
    pub const APPROVALS_EXPIRED: &str = "ApprovalsExpired";
    pub const APPOINTMENTS_ENRICHED: &str = "AppointmentsEnriched";
    /// Appointments whose contact has no preferred method on record (`none`).
    pub const CONTACT_UNKNOWN: &str = "ContactUnknown";

    /// The counters (unit Count); the other two are distributions.
    pub const COUNTS: &[&str] = &[
        COLD_START,
        ITEMS_CREATED,
        ITEMS_UPDATED,
        ITEMS_DELETED,
        THUMBNAILS_RENDERED,
        UPLOADS_FAILED,
        FANOUT_DELIVERED,
        FANOUT_PRUNED,
        FANOUT_FAILED,
        APPROVALS_REQUESTED,
        APPROVALS_APPROVED,
        APPROVALS_REJECTED,
        APPROVALS_EXPIRED,
        APPOINTMENTS_ENRICHED,
        CONTACT_UNKNOWN,
    ];
}

/// Metric labels (EMF dimensions in addition to `Function`).
pub mod label {
    pub const REASON: &str = "Reason";
}

/// The dimension every metric carries.
pub const FUNCTION_DIMENSION: &str = "Function";

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// Installs the log subscriber and the metrics recorder. Call first thing in `main`.
pub fn init() {
    crate::logging::init();
    let env = ProcessEnv;
    if let Err(err) = init_metrics(&env) {
        tracing::warn!(error = %err, "metrics are off");
    }
}

fn init_metrics(env: &dyn EnvSource) -> Result<(), String> {
    let namespace =
        optional(env, "METRICS_NAMESPACE").unwrap_or_else(|| "serverless-rust-kit".into());
    let function = optional(env, "AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "local".into());
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace)
        .with_dimension(FUNCTION_DIMENSION, function)
        .init()
        .map_err(|e| e.to_string())?;
    let _ = COLLECTOR.set(collector);
    use metrics::Unit;
    for name in metric::COUNTS {
        metrics::describe_counter!(*name, Unit::Count, "");
    }
    metrics::describe_histogram!(metric::RENDER_MS, Unit::Milliseconds, "");
    Ok(())
}

/// Writes what was recorded since the last flush as EMF lines, in one write (so no log line
/// from another task lands in the middle of a document).
pub fn flush() {
    let Some(collector) = COLLECTOR.get() else {
        return;
    };
    let mut lines = Vec::new();
    if collector.flush(&mut lines).is_ok() && !lines.is_empty() {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&lines).and_then(|_| stdout.flush());
    }
}

/// `lambda_runtime::run`, plus the metrics flush after every invocation.
pub async fn run<A, F, R, B, S, D, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Service<LambdaEvent<A>, Response = R>,
    F::Future: Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + fmt::Debug,
    A: for<'de> Deserialize<'de>,
    R: IntoFunctionResponse<B, S>,
    B: Serialize,
    S: futures::Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send,
    E: Into<lambda_runtime::Error> + Send + fmt::Debug,
{
    Runtime::new(handler)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(FlushMetricsLayer)
        .run()
        .await
}

/// `lambda_http::run`, plus the metrics flush after every invocation.
pub async fn run_http<'a, R, S, E>(handler: S) -> Result<(), lambda_runtime::Error>
where
    S: Service<lambda_http::Request, Response = R, Error = E>,
    S::Future: Send + 'a,
    R: lambda_http::IntoResponse,
    E: fmt::Debug + Into<Diagnostic>,
{
    run(lambda_http::Adapter::from(handler)).await
}

/// The layer [`run`] adds; outermost, so it also sees invocations the handler failed.
pub struct FlushMetricsLayer;

impl<S> Layer<S> for FlushMetricsLayer {
    type Service = FlushMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FlushMetrics { inner }
    }
}

pub struct FlushMetrics<S> {
    inner: S,
}

type Outcome = Result<(), lambda_runtime::Error>;

impl<S> Service<LambdaInvocation> for FlushMetrics<S>
where
    S: Service<LambdaInvocation, Response = (), Error = lambda_runtime::Error>,
{
    type Response = ();
    type Error = lambda_runtime::Error;
    type Future = Inspect<S::Future, fn(&Outcome)>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        static STARTED: AtomicBool = AtomicBool::new(false);
        if let Some(collector) = COLLECTOR.get() {
            collector.set_property("requestId", invocation.context.request_id.clone());
            match &invocation.context.xray_trace_id {
                Some(trace) => collector.set_property("xrayTraceId", trace.clone()),
                None => collector.remove_property("xrayTraceId"),
            };
        }
        if !STARTED.swap(true, Ordering::Relaxed) {
            metrics::counter!(metric::COLD_START).increment(1);
        }
        let flush_after: fn(&Outcome) = |_| flush();
        self.inner.call(invocation).inspect(flush_after)
    }
}

#[cfg(test)]
mod tests {
    use super::metric;

    /// A metric the code emits but no one sees is a metric nobody will notice stop.
    #[test]
    fn every_metric_is_on_the_operations_dashboard() {
        let template = include_str!("../../template.yaml");
        let start = template.find("  OperationsDashboard:").expect("dashboard");
        let dashboard = &template[start..];
        let dashboard = &dashboard[..dashboard
            .find("\n  OperationsDashboardUrl:")
            .unwrap_or(dashboard.len())];
        let all = metric::COUNTS
            .iter()
            .chain([&metric::RENDER_MS, &metric::INPUT_MEGAPIXELS]);
        for name in all {
            assert!(
                dashboard.contains(&format!("\"{name}\""))
                    || dashboard.contains(&format!("MetricName=\\\"{name}\\\"")),
                "{name} is not on OperationsDashboard"
            );
        }
    }
}
