//! `local-stack`, the command behind `make dev`:
//!
//! - `local-stack dev [--port 3000] [--web-port 3001] [--prefix dev] [--release] [--state-file FILE]
//!   [--parameter Name=Value]... [--sqs-visibility-cap SECONDS] [--faults SPEC]
//!   [--exit-with-stdin]`: the whole system running locally (see `local_stack::dev`) until
//!   Ctrl-C; `--faults` (or `LOCAL_FAULTS`) injects faults into its principals' calls
//!   (`local_stack::faults`);
//! - `local-stack provision --prefix dev --env-file FILE`: only the resources, and the functions'
//!   resolved environment for `cargo lambda watch --env-file` (one environment for all functions,
//!   so the template must not give one variable two values);
//! - `local-stack gate --port P --emulator URL [--audit FILE]`: the IAM gate in front of the
//!   emulator (started by `local/with-emulator.sh`);
//! - `local-stack iam-report --audit FILE`: the least-privilege report from the gate's audit;
//! - `local-stack transform [--parameter Name=Value]...`: the transformed template (JSON);
//! - `local-stack redrive --queue DLQ (--state-file FILE | --stack NAME)`: a DLQ's messages back
//!   to their source queue, in the running `make dev` stack or a deployed one;
//! - `local-stack token --state-file FILE [--name NAME]`: a new person of the running stack's user
//!   pool (`local_stack::cognito::people`), signed in; prints their ID token for curl's
//!   `Authorization` header.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use local_stack::cloudformation::provision::Stack;
use local_stack::cloudformation::template::Template;
use local_stack::cloudwatch::PrefixedStdout;
use local_stack::dev::{DevOptions, DevStack};
use local_stack::emulator;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("dev") => dev(&args).await,
        Some("provision") => provision(&args).await,
        Some("gate") => gate(&args).await,
        Some("iam-report") => iam_report(&args),
        Some("transform") => transform(&args),
        Some("redrive") => redrive(&args).await,
        Some("token") => token(&args).await,
        _ => Err(
            "usage: local-stack dev|provision|gate|iam-report|transform|redrive|token [options] (see the crate docs)"
                .into(),
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("local-stack: {err}");
            ExitCode::FAILURE
        }
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn flags(args: &[String], name: &str) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].clone())
        .collect()
}

type Error = Box<dyn std::error::Error>;

fn parameters(args: &[String]) -> Result<Vec<(String, String)>, Error> {
    flags(args, "--parameter")
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("--parameter {p}: expected Name=Value").into())
        })
        .collect()
}

async fn gate(args: &[String]) -> Result<(), Error> {
    let port: u16 = flag(args, "--port").ok_or("--port is required")?.parse()?;
    let emulator = flag(args, "--emulator").ok_or("--emulator is required")?;
    let audit = flag(args, "--audit").map(std::path::PathBuf::from);
    // The deployer's token (local/with-emulator.sh makes one per run): without it no function
    // can register roles, turn faults off or reset the emulator.
    let admin_token = std::env::var("LOCAL_GATE_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    local_stack::gate::serve(listener, &emulator, audit.as_deref(), admin_token).await?;
    Ok(())
}

fn iam_report(args: &[String]) -> Result<(), Error> {
    let audit = flag(args, "--audit").ok_or("--audit FILE is required")?;
    let text = std::fs::read_to_string(&audit)
        .map_err(|e| format!("{audit}: {e} (run make test first; it writes the audit)"))?;
    print!("{}", local_stack::iam::report::report(&text));
    Ok(())
}

async fn redrive(args: &[String]) -> Result<(), Error> {
    use local_stack::redrive;
    let dlq = flag(args, "--queue").ok_or("--queue <DLQ logical id> is required")?;
    let template = Template::load_project_with(&parameters(args)?)?;
    let source = redrive::source_of(&template, &dlq)?;
    let (sqs, dlq_url, source_url) = match (flag(args, "--stack"), flag(args, "--state-file")) {
        (Some(stack), _) => {
            // A deployed stack: the default credentials chain and region, as the AWS CLI.
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let sqs = aws_sdk_sqs::Client::new(&config);
            let dlq_url = redrive::deployed_queue_url(&sqs, &stack, &dlq).await?;
            let source_url = redrive::deployed_queue_url(&sqs, &stack, &source).await?;
            (sqs, dlq_url, source_url)
        }
        (None, Some(state_file)) => {
            let (state, endpoint) = running_stack(&state_file)?;
            let sqs = aws_sdk_sqs::Client::new(&emulator::sdk_config(&endpoint).await);
            (
                sqs,
                redrive::local_queue_url(&state, &dlq)?,
                redrive::local_queue_url(&state, &source)?,
            )
        }
        (None, None) => return Err("--stack NAME or --state-file FILE is required".into()),
    };
    match redrive::redrive(&sqs, &dlq_url, &source_url).await? {
        redrive::Moved::Task(handle) => {
            println!("{dlq} -> {source}: SQS move task started ({handle}); it runs in the service")
        }
        redrive::Moved::Messages(n) => println!("{dlq} -> {source}: {n} messages moved"),
    }
    Ok(())
}

/// The state file of the running `make dev` stack, and its emulator's endpoint.
fn running_stack(state_file: &str) -> Result<(serde_json::Value, String), Error> {
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state_file)
            .map_err(|e| format!("{state_file}: {e} (is `make dev` running?)"))?,
    )?;
    let endpoint = state["emulator"]
        .as_str()
        .ok_or("the state file names no emulator")?
        .to_string();
    Ok((state, endpoint))
}

