//! The whole system on a laptop (`make dev`, and the end-to-end tests): every resource of
//! template.yaml in the emulator, every function as a real Lambda process, the API Gateway
//! (REST + WebSocket) on one loopback port, and every event source and pipe running.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::apigateway::gateway::{self, Gateway};
use crate::cloudformation::provision::{ProvisionError, Stack};
use crate::cloudformation::template::{Template, TemplateError};
use crate::cloudwatch::LogSink;
use crate::cloudwatch::{EmfTap, MetricStore};
use crate::emulator::{self, REGION};
use crate::lambda::runtime::{FunctionSpec, Functions};
use crate::lambda::sources::{self, EventSources, SourceError};
use crate::workspace::project_root;

#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Name prefix of every provisioned resource (and the stack name).
    pub prefix: String,
    /// Gateway port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The web app's port on 127.0.0.1 (its own origin, as CloudFront is); 0 picks a free one.
    pub web_port: u16,
    /// The API key the gateway accepts.
    pub api_key: String,
    /// Run release builds of the functions instead of debug ones.
    pub release: bool,
    /// See [`Stack::visibility_timeout_cap`].
    pub visibility_timeout_cap: Option<u64>,
    /// Template parameter overrides, as `sam deploy --parameter-overrides`.
    pub parameters: Vec<(String, String)>,
    /// Fault injection for this stack's principals (see [`crate::faults`]); off when `None`.
    pub faults: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(transparent)]
    Emulator(#[from] emulator::EmulatorError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Sources(#[from] SourceError),
    #[error(
        "port {port} on 127.0.0.1 is taken ({source}); is another `make dev` running? Pick another with DEV_PORT=..."
    )]
    Port { port: u16, source: std::io::Error },
    #[error("building the functions failed: {0}")]
    Build(String),
    #[error("functions did not start: {0}")]
    Start(String),
}

/// A running local stack; [`DevStack::stop`] ends every process it started.
pub struct DevStack {
    /// `http://127.0.0.1:PORT`: the REST API, `/_local/mail`, and the WebSocket APIs under `/_ws/`.
    pub gateway_url: String,
    /// `http://127.0.0.1:PORT/`: the web app (`web/`, see [`crate::cloudfront`]).
    pub web_url: String,
    /// WebSocket API logical id -> `ws://` URL clients connect to.
    pub websocket_urls: BTreeMap<String, String>,
    pub api_key: String,
    /// The AWS endpoint (the gate), where people sign in as at `cognito-idp.{region}`.
    pub aws_endpoint: String,
    /// The web app's client of the user pool, and the pool (`None`: the template has none).
    pub web_app_client: Option<WebAppClient>,
    pub functions: Arc<Functions>,
    /// What CloudWatch extracted from the functions' EMF lines (`GET /_local/metrics`).
    pub metrics: Arc<MetricStore>,
    pub stack: Stack,
    pub sources: EventSources,
    gateway: tokio::task::JoinHandle<()>,
    web: tokio::task::JoinHandle<()>,
}

