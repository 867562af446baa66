//! IAM policy evaluation for one account, as AWS documents it ("Policy evaluation logic"):
//! an explicit `Deny` in any applicable policy wins; otherwise an `Allow` in the principal's
//! identity-based policies, or in the resource's policy naming the principal, allows; otherwise
//! the request is implicitly denied. A request that names several resources (a batch over two
//! tables) is allowed only when every (action, resource) pair is.
//!
//! Written here rather than taken from a crate: `scratchstack-aspen` 0.3 evaluates statements,
//! but its context model is built around its own ARN and principal types, and what this stack
//! needs (string/ARN/Bool conditions, `NotAction`/`NotResource`, service principals in resource
//! policies) is ~200 lines that are unit-tested against the documentation's examples below.

use std::collections::BTreeMap;

use serde_json::Value;

/// Who is asking: an IAM role (a function, the pipe, a state machine) or an AWS service acting
/// for a resource (S3 sending bucket notifications).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Role { arn: String },
    Service { name: String },
}

/// One authorisation AWS makes: an action on a resource, with the request's condition keys.
#[derive(Debug, Clone)]
pub struct Check<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    /// Condition keys (`aws:SecureTransport`, `aws:SourceArn`, `s3:prefix`, ...) -> values.
    pub context: &'a BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// An explicit `Deny`; the statement's `Sid` when it has one.
    ExplicitDeny(Option<String>),
    /// No statement allows it.
    ImplicitDeny,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Evaluates one check against the principal's identity policies and the resource's policy.