async fn token(args: &[String]) -> Result<(), Error> {
    let state_file = flag(args, "--state-file").ok_or("--state-file FILE is required")?;
    let (state, endpoint) = running_stack(&state_file)?;
    // The template's one user pool client, and the pool it belongs to.
    let template = Template::load_project()?;
    let (client_id, pool_id) = template
        .resources_of_kind("AWS::Cognito::UserPoolClient")
        .next()
        .and_then(|(id, client)| {
            let pool = client.properties["UserPoolId"]["Ref"].as_str()?;
            let reference = |id: &str| state["resources"][id]["ref"].as_str();
            Some((reference(id)?, reference(pool)?))
        })
        .ok_or("the running stack has no user pool client")?;
    let name = flag(args, "--name").unwrap_or_else(|| "Curl User".into());
    let id = uuid::Uuid::new_v4().simple().to_string();
    let email = format!("curl-{}@example.com", &id[..8]);
    let pool = local_stack::cognito::people::Pool { pool_id, client_id };
    let sdk = emulator::sdk_config(&endpoint).await;
    let person = pool
        .person(&sdk, &email, &name, &format!("pw-{id}"))
        .await?;
    eprintln!("signed in as {name} <{email}>; the ID token is good for an hour:");
    println!("{}", person.id_token);
    Ok(())
}

fn transform(args: &[String]) -> Result<(), Error> {
    let text = local_stack::cloudformation::template::transform(
        &local_stack::workspace::project_template_path(),
        &parameters(args)?,
    )?;
    print!("{text}");
    Ok(())
}