impl DevStack {
    /// Brings everything up; `progress` hears one line per step.
    pub async fn start(
        mut options: DevOptions,
        log: Arc<dyn LogSink>,
        progress: &dyn Fn(&str),
    ) -> Result<Self, DevError> {
        let mut steps = Steps {
            report: progress,
            done: 0,
        };
        let started = Instant::now();
        let endpoint = emulator::endpoint_from_env().await?;
        // The web app's origin is what the APIs and the uploads bucket allow (CorsAllowOrigin),
        // as README asks of a deployer with the CloudFront domain, unless the caller set it.
        let web_listener = bind(options.web_port).await?;
        let web_origin = format!("http://{}", web_listener.local_addr().expect("bound"));
        options.allow_origin_unless_set(&web_origin);
        let (mut stack, skipped) = provision(&options, &endpoint, progress).await?;
        let listener = bind(options.port).await?;
        let authority = listener.local_addr().expect("bound").to_string();
        steps.done(&provisioned(&stack, &endpoint, &skipped), started);

        let started = Instant::now();
        let built = FunctionBuild::run(&stack, options.release).await?;
        steps.done(&built.summary(options.release), started);

        let started = Instant::now();
        let routing = ApiRouting::of(&stack, &authority);
        let (functions, metrics) =
            start_functions(&mut stack, &built, &endpoint, &routing, log.clone()).await?;
        let count = built.functions.len();
        let what = format!("started {count} function processes (Lambda Runtime API)");
        steps.done(&what, started);

        let started = Instant::now();
        let sources = sources::start(&mut stack, functions.clone(), log.clone()).await?;
        let described = sources.descriptions.join("\n      ");
        steps.done(
            &format!("event sources running:\n      {described}"),
            started,
        );

        let started = Instant::now();
        let gateway_url = format!("http://{authority}");
        let web_app = web_app(&stack, &gateway_url, &endpoint, &routing, &options.api_key)?;
        let rest = crate::apigateway::apis::rest_apis(&stack)?;
        let gateway = Gateway {
            functions: functions.clone(),
            api_key: accepted_api_key(&stack, rest.first(), &options.api_key)?,
            rest,
            websockets: crate::apigateway::apis::websocket_apis(&stack)?,
            authority,
            emulator: endpoint.clone(),
            api_ids: routing.api_ids,
            queues: queue_urls(&stack),
            sqs: aws_sdk_sqs::Client::new(&stack.sdk),
            log,
            gate: stack.gate.clone(),
            metrics: metrics.clone(),
        };
        let serving = Serving::start(listener, gateway, web_listener, web_app);
        steps.done(
            &format!("API Gateway listening on {gateway_url}; web app on {web_origin}/"),
            started,
        );
        Ok(Self {
            gateway_url,
            web_url: format!("{web_origin}/"),
            websocket_urls: routing.websocket_urls,
            api_key: options.api_key,
            web_app_client: web_app_client(&stack)?,
            aws_endpoint: endpoint,
            functions,
            metrics,
            stack,
            sources,
            gateway: serving.gateway,
            web: serving.web,
        })
    }

    /// What tools and tests need to talk to the running stack (written to the state file).
    pub fn state(&self) -> Value {
        let resources: BTreeMap<&String, Value> = self
            .stack
            .resolver
            .physical
            .iter()
            .map(|(id, p)| (id, json!({"ref": p.reference, "attributes": p.attributes})))
            .collect();
        json!({
            "pid": std::process::id(),
            "gateway": self.gateway_url,
            "web": self.web_url,
            "cors_allow_origin": self.stack.resolver.parameters.get(CORS_PARAMETER),
            "emulator": self.stack.sdk.endpoint_url(),
            "api_key": self.api_key,
            "websockets": self.websocket_urls,
            "resources": resources,
        })
    }

    pub async fn stop(self) {
        self.gateway.abort();
        self.web.abort();
        drop(self.sources);
        self.functions.shutdown().await;
    }
}

/// The gateway and the web app, each served on its listener until aborted.
struct Serving {
    gateway: tokio::task::JoinHandle<()>,
    web: tokio::task::JoinHandle<()>,
}

impl Serving {
    fn start(
        gateway_listener: tokio::net::TcpListener,
        gateway: Gateway,
        web_listener: tokio::net::TcpListener,
        web_app: crate::cloudfront::WebApp,
    ) -> Self {
        let router = gateway::router(gateway);
        let gateway = tokio::spawn(async move {
            let _ = axum::serve(gateway_listener, router).await;
        });
        let web = tokio::spawn(async move {
            let _ = axum::serve(web_listener, crate::cloudfront::router(web_app)).await;
        });
        Self { gateway, web }
    }
}

impl DevOptions {
    /// `CorsAllowOrigin` = `origin`, unless the caller set it.
    fn allow_origin_unless_set(&mut self, origin: &str) {
        if !self.parameters.iter().any(|(k, _)| k == CORS_PARAMETER) {
            self.parameters
                .push((CORS_PARAMETER.into(), origin.to_string()));
        }
    }
}

/// `[n/5] what (1.2 s)` lines, one per step of [`DevStack::start`].
struct Steps<'a> {
    report: &'a dyn Fn(&str),
    done: usize,
}

impl Steps<'_> {
    const COUNT: usize = 5;

    fn done(&mut self, what: &str, started: Instant) {
        self.done += 1;
        (self.report)(&format!(
            "[{}/{}] {what} ({:.1} s)",
            self.done,
            Self::COUNT,
            started.elapsed().as_secs_f64()
        ));
    }
}

