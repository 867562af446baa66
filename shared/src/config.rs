//! Function configuration from environment variables.
//!
//! template.yaml is the only place that names resources; functions read them from their
//! environment. Reading goes through [`EnvSource`] so tests can hand a function the environment
//! the template gives it (resolved against the emulator) without touching the process env.

use std::collections::HashMap;
use std::str::FromStr;

pub trait EnvSource {
    fn get(&self, key: &str) -> Option<String>;
}

/// The real process environment (what Lambda sets from the template).
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

/// An environment from literal pairs, for unit tests of code that reads an [`EnvSource`].
#[cfg(test)]
pub(crate) fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (template.yaml sets it for the function)")]
    Missing(String),
    #[error("environment variable {key} is invalid: {reason}")]
    Invalid { key: String, reason: String },
}

pub fn required(env: &dyn EnvSource, key: &str) -> Result<String, ConfigError> {
    env.get(key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ConfigError::Missing(key.to_string()))
}

pub fn optional(env: &dyn EnvSource, key: &str) -> Option<String> {
    env.get(key).filter(|v| !v.is_empty())
}

/// An optional, parsed value with a default.
pub fn parsed_or<T>(env: &dyn EnvSource, key: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(env, key) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
            key: key.to_string(),
            reason: e.to_string(),
        }),
    }
}
