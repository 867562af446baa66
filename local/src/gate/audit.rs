//! The gate's record of what it decided: one JSON line per decision in the audit file
//! (`--audit`), which `local-stack iam-report` reads; and the one way a refusal is said on
//! stderr. This module is the only writer of [`AuditEntry`].

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::iam::RoleRecord;

/// What the gate decided about one (action, resource) of a call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEntry {
    pub stack: String,
    pub role: String,
    pub service: String,
    pub operation: String,
    pub action: String,
    pub resource: String,
    pub allowed: bool,
}

/// One line of the audit file: a role as registered, or a decision.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum AuditLine<'a> {
    Role { record: &'a RoleRecord },
    Call(&'a AuditEntry),
}

/// The audit file, when the gate keeps one.
#[derive(Default)]
pub struct Audit {
    file: Option<Mutex<std::fs::File>>,
}

impl Audit {
    /// Appends to `path` (created when missing); `None`: nothing is recorded.
    pub fn open(path: Option<&Path>) -> std::io::Result<Self> {
        let file = match path {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
            None => None,
        };
        Ok(Self { file })
    }

    pub fn role(&self, record: &RoleRecord) {
        self.write(&AuditLine::Role { record });
    }

    pub fn call(&self, entry: &AuditEntry) {
        self.write(&AuditLine::Call(entry));
    }

    fn write(&self, line: &AuditLine<'_>) {
        if let Some(file) = &self.file {
            let mut file = file.lock().expect("audit lock");
            if let Ok(text) = serde_json::to_string(line) {
                // The audit is a report's input; a full disk must not fail the call itself.
                let _ = writeln!(file, "{text}");
            }
        }
    }
}

/// Says on stderr what the gate refused, and why.
pub fn refused(message: &str) {
    eprintln!("iam-gate: REFUSED {message}");
}
