//! Human approval: the callback pattern end to end on the emulator (start over the API -> the
//! state machine's SQS message -> worker -> email -> GET page -> POST decision -> execution
//! status), the timeout path, bad input, and the activity pattern's poll loop against a local
//! Step Functions stand-in.

use std::time::{Duration, Instant};

use approval_worker::{ActivityPoller, Mailer};
use aws_sdk_sfn::types::ExecutionStatus;
use integration_tests::fake_sfn::FakeStepFunctions;
use integration_tests::{Person, Rest, ann, assert_error, fixture, parts, stack};
use local_stack::cloudformation::provision::Stack;
use local_stack::lambda::queues;
use serde_json::{Value, json};
use shared::config::EnvSource;

struct Approval {
    stack: Stack,
    api: approval_api::App,
    mailer: Mailer,
    manager: String,
}

async fn approval(timeout_seconds: &str) -> Approval {
    let mut stack = stack().await;
    // Unique sender and manager per test: the emulator's mailbox is shared.
    let sender = format!("approvals-{}@example.com", stack.prefix);
    stack.set_parameter("ApprovalSenderEmail", &sender);
    stack.set_parameter("ApprovalTimeoutSeconds", timeout_seconds);
    // CreateSenderIdentity defaults to false: the user verifies the sender before deploying.
    stack.verify_email_identity(&sender).await.unwrap();
    let api_env = stack.function_env("ApprovalApiFunction").await.unwrap();
    let worker_env = stack.function_env("ApprovalWorkerFunction").await.unwrap();
    assert!(
        !worker_env.contains_key("APPROVAL_ACTIVITY_ARN"),
        "callback is the default pattern"
    );
    Approval {
        api: approval_api::App::from_env(
            &stack.function_sdk("ApprovalApiFunction").await.unwrap(),
            &api_env as &dyn EnvSource,
        )
        .unwrap(),
        mailer: Mailer::from_env(
            &stack.function_sdk("ApprovalWorkerFunction").await.unwrap(),
            &worker_env as &dyn EnvSource,
        )
        .unwrap(),
        manager: format!("boss-{}@example.com", stack.prefix),
        stack,
    }
}

fn form(token: &str) -> String {
    format!(
        "taskToken={}",
        percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC)
    )
}

impl Approval {
    async fn start(&self, employee: &str) -> String {
        let request = Rest::post("/approvals")
            .json(json!({"employeeName": employee, "managerEmail": self.manager}));
        let (status, body) = parts(&self.api.handle(request.request()).await);
        assert_eq!(status, 202, "{body}");
        body["executionArn"].as_str().unwrap().to_string()
    }

    /// `GET /approvals` as `person`: their requests, newest first.
    async fn mine(&self, person: &Person) -> Vec<Value> {
        let request = Rest::get("/approvals").as_person(person);
        let (status, page) = parts(&self.api.handle(request.request()).await);
        assert_eq!(status, 200, "{page}");
        page["items"].as_array().unwrap().clone()
    }

    /// The status `GET /approvals` gives Ann's request `execution`.
    async fn listed_status(&self, execution: &str) -> Value {
        let mine = self.mine(&ann()).await;
        let request = mine
            .iter()
            .find(|r| r["executionArn"] == execution)
            .unwrap_or_else(|| panic!("{execution} not in {mine:?}"));
        request["status"].clone()
    }