/// Every resource of the template in the emulator, under the options' prefix and parameters,
/// with faults on when asked; returns the stack and what is not emulated (and why).
async fn provision(
    options: &DevOptions,
    endpoint: &str,
    progress: &dyn Fn(&str),
) -> Result<(Stack, Vec<(String, String)>), DevError> {
    let template = Arc::new(Template::load_project_with(&options.parameters)?);
    let mut stack = Stack::new(
        template,
        emulator::sdk_config(endpoint).await,
        options.prefix.clone(),
    );
    stack.visibility_timeout_cap = options.visibility_timeout_cap;
    for (name, value) in &options.parameters {
        stack.set_parameter(name, value);
    }
    // The deploy step the README asks of a user: the sender address is a verified SES
    // identity before the stack sends from it.
    if let Some(sender) = stack
        .resolver
        .parameters
        .get("ApprovalSenderEmail")
        .cloned()
    {
        stack.verify_email_identity(&sender).await?;
    }
    let skipped = stack.ensure_all().await?;
    if let Some(spec) = &options.faults {
        spec.parse::<crate::faults::FaultSpec>()
            .map_err(DevError::Start)?;
        stack
            .gate
            .set_faults(&stack.prefix, Some(spec))
            .await
            .map_err(DevError::Start)?;
        progress(&format!("fault injection on: {spec}"));
    }
    Ok((stack, skipped))
}

fn provisioned(stack: &Stack, endpoint: &str, skipped: &[(String, String)]) -> String {
    let run_locally: Vec<&str> = skipped.iter().map(|(id, _)| id.as_str()).collect();
    format!(
        "provisioned {} resources in the emulator at {endpoint}{}",
        stack.resolver.physical.len(),
        if run_locally.is_empty() {
            String::new()
        } else {
            format!("; not emulated: {}", run_locally.join(", "))
        }
    )
}

/// The functions that exist under the stack's parameters, built.
struct FunctionBuild {
    /// (logical id, binary name), in template order.
    functions: Vec<(String, String)>,
    executables: HashMap<String, PathBuf>,
}

impl FunctionBuild {
    async fn run(stack: &Stack, release: bool) -> Result<Self, DevError> {
        let template = &stack.template;
        let mut functions = Vec::new();
        for (id, function) in template.resources_of_kind("AWS::Lambda::Function") {
            if stack.resolver.exists(function)? {
                functions.push((id.clone(), template.function_binary(id)?));
            }
        }
        let binaries: Vec<String> = functions.iter().map(|(_, b)| b.clone()).collect();
        let executables = build(&binaries, release).await?;
        Ok(Self {
            functions,
            executables,
        })
    }

    fn summary(&self, release: bool) -> String {
        format!(
            "built {} functions ({} profile)",
            self.functions.len(),
            if release { "release" } else { "debug" }
        )
    }
}

/// Where each API of the template is served locally.
struct ApiRouting {
    /// API id (physical) -> the local base URL its `execute-api` host becomes.
    api_bases: HashMap<String, String>,
    /// API logical id -> its physical id.
    api_ids: HashMap<String, String>,
    /// WebSocket API logical id -> the `ws://` URL clients connect to.
    websocket_urls: BTreeMap<String, String>,
}

impl ApiRouting {
    fn of(stack: &Stack, authority: &str) -> Self {
        let gateway_url = format!("http://{authority}");
        let mut routing = Self {
            api_bases: HashMap::new(),
            api_ids: HashMap::new(),
            websocket_urls: BTreeMap::new(),
        };
        for (id, resource) in &stack.template.resources {
            let base = match resource.kind.as_str() {
                "AWS::ApiGateway::RestApi" => gateway_url.clone(),
                "AWS::ApiGatewayV2::Api" => {
                    routing
                        .websocket_urls
                        .insert(id.clone(), format!("ws://{authority}/_ws/{id}"));
                    format!("{gateway_url}/_ws/{id}")
                }
                _ => continue,
            };
            if let Ok(api_id) = stack.reference(id) {
                routing.api_bases.insert(api_id.clone(), base);
                routing.api_ids.insert(id.clone(), api_id);
            }
        }
        routing
    }
}

/// Every built function as a Lambda process, its API Gateway hostnames pointing at this gateway
/// and its output read by CloudWatch Logs for EMF documents.
async fn start_functions(
    stack: &mut Stack,
    build: &FunctionBuild,
    endpoint: &str,
    routing: &ApiRouting,
    log: Arc<dyn LogSink>,
) -> Result<(Arc<Functions>, Arc<MetricStore>), DevError> {
    let mut specs = Vec::new();
    for (function_id, binary) in &build.functions {
        let spec = function_spec(
            stack,
            function_id,
            binary,
            &build.executables,
            endpoint,
            &routing.api_bases,
        );
        specs.push(spec.await?);
    }
    let metrics = Arc::new(MetricStore::default());
    let function_log = Arc::new(EmfTap {
        store: metrics.clone(),
        inner: log,
    });
    let functions = Arc::new(Functions::start(specs, function_log));
    functions
        .wait_initialised(Duration::from_secs(60))
        .await
        .map_err(DevError::Start)?;
    Ok((functions, metrics))
}

