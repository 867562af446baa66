//! `local-stack provision --prefix dev --env-file FILE`: creates every resource of template.yaml
//! that the emulator can hold, and writes the functions' resolved environment to FILE for
//! `cargo lambda watch --env-file` (one environment for all functions, so the template must not
//! give one variable two values).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use local_stack::provision::ProvisionError;
use local_stack::{Stack, Template, emulator};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("local-stack: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if args.first().map(String::as_str) != Some("provision") {
        return Err("usage: local-stack provision [--prefix NAME] [--env-file FILE]".into());
    }
    let prefix = flag("--prefix").unwrap_or_else(|| "dev".into());
    let endpoint = emulator::endpoint_from_env().await?;
    let template = Arc::new(Template::load_project()?);
    let mut stack = Stack::new(
        template.clone(),
        emulator::sdk_config(&endpoint).await,
        prefix,
    );

    // Everything the emulator can hold, functions' dependencies or not (buckets with their
    // notifications, SES identities, ...); what it cannot hold is named and skipped.
    let ids: Vec<String> = template.resources.keys().cloned().collect();
    let mut skipped = std::collections::BTreeSet::new();
    for id in &ids {
        match stack.ensure(&[id.as_str()]).await {
            Ok(()) => {}
            Err(ProvisionError::Unsupported { id: what, kind }) => {
                if skipped.insert(what.clone()) {
                    println!("  not emulated: {what} ({kind})");
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
    let mut env: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (function_id, _) in template.resources_of_kind("AWS::Serverless::Function") {
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
    match flag("--env-file") {
        Some(path) => std::fs::write(&path, lines.join("\n") + "\n")?,
        None => println!("{}", lines.join("\n")),
    }
    Ok(())
}
