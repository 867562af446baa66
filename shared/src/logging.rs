//! The log subscriber every function installs first thing in `main`.
//!
//! Lambda's advanced logging controls decide the shape: `AWS_LAMBDA_LOG_FORMAT=JSON` (what the
//! template's `LoggingConfig` sets) gives one JSON object per line, anything else plain text;
//! `AWS_LAMBDA_LOG_LEVEL` sets the level, `RUST_LOG` adds per-target levels
//! (`info,aws_smithy_runtime=debug`). This is what lambda_runtime's `init_default_subscriber`
//! does, with tracing-subscriber's `Targets` filter instead of `EnvFilter`: `EnvFilter` brings
//! the full regex engine and its Unicode tables into every binary (docs/benchmarks.md) for
//! span and field filters that a function's log level never needs.

use std::str::FromStr;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

use crate::config::{EnvSource, ProcessEnv, optional};

/// Installs the global subscriber, writing to stdout (CloudWatch Logs in Lambda).
pub fn init() {
    let env = ProcessEnv;
    let json = optional(&env, "AWS_LAMBDA_LOG_FORMAT")
        .is_some_and(|format| format.eq_ignore_ascii_case("json"));
    // The builder's own level cap stays open; `filter` decides.
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_max_level(LevelFilter::TRACE);
    let filter = filter(&env);
    // Err only when a subscriber is already installed (a test that set one up): keep that one.
    let _ = if json {
        tracing::subscriber::set_global_default(builder.json().finish().with(filter))
    } else {
        tracing::subscriber::set_global_default(builder.finish().with(filter))
    };
}

/// Which events are logged: `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`'s bare level, else INFO, as
/// the default; `RUST_LOG`'s `target=level` directives on top. Directives that do not parse are
/// skipped, as `EnvFilter::from_env_lossy` skips them.
pub fn filter(env: &dyn EnvSource) -> Targets {
    let mut targets = Targets::new();
    let mut rust_log_default = None;
    for directive in optional(env, "RUST_LOG")
        .iter()
        .flat_map(|spec| spec.split(','))
    {
        let directive = directive.trim();
        if let Ok(level) = LevelFilter::from_str(directive) {
            rust_log_default = Some(level);
        } else if let Ok(parsed) = Targets::from_str(directive) {
            targets.extend(parsed);
        }
    }
    let default = optional(env, "AWS_LAMBDA_LOG_LEVEL")
        .and_then(|level| lambda_level(&level))
        .or(rust_log_default)
        .unwrap_or(LevelFilter::INFO);
    targets.with_default(default)
}

/// Lambda's level names (TRACE DEBUG INFO WARN ERROR FATAL); FATAL has no tracing level, so it
/// keeps only errors.
fn lambda_level(name: &str) -> Option<LevelFilter> {
    if name.eq_ignore_ascii_case("fatal") {
        return Some(LevelFilter::ERROR);
    }
    LevelFilter::from_str(name).ok()
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;
    use crate::config::env_of;

    fn filter_for(pairs: &[(&str, &str)]) -> Targets {
        filter(&env_of(pairs))
    }

    #[test]
    fn info_when_nothing_is_set() {
        let f = filter_for(&[]);
        assert!(f.would_enable("items_api", &Level::INFO));
        assert!(!f.would_enable("items_api", &Level::DEBUG));
    }

    #[test]
    fn lambda_log_level_wins_over_rust_log_default() {
        let f = filter_for(&[("AWS_LAMBDA_LOG_LEVEL", "WARN"), ("RUST_LOG", "debug")]);
        assert!(f.would_enable("shared", &Level::WARN));
        assert!(!f.would_enable("shared", &Level::INFO));
        let fatal = filter_for(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]);
        assert!(fatal.would_enable("shared", &Level::ERROR));
        assert!(!fatal.would_enable("shared", &Level::WARN));
    }

    #[test]
    fn rust_log_targets_add_to_the_default() {
        let f = filter_for(&[
            ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
            ("RUST_LOG", "aws_smithy_runtime=debug"),
        ]);
        assert!(f.would_enable("aws_smithy_runtime::client", &Level::DEBUG));
        assert!(!f.would_enable("hyper", &Level::DEBUG));
        assert!(f.would_enable("hyper", &Level::INFO));
    }

    #[test]
    fn unparsable_directives_are_skipped_not_fatal() {
        let f = filter_for(&[("RUST_LOG", "debug,not a directive=loud,hyper=warn")]);
        assert!(f.would_enable("shared", &Level::DEBUG));
        assert!(!f.would_enable("hyper", &Level::INFO));
    }
}