    /// Waits for the state machine's request(s) on the queue and hands them to the worker.
    async fn deliver_requests(&self, at_least: usize) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.stack.sdk);
        let url = self.stack.reference("ApprovalRequestQueue").unwrap();
        let arn = self.stack.attribute("ApprovalRequestQueue", "Arn").unwrap();
        let mut messages = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while messages.len() < at_least && Instant::now() < deadline {
            let out = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            messages.extend(out.messages.unwrap_or_default());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            messages.len() >= at_least,
            "the state machine sent {} of {at_least} requests",
            messages.len()
        );
        let response = self
            .mailer
            .handle_queue(queues::to_lambda_event(&messages, &arn))
            .await;
        assert!(response.batch_item_failures.is_empty());
        messages
            .iter()
            .map(|m| serde_json::from_str(m.body.as_deref().unwrap()).unwrap())
            .collect()
    }

    /// Emails the emulator sent to this test's manager (HTML bodies).
    async fn inbox(&self) -> Vec<Value> {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
        // The emulator's own API, as the deployer (the gate wants its token). moto builds this
        // dump from live state and can fail while another request changes it: read again.
        let mut data = Value::Null;
        for _ in 0..10 {
            let answer = reqwest::Client::new()
                .get(format!("{endpoint}/moto-api/data.json"))
                .header(
                    local_stack::gate::control::ADMIN_HEADER,
                    std::env::var("LOCAL_GATE_TOKEN").unwrap_or_default(),
                )
                .send()
                .await
                .unwrap();
            if let Ok(dump) = answer.json::<Value>().await {
                data = dump;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert!(!data.is_null(), "moto-api/data.json never answered JSON");
        let messages = data["ses"]["Message"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        messages
            .into_iter()
            .filter(|m| m.to_string().contains(&self.manager))
            .collect()
    }

    async fn status(
        &self,
        execution_arn: &str,
        want: ExecutionStatus,
    ) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
        let sfn = aws_sdk_sfn::Client::new(&self.stack.sdk);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = sfn
                .describe_execution()
                .execution_arn(execution_arn)
                .send()
                .await
                .unwrap();
            if out.status == want || Instant::now() > deadline {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The `href` of the link for `decision` in an HTML email, unescaped, and its token.
fn link(html: &str, decision: &str) -> (String, String) {
    let marker = format!("/approvals/{decision}?taskToken=");
    let start = html.find(&marker).expect("link in email");
    let href_start = html[..start].rfind('"').unwrap() + 1;
    let href_end = start + html[start..].find('"').unwrap();
    let href = html[href_start..href_end].replace("&amp;", "&");
    let url = reqwest::Url::parse(&href).unwrap();
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "taskToken")
        .unwrap()
        .1
        .into_owned();
    (url.path().trim_start_matches("/prod").to_string(), token)
}

/// A second click on the used link finds the request closed (Step Functions' TaskTimedOut,
/// which the IAM gate gives where moto would accept a second answer).
async fn decide_through_links(
    a: &Approval,
    decision: &str,
    expected: ExecutionStatus,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let execution = a.start("Ann <b>Lee</b>").await;
    let requests = a.deliver_requests(1).await;
    assert_eq!(requests[0]["employeeName"], "Ann <b>Lee</b>");
    assert_eq!(requests[0]["attempt"], 1);
    // The requester rides along, from the token, and the manager is told who asked.
    assert_eq!(
        (
            &requests[0]["requesterName"],
            &requests[0]["requesterEmail"]
        ),
        (&json!("Ann Lee"), &json!("ann@example.com"))
    );
    let inbox = a.inbox().await;
    assert_eq!(inbox.len(), 1);
    let html = inbox[0]["body"].as_str().unwrap();
    assert!(
        html.contains("Ann &lt;b&gt;Lee&lt;/b&gt;"),
        "the name is escaped"
    );
    assert!(
        html.contains("Ann Lee (ann@example.com) asks for it."),
        "{html}"
    );
    let (path, token) = link(html, decision);
    assert_eq!(token, requests[0]["taskToken"].as_str().unwrap());

    // GET shows a confirmation page and decides nothing.
    let page = a
        .api
        .handle(
            Rest::get(&path)
                .resource("/approvals/{decision}")
                .query("taskToken", &token)
                .header("Accept", "text/html")
                .request(),
        )
        .await;
    assert_eq!(page.status(), 200);
    let body = String::from_utf8(page.body().to_vec()).unwrap();
    assert!(body.contains("<form method=\"post\""), "{body}");
    assert_eq!(
        a.status(&execution, ExecutionStatus::Running).await.status,
        ExecutionStatus::Running
    );

    // The form's POST decides.
    let post = Rest::post(&path)
        .resource("/approvals/{decision}")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "text/html")
        .raw_body(&form(&token));
    let done = a.api.handle(post.clone().request()).await;
    assert_eq!(done.status(), 200);
    let out = a.status(&execution, expected.clone()).await;
    assert_eq!(out.status, expected);

    // A second click on a used link is a clear 4xx page, without the token in it.
    let again = a.api.handle(post.request()).await;
    assert_eq!(again.status(), 410);
    assert!(
        !String::from_utf8(again.body().to_vec())
            .unwrap()
            .contains(&token)
    );
    out
}

#[tokio::test]
async fn approve_link_succeeds_the_execution() {
    let a = approval("3600").await;
    let out = decide_through_links(&a, "succeed", ExecutionStatus::Succeeded).await;
    let output: Value = serde_json::from_str(out.output.as_deref().unwrap()).unwrap();
    assert_eq!(output["decision"]["decision"], "approved");
    // The requester's list says so, with when; it is recorded, so a second read is the same.
    let execution = out.execution_arn;
    assert_eq!(a.listed_status(&execution).await, "approved");
    let listed = a.mine(&ann()).await;
    assert!(listed[0]["decidedAt"].is_string(), "{listed:?}");
    assert_eq!(a.listed_status(&execution).await, "approved");
}

#[tokio::test]
async fn reject_link_fails_the_execution() {
    let a = approval("3600").await;
    let out = decide_through_links(&a, "fail", ExecutionStatus::Failed).await;
    assert_eq!(out.error.as_deref(), Some("Rejected"));
    assert_eq!(a.listed_status(&out.execution_arn).await, "rejected");
}

/// `GET /approvals`: each requester's own, newest first and paged, pending until decided;
/// nobody else's.
#[tokio::test]
async fn each_requester_lists_their_own_requests() {
    let a = approval("3600").await;
    let first = a.start("Kim").await;
    let second = a.start("Lee").await;
    let bob = Person::new("Bob", "bob@example.com");
    let request = Rest::post("/approvals")
        .as_person(&bob)
        .json(json!({"employeeName": "Bob's colleague", "managerEmail": a.manager}));
    assert_eq!(a.api.handle(request.request()).await.status(), 202);

    let mine = a.mine(&ann()).await;
    let executions: Vec<&Value> = mine.iter().map(|r| &r["executionArn"]).collect();
    assert_eq!(
        executions,
        [&json!(second), &json!(first)],
        "newest first, Ann's only"
    );
    assert_eq!(mine[0]["status"], "pending");
    assert_eq!(mine[0]["employeeName"], "Lee");
    assert_eq!(mine[0]["managerEmail"], a.manager.as_str());
    let bobs = a.mine(&bob).await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0]["employeeName"], "Bob's colleague");

    let page = |cursor: Option<&str>| {
        let mut request = Rest::get("/approvals").query("limit", "1");
        if let Some(cursor) = cursor {
            request = request.query("cursor", cursor);
        }
        request
    };
    let (_, one) = parts(&a.api.handle(page(None).request()).await);
    let cursor = one["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let (_, two) = parts(&a.api.handle(page(Some(&cursor)).request()).await);
    assert_eq!(two["items"][0]["executionArn"], first.as_str());
    let (status, _) = parts(
        &a.api
            .handle(page(Some(&cursor)).as_person(&bob).request())
            .await,
    );
    assert_eq!(status, 400, "Ann's cursor is not Bob's");
    let (status, _) = parts(
        &a.api
            .handle(Rest::get("/approvals").anonymous().request())
            .await,
    );
    assert_eq!(status, 401);
}

#[tokio::test]
async fn unanswered_requests_are_resent_then_expire() {
    let a = approval("1").await;
    let execution = a.start("Bob").await;
    let requests = a.deliver_requests(3).await;
    let attempts: Vec<u64> = requests
        .iter()
        .map(|r| r["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    let out = a.status(&execution, ExecutionStatus::Failed).await;
    assert_eq!(out.status, ExecutionStatus::Failed);
    assert_eq!(out.error.as_deref(), Some("ApprovalExpired"));
    assert_eq!(a.listed_status(&execution).await, "timed_out");
    // Every emailed link is dead now: the first two were superseded by their reminders, the
    // last one's execution ended. The page says so instead of offering a button.
    for request in &requests {
        let page = a
            .api
            .handle(
                Rest::get("/approvals/succeed")
                    .resource("/approvals/{decision}")
                    .query("taskToken", request["taskToken"].as_str().unwrap())
                    .header("Accept", "text/html")
                    .request(),
            )
            .await;
        assert_eq!(page.status(), 410, "attempt {}", request["attempt"]);
    }
    let inbox = a.inbox().await;
    assert_eq!(inbox.len(), 3);
    assert!(
        inbox
            .iter()
            .any(|m| m["subject"].as_str().unwrap().contains("reminder 2"))
    );
}

/// A reminder's link is the live one: the timed-out request's link is closed (AWS answers
/// TaskTimedOut for it) while the execution still waits.
#[tokio::test]
async fn a_reminder_closes_the_link_it_replaces() {
    let a = approval("4").await;
    let execution = a.start("Cy").await;
    let requests = a.deliver_requests(2).await;
    let page = |token: &str| {
        a.api.handle(
            Rest::get("/approvals/succeed")
                .resource("/approvals/{decision}")
                .query("taskToken", token)
                .header("Accept", "text/html")
                .request(),
        )
    };
    let first = requests[0]["taskToken"].as_str().unwrap();
    let reminder = requests[1]["taskToken"].as_str().unwrap();
    assert_eq!(page(reminder).await.status(), 200);
    assert_eq!(page(first).await.status(), 410);
    assert_eq!(
        a.status(&execution, ExecutionStatus::Running).await.status,
        ExecutionStatus::Running
    );
}

#[tokio::test]
async fn bad_requests_get_clear_answers_and_never_echo_the_token() {
    let a = approval("3600").await;
    let cases: Vec<(Rest, u16, &str)> = vec![
        (
            Rest::post("/approvals")
                .json(json!({"employeeName": "", "managerEmail": "m@example.com"})),
            400,
            "validation_error",
        ),
        (
            Rest::post("/approvals").json(json!({"employeeName": "Ann", "managerEmail": "nope"})),
            400,
            "validation_error",
        ),
        (
            Rest::post("/approvals").json(json!({"employeeName": "Ann"})),
            400,
            "validation_error",
        ),
        // Nobody approves their own request: the signed-in requester is ann@example.com.
        (
            Rest::post("/approvals")
                .json(json!({"employeeName": "Ann", "managerEmail": "Ann@Example.com"})),
            400,
            "validation_error",
        ),
        (
            Rest::post("/approvals")
                .anonymous()
                .json(json!({"employeeName": "Ann", "managerEmail": "m@example.com"})),
            401,
            "unauthorized",
        ),
        (
            Rest::post("/approvals").raw_body("{"),
            400,
            "malformed_json",
        ),
        (
            Rest::put("/approvals").json(json!({})),
            405,
            "method_not_allowed",
        ),
        (
            Rest::get("/approvals").query("limit", "0"),
            400,
            "validation_error",
        ),
        (
            Rest::get("/approvals").query("cursor", "junk"),
            400,
            "validation_error",
        ),
        (
            Rest::get("/approvals").query("status", "pending"),
            400,
            "validation_error",
        ),
        (Rest::get("/approvals/succeed"), 400, "validation_error"),
        (
            Rest::get("/approvals/maybe").query("taskToken", "x"),
            404,
            "route_not_found",
        ),
        (
            Rest::post("/approvals/succeed").json(json!({})),
            400,
            "validation_error",
        ),
        (
            Rest::new("DELETE", "/approvals/fail"),
            405,
            "method_not_allowed",
        ),
    ];
    for (request, status, code) in cases {
        assert_error(&a.api.handle(request.request()).await, status, code);
    }
    let secret = "AAAAKgAAAAIAAAAAAAAAAbogus-token-value";
    let bogus = Rest::post("/approvals/succeed")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .raw_body(&form(secret));
    let response = a.api.handle(bogus.clone().request()).await;
    assert!(
        matches!(response.status().as_u16(), 400 | 410),
        "{}",
        response.status()
    );
    assert!(
        !String::from_utf8(response.body().to_vec())
            .unwrap()
            .contains(secret)
    );
    let page = a
        .api
        .handle(bogus.header("Accept", "text/html").request())
        .await;
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8(page.body().to_vec()).unwrap();
    assert!(html.contains("viewport") && !html.contains(secret));
}

#[tokio::test]
async fn fixtures_parse_for_both_functions() {
    let a = approval("3600").await;
    let start = a
        .api
        .handle(lambda_http::request::from_str(&fixture("approval-api/start.json")).unwrap())
        .await;
    assert_eq!(start.status(), 202);
    // The same person's requests: the one the start fixture just asked for.
    let (status, mine) = parts(
        &a.api
            .handle(lambda_http::request::from_str(&fixture("approval-api/list.json")).unwrap())
            .await,
    );
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["items"][0]["employeeName"], "Ann Lee", "{mine}");
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");
    let page = a
        .api
        .handle(lambda_http::request::from_str(&fixture("approval-api/confirm-page.json")).unwrap())
        .await;
    // The page checks its link first (SendTaskHeartbeat): the fixture's token is a made-up one.
    assert_eq!(page.status(), 400);
    assert!(
        String::from_utf8(page.body().to_vec())
            .unwrap()
            .contains("This approval link is not valid.")
    );
    let decide = a
        .api
        .handle(lambda_http::request::from_str(&fixture("approval-api/decide.json")).unwrap())
        .await;
    assert_eq!(
        decide.status(),
        400,
        "the fixture's token is not a real one"
    );
    let event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(&fixture("approval-worker/sqs-request.json")).unwrap();
    assert!(
        a.mailer
            .handle_queue(event)
            .await
            .batch_item_failures
            .is_empty()
    );
    let _scheduled: Value =
        serde_json::from_str(&fixture("approval-worker/schedule.json")).unwrap();
}

// ---- activity pattern ------------------------------------------------------------------------

fn task_input(name: &str, manager: &str) -> String {
    json!({"employeeName": name, "managerEmail": manager, "attempt": 1}).to_string()
}

#[tokio::test]
async fn activity_poller_emails_each_task_and_stops_before_running_out_of_time() {
    let a = approval("3600").await;
    let tasks = vec![
        ("token-1".to_string(), task_input("Cy", &a.manager)),
        ("token-2".to_string(), task_input("Di", &a.manager)),
    ];
    let fake = FakeStepFunctions::start(tasks, Duration::from_millis(150)).await;
    let sdk = local_stack::emulator::sdk_config(&fake.url).await;
    let budget = Duration::from_millis(400);
    let poller = ActivityPoller::new(
        &sdk,
        "arn:aws:states:us-east-1:123456789012:activity:ManualStep".into(),
        Duration::from_secs(2),
        budget,
    );
    // Room for both emails (through the gate, under a loaded test run) and an empty poll.
    let deadline = Instant::now() + Duration::from_millis(3000);
    let summary = poller
        .run(&a.mailer, || {
            deadline.saturating_duration_since(Instant::now())
        })
        .await;
    assert_eq!(summary.tasks, 2);
    assert!(summary.empty_polls >= 1, "{summary:?}");
    assert_eq!(summary.failed, 0);
    for start in fake.poll_starts() {
        assert!(
            deadline.saturating_duration_since(start) >= budget,
            "a poll started with less than a whole poll's time left"
        );
    }
    let inbox = a.inbox().await;
    assert_eq!(inbox.len(), 2);
    assert!(
        inbox
            .iter()
            .any(|m| m["body"].as_str().unwrap().contains("taskToken=token%2D1"))
    );
}

#[tokio::test]
async fn activity_poller_does_not_start_a_poll_it_cannot_finish() {
    let a = approval("3600").await;
    let fake = FakeStepFunctions::start(
        vec![("t".into(), task_input("Ed", &a.manager))],
        Duration::from_millis(50),
    )
    .await;
    let sdk = local_stack::emulator::sdk_config(&fake.url).await;
    let poller = ActivityPoller::new(
        &sdk,
        "arn:aws:states:us-east-1:123456789012:activity:ManualStep".into(),
        Duration::from_secs(2),
        Duration::from_secs(70),
    );
    let summary = poller.run(&a.mailer, || Duration::from_secs(69)).await;
    assert_eq!(summary, approval_worker::PollSummary::default());
    assert!(fake.poll_starts().is_empty());
}

/// moto 5.2.5 cannot run an activity task (GetActivityTask answers 500; an activity state
/// fails with States.Runtime), so the activity pattern's decisions are checked where AWS
/// decides them: the IAM gate, with the roles the activity-pattern template gives, against the
/// ARN a token from an activity is authorised on (the activity's, aws-cdk#8486).
#[tokio::test]
async fn activity_pattern_decisions_are_authorised_on_the_activity() {
    let parameters = [("ApprovalPattern".to_string(), "activity".to_string())];
    let template = std::sync::Arc::new(
        local_stack::cloudformation::template::Template::load_project_with(&parameters)
            .expect("transform"),
    );
    let mut stack = Stack::isolated(template, integration_tests::sdk().await);
    stack.set_parameter("ApprovalPattern", "activity");
    stack
        .ensure(&["ApprovalApiFunction", "ApprovalWorkerFunction"])
        .await
        .unwrap();
    let activity = stack.reference("ApprovalActivity").unwrap();
    let machine = stack.reference("ApprovalActivityStateMachine").unwrap();
    let api_key = stack.access_key(&stack.role_of("ApprovalApiFunction").unwrap());
    let worker_key = stack.access_key(&stack.role_of("ApprovalWorkerFunction").unwrap());
    let ask = |key: &str, action: &str, resource: &str| {
        let question = local_stack::iam::AuthorizeRequest {
            access_key_id: key.to_string(),
            action: action.to_string(),
            resource: resource.to_string(),
        };
        let gate = stack.gate.clone();
        async move { gate.authorize(&question).await.unwrap().allowed }
    };
    assert!(ask(&api_key, "states:StartExecution", &machine).await);
    for decision in ["states:SendTaskSuccess", "states:SendTaskFailure"] {
        assert!(
            ask(&api_key, decision, &activity).await,
            "{decision} on the activity"
        );
        assert!(
            !ask(&api_key, decision, &machine).await,
            "{decision} on the state machine is not what a token from an activity needs"
        );
    }
    assert!(ask(&worker_key, "states:GetActivityTask", &activity).await);
    assert!(!ask(&api_key, "states:GetActivityTask", &activity).await);
}