/// The key the gateway accepts stands for the template's API key resource; without one in a
/// usage plan of the stage, keyed routes cannot be called, as in AWS.
fn accepted_api_key(
    stack: &Stack,
    api: Option<&crate::apigateway::apis::RestApi>,
    key: &str,
) -> Result<Option<String>, DevError> {
    Ok(match api {
        Some(api) => crate::apigateway::apis::usable_api_key(stack, api)?.map(|_| key.to_string()),
        None => None,
    })
}

/// Queue logical id -> URL, for `GET /_local/queues/{id}`.
fn queue_urls(stack: &Stack) -> BTreeMap<String, String> {
    stack
        .template
        .resources_of_kind("AWS::SQS::Queue")
        .filter_map(|(id, _)| Some((id.clone(), stack.reference(id).ok()?)))
        .collect()
}

const CORS_PARAMETER: &str = "CorsAllowOrigin";

async fn bind(port: u16) -> Result<tokio::net::TcpListener, DevError> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| DevError::Port { port, source })
}

/// A user pool app client of the stack.
#[derive(Debug, Clone)]
pub struct WebAppClient {
    pub client_id: String,
    pub pool_id: String,
}

/// The web app's client of the user pool: the template's one `AWS::Cognito::UserPoolClient`.
fn web_app_client(stack: &Stack) -> Result<Option<WebAppClient>, TemplateError> {
    let Some((id, resource)) = stack
        .template
        .resources_of_kind("AWS::Cognito::UserPoolClient")
        .next()
    else {
        return Ok(None);
    };
    Ok(Some(WebAppClient {
        client_id: stack.reference(id)?,
        pool_id: stack
            .resolver
            .resolve_string(&resource.properties["UserPoolId"])?,
    }))
}

/// The web app as the template deploys it: its response headers policy, and the config.json
/// `make web-publish` would write, pointing at this stack.
fn web_app(
    stack: &Stack,
    gateway_url: &str,
    endpoint: &str,
    routing: &ApiRouting,
    api_key: &str,
) -> Result<crate::cloudfront::WebApp, DevError> {
    let policy = match stack
        .template
        .resources_of_kind("AWS::CloudFront::ResponseHeadersPolicy")
        .next()
    {
        Some((_, resource)) => stack.resolver.resolve(&resource.properties)?,
        None => Value::Null,
    };
    let origin = |url: &str| {
        url::Url::parse(url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| url.to_string())
    };
    let origins = crate::cloudfront::LocalOrigins {
        gateway: origin(gateway_url),
        emulator: origin(endpoint),
    };
    let client = web_app_client(stack)?;
    let config = json!({
        "apiUrl": gateway_url,
        "websocketUrl": routing.websocket_urls.values().next(),
        "apiKey": api_key,
        // Cognito's endpoint is the gate, as `https://cognito-idp.{region}.amazonaws.com/` is.
        "cognitoEndpoint": endpoint,
        "userPoolId": client.as_ref().map(|c| &c.pool_id),
        "userPoolClientId": client.as_ref().map(|c| &c.client_id),
        // Local only: where the approval e-mails land (a deployed stack sends them with SES).
        "localMailbox": format!("{gateway_url}/_local/mail"),
    });
    Ok(crate::cloudfront::WebApp::new(&policy, &origins, config)?)
}

/// Rewrites `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}/rest` (and `wss://`)
/// to the local gateway's base for that API + `/rest`; other values are returned unchanged.
pub fn localize_api_url(value: &str, api_bases: &HashMap<String, String>) -> String {
    let Some(rest) = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("wss://"))
    else {
        return value.to_string();
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let suffix = format!(".execute-api.{REGION}.amazonaws.com");
    let Some(base) = host
        .strip_suffix(&suffix)
        .and_then(|api_id| api_bases.get(api_id))
    else {
        return value.to_string();
    };
    // The first path segment is the stage, which the local gateway does not use.
    let after_stage = path.split_once('/').map(|(_, p)| p).unwrap_or("");
    if after_stage.is_empty() {
        base.clone()
    } else {
        format!("{base}/{after_stage}")
    }
}

