//! The least-privilege report (`make iam-report`): from the gate's audit file, per role, the
//! actions and resources its principal used, what was refused, and every granted (action,
//! resource) pair that no call exercised. Stack name prefixes are folded to `<stack>` so the runs
//! of many isolated test stacks add up per role.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::policy::{statements, wildcard};
use crate::cloudformation::template::strings;

#[derive(Default)]
struct RoleUse {
    granted: BTreeSet<(String, String)>,
    used: BTreeSet<(String, String)>,
    refused: BTreeSet<(String, String)>,
}

/// Folds a stack's names (prefix, aliases) into `<stack>` and a stream's label into `<label>`.
fn fold(names: &[String], text: &str) -> String {
    let mut out = text.to_string();
    let mut names: Vec<&String> = names.iter().filter(|n| !n.is_empty()).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        out = out.replace(name.as_str(), "<stack>");
    }
    match out.find("/stream/") {
        Some(at) if !out.ends_with("/stream/*") => format!("{}/stream/<label>", &out[..at]),
        _ => out,
    }
}

/// The report as Markdown.
pub fn report(audit: &str) -> String {
    let mut uses = Uses::default();
    for line in audit.lines() {
        // A line cut off by a run that was killed is not a decision.
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match entry["kind"].as_str() {
            Some("role") => uses.role(&entry["record"]),
            Some("call") => uses.call(&entry),
            _ => {}
        }
    }
    let mut out = String::from(
        "# Least-privilege report\n\nFrom the IAM gate's audit of the last test run: per role, what its principal did, what was refused, and the grants nothing exercised.\n",
    );
    for (role, usage) in &uses.roles {
        usage.write(role, &mut out);
    }
    out
}

/// What the audit says, per role.
#[derive(Default)]
struct Uses {
    roles: BTreeMap<String, RoleUse>,
    /// Each stack's names, from its roles' records (which come before its calls).
    stacks: BTreeMap<String, Vec<String>>,
}

impl Uses {
    /// A role as registered: its stack's names and every (action, resource) it is granted.
    fn role(&mut self, record: &Value) {
        let stack = text(&record["stack"]);
        let names = self
            .stacks
            .entry(stack.to_string())
            .or_insert_with(|| vec![stack.to_string()]);
        for alias in record["stack_aliases"].as_array().into_iter().flatten() {
            if let Some(alias) = alias.as_str().filter(|a| !names.iter().any(|n| n == a)) {
                names.push(alias.to_string());
            }
        }
        let names = names.clone();
        let role = self
            .roles
            .entry(text(&record["logical_id"]).to_string())
            .or_default();
        for policy in record["policies"].as_array().into_iter().flatten() {
            for statement in statements(policy) {
                if statement["Effect"] != "Allow" {
                    continue;
                }
                for action in strings(&statement["Action"]) {
                    for resource in strings(&statement["Resource"]) {
                        role.granted
                            .insert((action.clone(), fold(&names, &resource)));
                    }
                }
            }
        }
    }

    /// A decision: used when allowed, refused otherwise.
    fn call(&mut self, entry: &Value) {
        let stack = text(&entry["stack"]);
        let names = self
            .stacks
            .get(stack)
            .cloned()
            .unwrap_or_else(|| vec![stack.to_string()]);
        let role = self
            .roles
            .entry(text(&entry["role"]).to_string())
            .or_default();
        let pair = (
            text(&entry["action"]).to_string(),
            fold(&names, text(&entry["resource"])),
        );
        if entry["allowed"] == true {
            role.used.insert(pair);
        } else {
            role.refused.insert(pair);
        }
    }
}

impl RoleUse {
    fn write(&self, role: &str, out: &mut String) {
        out.push_str(&format!("\n## {role}\n\nUsed ({}):\n", self.used.len()));
        for (action, resource) in &self.used {
            out.push_str(&format!("- `{action}` on `{resource}`\n"));
        }
        if !self.refused.is_empty() {
            out.push_str("\nRefused:\n");
            for (action, resource) in &self.refused {
                out.push_str(&format!("- `{action}` on `{resource}`\n"));
            }
        }
        let unused: Vec<&(String, String)> = self
            .granted
            .iter()
            .filter(|(action, resource)| {
                !self.used.iter().any(|(a, r)| {
                    wildcard(&action.to_ascii_lowercase(), &a.to_ascii_lowercase())
                        && wildcard(resource, r)
                })
            })
            .collect();
        if !unused.is_empty() {
            out.push_str("\nGranted, never exercised:\n");
            for (action, resource) in unused {
                out.push_str(&format!("- `{action}` on `{resource}`\n"));
            }
        }
    }
}

/// A field of an audit line the gate always writes (an older file may lack it: then "").
fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_stacks_and_lists_unused_grants() {
        let audit = [
            r#"{"kind":"role","record":{"stack":"t1","logical_id":"R","policies":[{"Statement":[{"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:Scan"],"Resource":"arn:aws:dynamodb:us-east-1:1:table/t1-T"}]}]}}"#,
            r#"{"kind":"call","stack":"t1","role":"R","action":"dynamodb:GetItem","resource":"arn:aws:dynamodb:us-east-1:1:table/t1-T","allowed":true}"#,
            r#"{"kind":"call","stack":"t2","role":"R","action":"dynamodb:DeleteItem","resource":"arn:aws:dynamodb:us-east-1:1:table/t2-T","allowed":false}"#,
        ]
        .join("\n");
        let text = report(&audit);
        assert!(
            text.contains("- `dynamodb:GetItem` on `arn:aws:dynamodb:us-east-1:1:table/<stack>-T`"),
            "{text}"
        );
        assert!(text.contains("Refused:\n- `dynamodb:DeleteItem`"), "{text}");
        assert!(
            text.contains("Granted, never exercised:\n- `dynamodb:Scan`"),
            "{text}"
        );
    }
}
