//! `approval-api`: start a promotion approval, and the pages behind the emailed links.
//!
//! - `POST /approvals` {employeeName, managerEmail} -> 202 {executionArn, name}: the request is
//!   recorded for its requester, then its execution started.
//! - `GET /approvals` -> the caller's requests, newest first, paged, each pending, approved,
//!   rejected, timed out or failed.
//! - `GET /approvals/{succeed|fail}?taskToken=` -> a confirmation page; a GET never decides,
//!   because email link scanners pre-fetch links.
//! - `POST /approvals/{succeed|fail}` (form or JSON `taskToken`) -> SendTaskSuccess /
//!   SendTaskFailure, and a page saying what happened.
//!
//! Browsers (Accept: text/html) get HTML pages, errors included; API clients get JSON. The task
//! token is never logged or echoed in an error.

use http::{Method, StatusCode, header};
use lambda_http::{Body, Request, RequestPayloadExt, Response};
use shared::ApiError;
use shared::approval::requests::{ApprovalRequest, Requests};
use shared::approval::{self, Decision, DecisionForm, StartApprovalRequest};
use shared::config::{self, ConfigError, EnvSource};
use shared::error::classify_sdk_error;
use shared::person::Person;
use shared::rest::{self, Responder};
use shared::telemetry::metric;

#[derive(Debug, Clone)]
pub struct App {
    sfn: aws_sdk_sfn::Client,
    requests: Requests,
    state_machine_arn: String,
    responder: Responder,
}

impl App {
    /// Reads `STATE_MACHINE_ARN`, `REQUESTS_TABLE` and optionally `CORS_ALLOW_ORIGIN`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let sfn = aws_sdk_sfn::Client::new(sdk);
        Ok(Self {
            requests: Requests::new(
                aws_sdk_dynamodb::Client::new(sdk),
                sfn.clone(),
                config::required(env, "REQUESTS_TABLE")?,
            ),
            sfn,
            state_machine_arn: config::required(env, "STATE_MACHINE_ARN")?,
            responder: Responder::from_env(env),
        })
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        let outcome = self.route(&req).await;
        let outcome = match outcome {
            Err(err) if wants_html(&req) => Ok(html(
                err.status,
                &approval::page(
                    error_title(&err),
                    &format!("<p>{}</p>", approval::html_escape(&err.message)),
                ),
            )),
            other => other,
        };
        self.responder.finish(outcome)
    }

    async fn route(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let Some(route) = rest::Route::of(req) else {
            return Ok(rest::preflight());
        };
        let (method, segments) = (route.method.clone(), route.segments());
        match segments.as_slice() {
            ["approvals"] if method == Method::POST => self.start(req).await,
            ["approvals"] if method == Method::GET => self.mine(req).await,
            ["approvals"] => Err(ApiError::method_not_allowed("GET, POST, OPTIONS")),
            ["approvals", segment] => {
                let decision = Decision::from_segment(segment)
                    .ok_or_else(|| ApiError::route_not_found(method.as_str(), req.uri().path()))?;
                match method {
                    Method::GET => self.confirm(req, decision).await,
                    Method::POST => self.decide(req, decision).await,
                    _ => Err(ApiError::method_not_allowed("GET, POST, OPTIONS")),
                }
            }
            _ => Err(ApiError::route_not_found(method.as_str(), req.uri().path())),
        }
    }

    async fn start(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let requester = Person::of(req)?;
        let promotion = rest::parse_json::<StartApprovalRequest>(req)?.validate(&requester)?;
        let name = ApprovalRequest::new_id();
        let input = serde_json::to_string(&promotion).map_err(|_| ApiError::internal())?;
        // Recorded first, so no execution runs that its requester cannot see; the ARN is the
        // documented form arn:...:execution:<state machine name>:<execution name>.
        let execution_arn = format!(
            "{}:{name}",
            self.state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        );
        let record = ApprovalRequest::pending(&name, &requester.sub, &promotion, execution_arn);
        self.requests.add(&record).await?;
        let started = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(&name)
            .input(input)
            .send()
            .await;
        let out = match started {
            Ok(out) => out,
            Err(err) => {
                // Best effort: a row left behind reads as failed (its execution does not exist).
                if let Err(removal) = self.requests.remove(&name).await {
                    tracing::warn!(error = %removal, "request row of an unstarted execution kept");
                }
                return Err(classify_sdk_error("states", &err).into());
            }
        };
        tracing::info!(execution = %name, "approval started");
        Ok(rest::json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"executionArn": out.execution_arn, "name": name}),
        ))
    }

    async fn mine(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let requester = Person::of(req)?;
        let (limit, cursor) = rest::page_query(req)?;
        let page = self
            .requests
            .list(&requester.sub, limit.as_deref(), cursor.as_deref())
            .await?;
        Ok(rest::json(StatusCode::OK, &page))
    }

    /// The page an emailed link opens. A GET never decides (mail scanners prefetch links), but it
    /// checks the link first: SendTaskHeartbeat is harmless on a live task token and answers
    /// `InvalidToken`, `TaskTimedOut` or `TaskDoesNotExist` otherwise, so a garbage, used or
    /// expired link says so before anyone presses a button.
    async fn confirm(&self, req: &Request, decision: Decision) -> Result<Response<Body>, ApiError> {
        let token = approval::task_token(rest::query_param(req, "taskToken")?)?;
        let employee: Option<String> = rest::query_param(req, "employee")?;
        let employee = employee
            .map(|name| shared::validate::text("employee", &name, 1, 100))
            .transpose()?;
        // Who asked (the requester's name and address), as the e-mailed link says.
        let requester: Option<String> = rest::query_param(req, "requester")?;
        let requester = requester
            .map(|name| shared::validate::text("requester", &name, 1, 400))
            .transpose()?;
        self.sfn
            .send_task_heartbeat()
            .task_token(&token)
            .send()
            .await
            .map_err(|e| closed_request(e.into_service_error().meta().code(), false))?;
        Ok(html(
            StatusCode::OK,
            &approval::confirmation_page(
                decision,
                &token,
                employee.as_deref(),
                requester.as_deref(),
            ),
        ))
    }

    async fn decide(&self, req: &Request, decision: Decision) -> Result<Response<Body>, ApiError> {
        let form: Option<DecisionForm> = req
            .payload()
            .map_err(|_| ApiError::validation("send taskToken as a form field or JSON"))?;
        let token = approval::task_token(form.map(|f| f.task_token))?;
        let sent = match decision {
            Decision::Approve => self
                .sfn
                .send_task_success()
                .task_token(&token)
                .output(approval::approved_output(&shared::timestamp::now()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| error_code(&e)),
            Decision::Reject => self
                .sfn
                .send_task_failure()
                .task_token(&token)
                .error(approval::REJECTED.0)
                .cause(approval::REJECTED.1)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| error_code(&e)),
        };
        match sent {
            Ok(()) => {
                tracing::info!(decision = decision.segment(), "approval decided");
                metrics::counter!(match decision {
                    Decision::Approve => metric::APPROVALS_APPROVED,
                    Decision::Reject => metric::APPROVALS_REJECTED,
                })
                .increment(1);
                let (title, text) = match decision {
                    Decision::Approve => ("Approved", "Thank you. The promotion is approved."),
                    Decision::Reject => ("Rejected", "Thank you. The promotion is rejected."),
                };
                if wants_html(req) {
                    Ok(html(
                        StatusCode::OK,
                        &approval::page(title, &format!("<p>{text}</p>")),
                    ))
                } else {
                    Ok(rest::json(
                        StatusCode::OK,
                        &serde_json::json!({"decision": decision.segment()}),
                    ))
                }
            }
            Err(code) => Err(closed_request(Some(&code), true)),
        }
    }
}