pub fn evaluate(
    principal: &Principal,
    identity_policies: &[Value],
    resource_policy: Option<&Value>,
    check: &Check<'_>,
) -> Decision {
    let mut allowed = false;
    let identity = identity_policies.iter().map(|p| (p, false));
    let resource = resource_policy.into_iter().map(|p| (p, true));
    for (policy, is_resource_policy) in identity.chain(resource) {
        for statement in statements(policy) {
            if is_resource_policy && !names_principal(statement, principal) {
                continue;
            }
            if !applies(statement, check, is_resource_policy) {
                continue;
            }
            match statement.get("Effect").and_then(Value::as_str) {
                Some("Deny") => {
                    return Decision::ExplicitDeny(
                        statement
                            .get("Sid")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    );
                }
                Some("Allow") => allowed = true,
                _ => {}
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// A policy's statements (`Statement` may be one object or a list).
pub fn statements(policy: &Value) -> Vec<&Value> {
    match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Condition values as text (policies may write `false` or `[false]` for "false").
fn condition_values(value: &Value) -> Vec<String> {
    use crate::cloudformation::template::scalar_string;
    match value {
        Value::Array(items) => items.iter().filter_map(scalar_string).collect(),
        other => scalar_string(other).into_iter().collect(),
    }
}

fn applies(statement: &Value, check: &Check<'_>, is_resource_policy: bool) -> bool {
    let action_matches = |patterns: Vec<&str>| {
        patterns
            .iter()
            .any(|p| wildcard(&p.to_ascii_lowercase(), &check.action.to_ascii_lowercase()))
    };
    let action = match (statement.get("Action"), statement.get("NotAction")) {
        (Some(a), _) => action_matches(strings(Some(a))),
        (None, Some(n)) => !action_matches(strings(Some(n))),
        (None, None) => false,
    };
    let resource_matches =
        |patterns: Vec<&str>| patterns.iter().any(|p| wildcard(p, check.resource));
    let resource = match (statement.get("Resource"), statement.get("NotResource")) {
        (Some(r), _) => resource_matches(strings(Some(r))),
        (None, Some(n)) => !resource_matches(strings(Some(n))),
        // A resource policy's statement without Resource is about the resource it is on.
        (None, None) => is_resource_policy,
    };
    let deny = statement.get("Effect").and_then(Value::as_str) == Some("Deny");
    action && resource && conditions_hold(statement.get("Condition"), check.context, deny)
}

fn names_principal(statement: &Value, principal: &Principal) -> bool {
    match (statement.get("Principal"), statement.get("NotPrincipal")) {
        (Some(named), _) => principal_in(named, principal),
        // NotPrincipal: everyone but those named.
        (None, Some(excepted)) => !principal_in(excepted, principal),
        (None, None) => false,
    }
}

/// Whether a `Principal` element names `principal`: `"*"`, the role's ARN (or its session's),
/// the account (`123456789012`, `arn:aws:iam::123456789012:root`), or the service.
fn principal_in(named: &Value, principal: &Principal) -> bool {
    if named == "*" {
        return true;
    }
    let account = crate::emulator::ACCOUNT_ID;
    let aws = strings(named.get("AWS"));
    if aws.contains(&"*") {
        return true;
    }
    match principal {
        Principal::Role { arn } => aws.iter().any(|p| {
            *p == arn
                || *p == account
                || *p == format!("arn:aws:iam::{account}:root")
                || *p == super::session_arn(arn)
        }),
        Principal::Service { name } => strings(named.get("Service")).contains(&name.as_str()),
    }
}

/// `Condition`: every operator block holds; in a block every key holds; a key holds when the
/// request's value matches any of the listed values (negated operators: matches none).
/// For a Deny, a condition this evaluator cannot decide (an operator it does not implement,
/// `ForAnyValue:`/`ForAllValues:`) is taken to hold: it never lets a request past a Deny. For
/// an Allow it never holds.
fn conditions_hold(
    conditions: Option<&Value>,
    context: &BTreeMap<String, Vec<String>>,
    deny: bool,
) -> bool {
    let Some(Value::Object(blocks)) = conditions else {
        return true;
    };
    blocks.iter().all(|(operator, keys)| {
        let Value::Object(keys) = keys else {
            return false;
        };
        keys.iter().all(|(key, expected)| {
            let expected = condition_values(expected);
            // Condition keys are case-insensitive.
            let actual = context
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_slice());
            operator_holds(operator, &expected, actual).unwrap_or(deny)
        })
    })
}

/// `None`: an operator this evaluator does not implement.
fn operator_holds(operator: &str, expected: &[String], actual: Option<&[String]>) -> Option<bool> {
    if operator == "Null" {
        // `"Null": {"key": "true"}` holds when the key is absent.
        let absent = actual.is_none_or(|v| v.is_empty());
        return Some(expected.iter().any(|e| (e == "true") == absent));
    }
    let (operator, if_exists) = match operator.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (operator, false),
    };
    // "Not" negates the String and Arn operators, written right after the prefix.
    let (negated, positive) = match operator.split_once("Not") {
        Some((prefix @ ("String" | "Arn"), rest)) => (true, format!("{prefix}{rest}")),
        Some(_) => return None,
        None => (false, operator.to_string()),
    };
    let compare: fn(&str, &str) -> bool = match positive.as_str() {
        "StringEquals" | "ArnEquals" => |e, v| e == v,
        "StringEqualsIgnoreCase" | "Bool" => |e, v| e.eq_ignore_ascii_case(v),
        "StringLike" | "ArnLike" => wildcard,
        _ => return None,
    };
    let Some(actual) = actual.filter(|v| !v.is_empty()) else {
        // A missing key matches nothing: positive operators fail, negated ones hold.
        return Some(if_exists || negated);
    };
    let any = actual
        .iter()
        .any(|v| expected.iter().any(|e| compare(e, v)));
    Some(if negated { !any } else { any })
}

/// IAM's wildcards: `*` any run of characters, `?` one character.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/Items";

    fn role() -> Principal {
        Principal::Role {
            arn: "arn:aws:iam::123456789012:role/app".into(),
        }
    }

    /// A condition context of one key.
    fn context(key: &str, value: &str) -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([(key.to_string(), vec![value.to_string()])])
    }

    /// [`evaluate`] of one (action, resource) with `context`.
    fn decide(
        principal: &Principal,
        identity: &[Value],
        resource_policy: Option<&Value>,
        (action, resource): (&str, &str),
        context: &BTreeMap<String, Vec<String>>,
    ) -> Decision {
        let check = Check {
            action,
            resource,
            context,
        };
        evaluate(principal, identity, resource_policy, &check)
    }

    #[test]
    fn wildcards_match_like_iam() {
        for (pattern, text, matches) in [
            (
                "arn:aws:s3:::b/uploads/*",
                "arn:aws:s3:::b/uploads/a/b.jpg",
                true,
            ),
            ("arn:aws:s3:::b/uploads/*", "arn:aws:s3:::b/other", false),
            ("arn:aws:s3:::b/*", "arn:aws:s3:::b/*x", true),
            ("dynamodb:*item", "dynamodb:getitem", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*", "", true),
        ] {
            assert_eq!(wildcard(pattern, text), matches, "{pattern} {text}");
        }
    }

    #[test]
    fn no_statement_is_an_implicit_deny_and_allow_needs_action_and_resource() {
        let p = [
            json!({"Statement": [{"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": TABLE}]}),
        ];
        let other_table = format!("{TABLE}2");
        for (policies, check, expected) in [
            (&p[..], ("dynamodb:GetItem", TABLE), Decision::Allow),
            // Actions are case-insensitive.
            (&p, ("DynamoDB:putitem", TABLE), Decision::Allow),
            (&p, ("dynamodb:DeleteItem", TABLE), Decision::ImplicitDeny),
            (
                &p,
                ("dynamodb:GetItem", other_table.as_str()),
                Decision::ImplicitDeny,
            ),
            (&[], ("dynamodb:GetItem", TABLE), Decision::ImplicitDeny),
        ] {
            let decision = decide(&role(), policies, None, check, &BTreeMap::new());
            assert_eq!(decision, expected, "{check:?}");
        }
    }

    #[test]
    fn an_explicit_deny_wins_over_any_allow() {
        let identity =
            [json!({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}})];
        let bucket_policy = json!({"Statement": [{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        let get = ("s3:GetObject", "arn:aws:s3:::b/k");
        for (tls, expected) in [
            (
                "false",
                Decision::ExplicitDeny(Some("DenyInsecureTransport".into())),
            ),
            ("true", Decision::Allow),
        ] {
            let ctx = context("aws:SecureTransport", tls);
            let decision = decide(&role(), &identity, Some(&bucket_policy), get, &ctx);
            assert_eq!(decision, expected, "aws:SecureTransport {tls}");
        }
    }

    #[test]
    fn not_action_and_not_resource_invert_the_match() {
        let p = [json!({"Statement": [
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::mine/*"}]})];
        for (check, expected) in [
            (("sqs:SendMessage", "arn:q"), Decision::Allow),
            (("iam:CreateRole", "*"), Decision::ImplicitDeny),
            (("s3:GetObject", "arn:aws:s3:::mine/k"), Decision::Allow),
            (
                ("s3:GetObject", "arn:aws:s3:::theirs/k"),
                Decision::ExplicitDeny(None),
            ),
        ] {
            let decision = decide(&role(), &p, None, check, &BTreeMap::new());
            assert_eq!(decision, expected, "{check:?}");
        }
    }

    #[test]
    fn a_queue_policy_admits_a_service_principal_under_its_conditions() {
        let s3 = Principal::Service {
            name: "s3.amazonaws.com".into(),
        };
        let queue = "arn:aws:sqs:us-east-1:123456789012:uploads";
        let policy = json!({"Statement": [{
            "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": queue,
            "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::stack-uploads"},
                          "StringEquals": {"aws:SourceAccount": "123456789012"}}}]});
        let from = |bucket: &str| {
            let mut ctx = context("aws:SourceArn", bucket);
            ctx.insert("aws:SourceAccount".into(), vec!["123456789012".into()]);
            ctx
        };
        let (good, other) = (
            from("arn:aws:s3:::stack-uploads"),
            from("arn:aws:s3:::Stack-Uploads"),
        );
        let send = ("sqs:SendMessage", queue);
        for (principal, ctx, allowed) in [
            (&s3, &good, true),
            (&s3, &other, false),
            // The policy names S3, not this role.
            (&role(), &good, false),
            // A missing key fails a positive operator.
            (&s3, &BTreeMap::new(), false),
        ] {
            let decision = decide(principal, &[], Some(&policy), send, ctx);
            assert_eq!(decision.allowed(), allowed, "{principal:?} {ctx:?}");
        }
    }

    #[test]
    fn negated_and_if_exists_operators_on_missing_keys() {
        let x = ["x".to_string()];
        let upload = ["uploads/a".to_string()];
        for (operator, expected, actual, holds) in [
            ("StringNotEquals", "a", None, Some(true)),
            ("StringEquals", "a", None, Some(false)),
            ("StringEqualsIfExists", "a", None, Some(true)),
            ("Null", "true", None, Some(true)),
            ("Null", "true", Some(&x[..]), Some(false)),
            ("StringLike", "uploads/*", Some(&upload[..]), Some(true)),
            ("NumericLessThan", "1", Some(&["0".to_string()][..]), None),
        ] {
            let result = operator_holds(operator, &[expected.to_string()], actual);
            assert_eq!(result, holds, "{operator}");
        }
    }

    #[test]
    fn what_the_evaluator_cannot_decide_never_lets_a_request_past_a_deny() {
        let policy = [json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*",
             "Condition": {"NumericLessThan": {"s3:max-keys": "10"}}}]})];
        let only_allow = [
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
             "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}]}),
        ];
        for policies in [&policy, &only_allow] {
            let get = ("s3:GetObject", "arn:aws:s3:::b/k");
            assert!(!decide(&role(), policies, None, get, &BTreeMap::new()).allowed());
        }
    }

    #[test]
    fn not_principal_account_principals_literal_stars_and_bool_lists() {
        let identity =
            [json!({"Statement": {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}})];
        let deny_all_but_s3 = json!({"Statement": [{"Effect": "Deny", "NotPrincipal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": "arn:q"}]});
        let account = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "sqs:SendMessage", "Resource": "arn:q"}]});
        let send = ("sqs:SendMessage", "arn:q");
        let none = BTreeMap::new();
        assert!(!decide(&role(), &identity, Some(&deny_all_but_s3), send, &none).allowed());
        assert!(decide(&role(), &[], Some(&account), send, &none).allowed());
        let bool_list = [json!({"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": [false]}}}]})];
        let insecure = context("aws:SecureTransport", "false");
        let get = ("s3:GetObject", "arn:aws:s3:::b/k");
        assert!(!decide(&role(), &bool_list, None, get, &insecure).allowed());
    }
}
