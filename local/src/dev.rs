//! The whole system on a laptop (`make dev`, and the end-to-end tests): every resource of
//! template.yaml in the emulator, every function as a real Lambda process, the API Gateway
//! (REST + WebSocket) on one loopback port, and every event source and pipe running.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cloudwatch::{EmfTap, MetricStore};
use crate::emulator::{self, REGION};
use crate::gateway::{self, Gateway};
use crate::provision::{ProvisionError, Stack};
use crate::runtime::{FunctionSpec, Functions, LogSink};
use crate::sources::{self, EventSources, SourceError};
use crate::template::{Template, TemplateError, project_root};

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
    /// `http://127.0.0.1:PORT/`: the web app (`web/`, see [`crate::web`]).
    pub web_url: String,
    /// WebSocket API logical id -> `ws://` URL clients connect to.
    pub websocket_urls: BTreeMap<String, String>,
    pub api_key: String,
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
        options: DevOptions,
        log: Arc<dyn LogSink>,
        progress: &dyn Fn(&str),
    ) -> Result<Self, DevError> {
        let steps = 5;
        let mut step = 0;
        let mut timed = |what: &str, started: Instant| {
            step += 1;
            progress(&format!(
                "[{step}/{steps}] {what} ({:.1} s)",
                started.elapsed().as_secs_f64()
            ));
        };

        let started = Instant::now();
        let endpoint = emulator::endpoint_from_env().await?;
        // The web app's origin is what the APIs and the uploads bucket allow (CorsAllowOrigin),
        // as README asks of a deployer with the CloudFront domain, unless the caller set it.
        let web_listener = bind(options.web_port).await?;
        let web_origin = format!("http://{}", web_listener.local_addr().expect("bound"));
        let mut options = options;
        if !options.parameters.iter().any(|(k, _)| k == CORS_PARAMETER) {
            options
                .parameters
                .push((CORS_PARAMETER.into(), web_origin.clone()));
        }
        let template = Arc::new(Template::load_project_with(&options.parameters)?);
        let mut stack = Stack::new(
            template.clone(),
            emulator::sdk_config(&endpoint).await,
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
        let listener = bind(options.port).await?;
        let authority = listener.local_addr().expect("bound").to_string();
        let gateway_url = format!("http://{authority}");
        let run_locally: Vec<&str> = skipped.iter().map(|(id, _)| id.as_str()).collect();
        timed(
            &format!(
                "provisioned {} resources in the emulator at {endpoint}{}",
                stack.resolver.physical.len(),
                if run_locally.is_empty() {
                    String::new()
                } else {
                    format!("; not emulated: {}", run_locally.join(", "))
                }
            ),
            started,
        );

        let started = Instant::now();
        let function_ids: Vec<String> = template
            .resources_of_kind("AWS::Lambda::Function")
            .filter(|(_, f)| stack.resolver.exists(f).unwrap_or(false))
            .map(|(id, _)| id.clone())
            .collect();
        let binaries: Vec<String> = function_ids
            .iter()
            .map(|id| template.function_binary(id))
            .collect::<Result<_, _>>()?;
        let executables = build(&binaries, options.release).await?;
        timed(
            &format!(
                "built {} functions ({} profile)",
                binaries.len(),
                if options.release { "release" } else { "debug" }
            ),
            started,
        );

        let started = Instant::now();
        // API Gateway hostnames in the template's environment point at this gateway instead.
        let mut api_bases = HashMap::new();
        let mut api_ids = HashMap::new();
        let mut websocket_urls = BTreeMap::new();
        for (id, resource) in &template.resources {
            let base = match resource.kind.as_str() {
                "AWS::ApiGateway::RestApi" => gateway_url.clone(),
                "AWS::ApiGatewayV2::Api" => {
                    websocket_urls.insert(id.clone(), format!("ws://{authority}/_ws/{id}"));
                    format!("{gateway_url}/_ws/{id}")
                }
                _ => continue,
            };
            if let Ok(api_id) = stack.reference(id) {
                api_bases.insert(api_id.clone(), base);
                api_ids.insert(id.clone(), api_id);
            }
        }
        let mut specs = Vec::new();
        for (function_id, binary) in function_ids.iter().zip(&binaries) {
            specs.push(
                function_spec(
                    &mut stack,
                    function_id,
                    binary,
                    &executables,
                    &endpoint,
                    &api_bases,
                )
                .await?,
            );
        }
        // CloudWatch Logs reads the functions' output for EMF documents.
        let metrics = Arc::new(MetricStore::default());
        let function_log = Arc::new(EmfTap {
            store: metrics.clone(),
            inner: log.clone(),
        });
        let functions = Arc::new(Functions::start(specs, function_log));
        functions
            .wait_initialised(Duration::from_secs(60))
            .await
            .map_err(DevError::Start)?;
        timed(
            &format!(
                "started {} function processes (Lambda Runtime API)",
                function_ids.len()
            ),
            started,
        );

        let started = Instant::now();
        let sources = sources::start(&mut stack, functions.clone(), log.clone()).await?;
        timed(
            &format!(
                "event sources running:\n      {}",
                sources.descriptions.join("\n      ")
            ),
            started,
        );

        let started = Instant::now();
        let queues = template
            .resources_of_kind("AWS::SQS::Queue")
            .filter_map(|(id, _)| Some((id.clone(), stack.reference(id).ok()?)))
            .collect();
        let rest = crate::apis::rest_apis(&stack)?;
        // The key the gateway accepts stands for the template's API key resource; without one
        // in a usage plan of the stage, keyed routes cannot be called, as in AWS.
        let api_key = match rest.first() {
            Some(api) => crate::apis::usable_api_key(&stack, api)?.map(|_| options.api_key.clone()),
            None => None,
        };
        let router = gateway::router(Gateway {
            functions: functions.clone(),
            rest,
            websockets: crate::apis::websocket_apis(&stack)?,
            api_key,
            authority: authority.clone(),
            emulator: endpoint.clone(),
            api_ids,
            queues,
            sqs: aws_sdk_sqs::Client::new(&stack.sdk),
            log: log.clone(),
            gate: stack.gate.clone(),
            metrics: metrics.clone(),
        });
        let gateway = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let web_app = web_app(
            &stack,
            &gateway_url,
            &endpoint,
            &websocket_urls,
            &options.api_key,
        )?;
        let web = tokio::spawn(async move {
            let _ = axum::serve(web_listener, crate::web::router(web_app)).await;
        });
        timed(
            &format!("API Gateway listening on {gateway_url}; web app on {web_origin}/"),
            started,
        );

        Ok(Self {
            gateway_url,
            web_url: format!("{web_origin}/"),
            websocket_urls,
            api_key: options.api_key,
            functions,
            metrics,
            stack,
            sources,
            gateway,
            web,
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

const CORS_PARAMETER: &str = "CorsAllowOrigin";

async fn bind(port: u16) -> Result<tokio::net::TcpListener, DevError> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| DevError::Port { port, source })
}

/// The web app as the template deploys it: its response headers policy, and the config.json
/// `make web-publish` would write, pointing at this stack.
fn web_app(
    stack: &Stack,
    gateway_url: &str,
    endpoint: &str,
    websocket_urls: &BTreeMap<String, String>,
    api_key: &str,
) -> Result<crate::web::WebApp, DevError> {
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
    let origins = crate::web::LocalOrigins {
        gateway: origin(gateway_url),
        emulator: origin(endpoint),
    };
    let config = json!({
        "apiUrl": gateway_url,
        "websocketUrl": websocket_urls.values().next(),
        "apiKey": api_key,
        // Local only: where the approval e-mails land (a deployed stack sends them with SES).
        "localMailbox": format!("{gateway_url}/_local/mail"),
    });
    Ok(crate::web::WebApp::new(&policy, &origins, config)?)
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
    stack.ensure(&[function_id]).await?;
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