async fn dev(args: &[String]) -> Result<(), Error> {
    let state_file = flag(args, "--state-file").map(std::path::PathBuf::from);
    if let Some(running) = state_file.as_deref().and_then(running_instance) {
        return Err(format!(
            "make dev is already running ({running}); stop it first (Ctrl-C in its terminal)"
        )
        .into());
    }
    let parameters = parameters(args)?;
    let port: u16 = flag(args, "--port").map_or(Ok(3000), |p| p.parse())?;
    let options = DevOptions {
        prefix: flag(args, "--prefix").unwrap_or_else(|| "dev".into()),
        port,
        // Beside the gateway (a free one too when the gateway's port is picked).
        web_port: flag(args, "--web-port")
            .map_or(Ok(if port == 0 { 0 } else { 3001 }), |p| p.parse())?,
        api_key: flag(args, "--api-key").unwrap_or_else(|| "local-dev-api-key".into()),
        release: args.iter().any(|a| a == "--release"),
        visibility_timeout_cap: flag(args, "--sqs-visibility-cap")
            .map(|s| s.parse())
            .transpose()?,
        parameters,
        // --faults SPEC, or LOCAL_FAULTS (what the tests set); see local_stack::faults.
        faults: flag(args, "--faults")
            .or_else(|| std::env::var("LOCAL_FAULTS").ok().filter(|v| !v.is_empty())),
    };
    let started = std::time::Instant::now();
    let log = Arc::new(PrefixedStdout { width: 16 });
    let stack = DevStack::start(options, log, &|line| println!("{line}")).await?;
    if let Some(path) = &state_file {
        std::fs::write(path, serde_json::to_string_pretty(&stack.state())?)?;
    }
    print_tour(&stack, started.elapsed());

    let ctrl_c = tokio::signal::ctrl_c();
    if args.iter().any(|a| a == "--exit-with-stdin") {
        // For test harnesses: stop when the parent closes our stdin (or dies).
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        });
        tokio::select! {
            _ = ctrl_c => {}
            _ = stdin_closed => {}
        }
    } else {
        ctrl_c.await?;
    }
    println!("stopping: functions, gateway and event sources");
    stack.stop().await;
    if let Some(path) = &state_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// "pid N, http://…" when the state file names a process that is still alive.
fn running_instance(state_file: &std::path::Path) -> Option<String> {
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(state_file).ok()?).ok()?;
    let pid = state["pid"].as_u64()?;
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
        || std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
    alive.then(|| format!("pid {pid}, {}", state["gateway"].as_str().unwrap_or("?")))
}

fn print_tour(stack: &DevStack, took: std::time::Duration) {
    let url = &stack.gateway_url;
    let web = &stack.web_url;
    let key = &stack.api_key;
    let ws = stack
        .websocket_urls
        .values()
        .next()
        .cloned()
        .unwrap_or_default(); // no WebSocket API: nothing to show
    println!(
        "\nReady in {:.1} s. Web app: {web}   API: {url}   API key: {key}   WebSocket: {ws}\n\
         Function logs below are prefixed with the function's name. Ctrl-C stops everything.\n\n\
         Tour: paste into another terminal, in a folder with a JPEG named photo.jpg (the end-to-end\n\
         tests run exactly this script):\n",
        took.as_secs_f64()
    );
    let Some(client) = &stack.web_app_client else {
        return; // no user pool, no tour: every route needs a signed-in person
    };
    let sign_in = local_stack::tour::SignIn {
        endpoint: &stack.aws_endpoint,
        client_id: &client.client_id,
    };
    let now = time::OffsetDateTime::now_utc();
    println!(
        "{}",
        local_stack::tour::script(web, url, key, &ws, &sign_in, now)
    );
}

async fn provision(args: &[String]) -> Result<(), Error> {
    let prefix = flag(args, "--prefix").unwrap_or_else(|| "dev".into());
    let endpoint = emulator::endpoint_from_env().await?;
    let template = Arc::new(Template::load_project()?);
    let mut stack = Stack::new(
        template.clone(),
        emulator::sdk_config(&endpoint).await,
        prefix,
    );

    // Everything the emulator can hold, functions' dependencies or not (buckets with their
    // notifications, SES identities, ...); what it cannot hold is named and skipped.
    for (id, kind) in stack.ensure_all().await? {
        println!("  not emulated: {id} ({kind})");
    }
    let mut env: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (function_id, _) in template.resources_of_kind("AWS::Lambda::Function") {
        let vars = stack.function_env(function_id).await?;
        for (key, value) in vars {
            if let Some((other, previous)) = env.get(&key)
                && previous != &value
            {
                return Err(format!("{function_id} and {other} both set {key} to different values; cargo lambda watch shares one environment").into());
            }
            env.insert(key, (function_id.clone(), value));
        }
    }
    let mut lines: Vec<String> = env.iter().map(|(k, (_, v))| format!("{k}={v}")).collect();
    for key in [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ] {
        if let Ok(value) = std::env::var(key) {
            lines.push(format!("{key}={value}"));
        }
    }
    match flag(args, "--env-file") {
        Some(path) => std::fs::write(&path, lines.join("\n") + "\n")?,
        None => println!("{}", lines.join("\n")),
    }
    Ok(())
}