/// What a SendTask* refusal means to the person holding the link. Only the error code is
/// logged: messages may quote the token. `decided` counts `ApprovalsExpired` for a click on the
/// button, not for the page's link check (which mail scanners' prefetches also reach).
fn closed_request(code: Option<&str>, decided: bool) -> ApiError {
    let code = code.unwrap_or("Unknown");
    tracing::warn!(%code, "approval link not accepted");
    match code {
        "TaskDoesNotExist" | "TaskTimedOut" => {
            if decided {
                metrics::counter!(metric::APPROVALS_EXPIRED).increment(1);
            }
            ApiError::new(
                StatusCode::GONE,
                "request_closed",
                "This approval request has expired or was already answered.",
            )
        }
        "InvalidToken" => ApiError::validation("This approval link is not valid."),
        "ThrottlingException" => ApiError::unavailable(),
        _ => ApiError::internal(),
    }
}

fn wants_html(req: &Request) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn error_title(err: &ApiError) -> &'static str {
    match err.status {
        StatusCode::GONE => "Request closed",
        StatusCode::NOT_FOUND => "Not found",
        _ => "Something is wrong with this link",
    }
}

fn html(status: StatusCode, page: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::Text(page.to_string()))
        .expect("static response parts are valid")
}

/// The service's error code of a failed Step Functions call (`Unknown` for a transport failure).
fn error_code<E: aws_sdk_sfn::error::ProvideErrorMetadata>(err: &E) -> String {
    err.code().unwrap_or("Unknown").to_string()
}
