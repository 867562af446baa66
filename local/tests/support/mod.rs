//! The local stack as a child process (`local-stack dev`, what `make dev` runs) for the
//! end-to-end and chaos tests: started on a free port with a prefix of its own, stopped when the
//! test binary exits (its stdin closes). With `E2E_STACK_STATE` set (`make e2e-aws STACK=...`)
//! the same tests drive a deployed stack instead, from its state file
//! (local/tools/stack_state.py); checks of local-only views (the mailbox, the log, the metrics
//! view) are skipped there, each with its reason.

#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Local {
    pub url: String,
    /// The web app (`web/` with its config.json).
    pub web: String,
    /// What the APIs and the uploads bucket answer in Access-Control-Allow-Origin.
    pub cors_allow_origin: String,
    pub api_key: String,
    pub websocket: String,
    pub prefix: String,
    pub state: Value,
    pub log: PathBuf,
    /// Holds the stack's stdin open; the stack stops when this test binary exits. `None` for a
    /// deployed stack.
    _child: Mutex<Option<Child>>,
}

/// The state file of a deployed stack the tests should drive instead of a local one.
pub fn deployed_state() -> Option<PathBuf> {
    std::env::var_os("E2E_STACK_STATE").map(PathBuf::from)
}

impl Local {
    pub fn resource(&self, id: &str) -> String {
        self.state["resources"][id]["ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} is not provisioned"))
            .to_string()
    }

    pub fn attribute(&self, id: &str, attribute: &str) -> String {
        self.state["resources"][id]["attributes"][attribute]
            .as_str()
            .unwrap_or_else(|| panic!("{id}.{attribute} is not provisioned"))
            .to_string()
    }

    /// CloudWatch's `Sum` and `SampleCount` of a metric the function emitted so far (namespace:
    /// the stack; dimensions: `Function` = its name, plus `extra`), from `GET /_local/metrics`.
    pub async fn metric(
        &self,
        function_id: &str,
        name: &str,
        extra: &[(&str, &str)],
    ) -> (f64, u64) {
        if self.on_aws() {
            // CloudWatch makes EMF metrics queryable minutes later; the alarms and the dashboard
            // read them there.
            return (0.0, 0);
        }
        let snapshot: Value = http()
            .get(format!("{}/_local/metrics", self.url))
            .send()
            .await
            .expect("metrics view")
            .json()
            .await
            .expect("JSON");
        let function = self.resource(function_id);
        let mut wanted = serde_json::Map::new();
        wanted.insert("Function".into(), function.into());
        for (k, v) in extra {
            wanted.insert(k.to_string(), Value::from(*v));
        }
        snapshot["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["namespace"] == self.prefix.as_str() && m["metric"] == name)
            .filter(|m| m["dimensions"].as_object() == Some(&wanted))
            .fold((0.0, 0), |(sum, count), m| {
                (
                    sum + m["sum"].as_f64().unwrap_or_default(),
                    count + m["sampleCount"].as_u64().unwrap_or_default(),
                )
            })
    }

    /// Waits (up to 30 s: the flush follows the response) until the metric's sum grew by at least
    /// `by` from `before`; other tests may add to it too, so never "exactly".
    pub async fn metric_grows(
        &self,
        function_id: &str,
        name: &str,
        extra: &[(&str, &str)],
        before: f64,
        by: f64,
    ) -> f64 {
        if self.skip_on_aws(&format!(
            "{function_id} {name}: CloudWatch shows EMF metrics minutes later"
        )) {
            return 0.0;
        }
        let started = Instant::now();
        loop {
            let (sum, _) = self.metric(function_id, name, extra).await;
            if sum >= before + by {
                return sum;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{function_id} {name} {extra:?} is {sum}, expected at least {}\n{}",
                before + by,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn log_tail(&self) -> String {
        if self.on_aws() {
            return format!(
                "(deployed stack {}: its logs are in CloudWatch Logs)",
                self.prefix
            );
        }
        log_tail(&self.log)
    }

    /// Whether this is a deployed stack (`make e2e-aws`) rather than the local one.
    pub fn on_aws(&self) -> bool {
        self.state["target"] == "aws"
    }

    /// Says why a local-only check is skipped on a deployed stack; true when it is.
    pub fn skip_on_aws(&self, why: &str) -> bool {
        if self.on_aws() {
            eprintln!("skipped on the deployed stack: {why}");
        }
        self.on_aws()
    }

    /// A deployed stack, from the state file local/tools/stack_state.py wrote.
    fn deployed(path: &PathBuf) -> Local {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("E2E_STACK_STATE={}: {e}", path.display()));
        let state: Value = serde_json::from_str(&text).expect("a stack state file");
        let stack = state["stack"].as_str().expect("stack").to_string();
        Local::from_state(state, stack, PathBuf::new(), None)
    }

    /// What the tests need from a stack's state file (the local one or a deployed one's).
    fn from_state(state: Value, prefix: String, log: PathBuf, child: Option<Child>) -> Local {
        Local {
            url: state["gateway"].as_str().expect("gateway").to_string(),
            web: state["web"].as_str().expect("web app").to_string(),
            cors_allow_origin: state["cors_allow_origin"]
                .as_str()
                .expect("CorsAllowOrigin")
                .to_string(),
            api_key: state["api_key"].as_str().expect("key").to_string(),
            websocket: state["websockets"]["ChatWebSocketApi"]
                .as_str()
                .expect("chat WebSocket")
                .to_string(),
            prefix,
            state,
            log,
            _child: Mutex::new(child),
        }
    }

    /// Starts `local-stack dev` (it builds the functions, so the first start waits minutes).
    pub fn start(name: &str, extra: &[&str]) -> Local {
        if let Some(path) = deployed_state() {
            return Local::deployed(&path);
        }
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok(),
            "AWS_ENDPOINT_URL is not set: run `make test` (it starts the emulator)"
        );
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("{name}{}", &id[..6]);
        let dir = std::env::temp_dir();
        let state_file = dir.join(format!("local-stack-{name}-{}.json", &id[..8]));
        let log = dir.join(format!("local-stack-{name}-{}.log", &id[..8]));
        let output = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_local-stack"))
            .args(["dev", "--port", "0", "--exit-with-stdin"])
            .args(["--prefix", &prefix])
            .args(extra)
            .arg("--state-file")
            .arg(&state_file)
            .stdin(Stdio::piped())
            .stdout(output.try_clone().expect("log file"))
            .stderr(output)
            .spawn()
            .expect("local-stack starts");
        let started = Instant::now();
        let state: Value = loop {
            if let Ok(text) = std::fs::read_to_string(&state_file)
                && let Ok(state) = serde_json::from_str(&text)
            {
                break state;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "local-stack exited ({status}) before it was ready:\n{}",
                    log_tail(&log)
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(1800),
                "local-stack not ready after 30 min:\n{}",
                log_tail(&log)
            );
            std::thread::sleep(Duration::from_millis(250));
        };
        Local::from_state(state, prefix, log, Some(child))
    }
}

pub fn log_tail(path: &PathBuf) -> String {
    let mut text = String::new();
    let _ = std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The deployer's SDK configuration (test assertions look where a user would): the emulator's,
/// or for a deployed stack the default credentials chain and region, as the AWS CLI's.
pub async fn sdk() -> aws_config::SdkConfig {
    if deployed_state().is_some() {
        return aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    }
    let endpoint = local_stack::emulator::endpoint_from_env()
        .await
        .expect("emulator");
    local_stack::emulator::sdk_config(&endpoint).await
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A real JPEG, 640x480.
pub fn photo() -> Vec<u8> {
    let image = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encodes");
    out.into_inner()
}

/// A user pools API call as the web app makes it: unsigned JSON to Cognito's endpoint (the
/// gate, locally); the status and the JSON answer.
pub async fn cognito(operation: &str, body: Value) -> (u16, Value) {
    // AWS_ENDPOINT_URL overrides every service's endpoint, as in the SDKs (the local gate, or the
    // rehearsal of a deployed run); otherwise the region's.
    let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ => {
            let region = sdk().await.region().map(ToString::to_string);
            format!(
                "https://cognito-idp.{}.amazonaws.com/",
                region.expect("a region")
            )
        }
    };
    let response = http()
        .post(endpoint)
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            format!("{}{operation}", local_stack::cognito::TARGET_PREFIX),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("Cognito answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A confirmed person of the stack's user pool, signed in as the web app signs in.
#[derive(Debug, Clone)]
pub struct Person {
    pub email: String,
    pub name: String,
    pub password: String,
    /// The ID token the REST API's authorizer takes (`Authorization` header).
    pub id_token: String,
    pub access_token: String,
    /// The `sub` claim: the person's lasting id.
    pub sub: String,
}

impl Local {
    /// A new person named `name` (a fresh address), made by the deployer and signed in
    /// ([`local_stack::cognito::people`]); suites that test sign-up itself go through the mailed
    /// code instead.
    pub async fn person(&self, name: &str) -> Person {
        // The address's local part from the name's ASCII letters (a name in any script works).
        let mut local_part: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect::<String>()
            .to_lowercase();
        if local_part.is_empty() {
            local_part = "person".into();
        }
        let email = format!(
            "{local_part}-{}@example.com",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let (pool_id, client_id) = (self.resource("UserPool"), self.resource("WebAppClient"));
        let pool = local_stack::cognito::people::Pool {
            pool_id: &pool_id,
            client_id: &client_id,
        };
        let signed_in = pool
            .person(&sdk().await, &email, name, &password)
            .await
            .unwrap_or_else(|e| panic!("{name} signs in: {e}"));
        Person {
            sub: claims(&signed_in.id_token)["sub"]
                .as_str()
                .expect("sub")
                .to_string(),
            email: signed_in.email,
            name: signed_in.name,
            password: signed_in.password,
            id_token: signed_in.id_token,
            access_token: signed_in.access_token,
        }
    }
}

/// A JWT's claims, read without checking it (the gateway checks; tests only look).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}