async fn function_spec(
    stack: &mut Stack,
    function_id: &str,
    binary: &str,
    executables: &HashMap<String, PathBuf>,
    endpoint: &str,
    api_bases: &HashMap<String, String>,
) -> Result<FunctionSpec, DevError> {
    let template = stack.template.clone();
    let setting = |name: &str| -> Result<Option<String>, TemplateError> {
        template
            .function_property(function_id, name)
            .map(|v| stack.resolver.resolve_string(&v))
            .transpose()
    };
    let timeout: u64 = setting("Timeout")?
        .and_then(|t| t.parse().ok())
        .unwrap_or(3);
    let memory_mb: u64 = setting("MemorySize")?
        .and_then(|m| m.parse().ok())
        .unwrap_or(128);
    let logging = template
        .function_property(function_id, "LoggingConfig")
        .map(|v| stack.resolver.resolve(&v))
        .transpose()?
        .unwrap_or(Value::Null);
    let mut env: Vec<(String, String)> = stack
        .function_env(function_id)
        .await?
        .into_iter()
        .map(|(k, v)| {
            let v = localize_api_url(&v, api_bases);
            (k, v)
        })
        .collect();
    // The function's process signs with its role's credentials, as Lambda hands them to it.
    stack.ensure(&[function_id]).await?;
    let access_key = stack.access_key(&stack.role_of(function_id)?);
    for (key, value) in [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", access_key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", crate::iam::LOCAL_SECRET),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
    ] {
        env.push((key.into(), value.into()));
    }
    // What Lambda sets from LoggingConfig (JSON logs at the configured level).
    if let Some(format) = logging["LogFormat"].as_str() {
        env.push(("AWS_LAMBDA_LOG_FORMAT".into(), format.into()));
    }
    if let Some(level) = logging["ApplicationLogLevel"].as_str() {
        env.push(("AWS_LAMBDA_LOG_LEVEL".into(), level.into()));
    }
    Ok(FunctionSpec {
        logical_id: function_id.to_string(),
        name: stack.reference(function_id)?,
        label: binary.to_string(),
        binary: executables
            .get(binary)
            .cloned()
            .ok_or_else(|| DevError::Build(format!("cargo built no binary {binary}")))?,
        env,
        timeout: Duration::from_secs(timeout),
        memory_mb,
        arn: stack.attribute(function_id, "Arn")?,
    })
}

/// `cargo build` of the functions' binaries; returns each binary's path, as cargo reports it.
async fn build(binaries: &[String], release: bool) -> Result<HashMap<String, PathBuf>, DevError> {
    let workspace = project_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = tokio::process::Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--message-format=json-render-diagnostics"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    if release {
        command.arg("--release");
    }
    for binary in binaries {
        command.args(["--bin", binary]);
    }
    let output = command
        .output()
        .await
        .map_err(|e| DevError::Build(format!("cannot run cargo: {e}")))?;
    if !output.status.success() {
        return Err(DevError::Build(format!(
            "cargo build exited with {}",
            output.status
        )));
    }
    let mut executables = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        if let (Some(name), Some(path)) = (
            message.pointer("/target/name").and_then(Value::as_str),
            message["executable"].as_str(),
        ) {
            executables.insert(name.to_string(), PathBuf::from(path));
        }
    }
    Ok(executables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_gateway_urls_point_at_the_local_gateway() {
        let bases = HashMap::from([
            (
                "devrestapi".to_string(),
                "http://127.0.0.1:3000".to_string(),
            ),
            (
                "devchatweb".to_string(),
                "http://127.0.0.1:3000/_ws/ChatWebSocketApi".to_string(),
            ),
        ]);
        let host = "execute-api.us-east-1.amazonaws.com";
        assert_eq!(
            localize_api_url(
                &format!("https://devrestapi.{host}/prod/thumbnails"),
                &bases
            ),
            "http://127.0.0.1:3000/thumbnails"
        );
        assert_eq!(
            localize_api_url(&format!("https://devrestapi.{host}/prod"), &bases),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            localize_api_url(&format!("https://devchatweb.{host}/prod"), &bases),
            "http://127.0.0.1:3000/_ws/ChatWebSocketApi"
        );
        for unchanged in [
            format!("https://other.{host}/prod"),
            "https://example.com/prod".to_string(),
            "plain value".to_string(),
        ] {
            assert_eq!(localize_api_url(&unchanged, &bases), unchanged);
        }
    }
}
