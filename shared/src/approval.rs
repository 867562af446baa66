//! Human approval domain: the promotion request, the approval email (HTML and text, with
//! approve/reject links carrying the task token), decisions and the pages a manager sees.
//!
//! The task token is a bearer credential: it appears only inside the emailed links and the
//! decision form, never in logs or error bodies.

pub mod requests;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::person::Person;
use crate::validate;

/// Body of `POST /approvals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartApprovalRequest {
    pub employee_name: String,
    pub manager_email: String,
}

/// The state machine's input: the seed's shape, and who asked (from their verified token), so
/// that the manager's e-mail and the page it opens say whose request it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    pub employee_name: String,
    pub manager_email: String,
    /// Empty in a task of an execution started before requesters were recorded.
    #[serde(default)]
    pub requester_name: String,
    #[serde(default)]
    pub requester_email: String,
}

impl Promotion {
    /// "Ann Lee (ann@example.com)", or `None` when the request does not say. The name is cut at
    /// 100 characters (Cognito allows longer), so the page's `requester` (at most 400) takes it.
    pub fn requester(&self) -> Option<String> {
        let name: String = self.requester_name.trim().chars().take(100).collect();
        match (name.trim(), self.requester_email.trim()) {
            ("", "") => None,
            (name, "") => Some(name.to_string()),
            ("", email) => Some(email.to_string()),
            (name, email) => Some(format!("{name} ({email})")),
        }
    }
}

impl StartApprovalRequest {
    /// The promotion `requester` asks for. Nobody approves their own request: the manager
    /// must be someone other than the requester (their verified address, from the token).
    pub fn validate(self, requester: &Person) -> Result<Promotion, ApiError> {
        let manager_email = validate::email("managerEmail", &self.manager_email)?;
        if requester.email == manager_email {
            return Err(ApiError::validation(
                "managerEmail is your own address: nobody approves their own request",
            ));
        }
        Ok(Promotion {
            employee_name: validate::text("employeeName", &self.employee_name, 1, 100)?,
            manager_email,
            requester_name: requester.name.chars().filter(|c| !c.is_control()).collect(),
            requester_email: requester.email.clone(),
        })
    }
}

/// What the worker receives: the token and the promotion, from the SQS message the state
/// machine sends (callback pattern) or from `GetActivityTask` (activity pattern).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalTask {
    pub task_token: String,
    #[serde(flatten)]
    pub promotion: Promotion,
    /// 1 for the first request, more for the reminders sent after a timeout.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

impl std::fmt::Display for ApprovalTask {
    /// For logs: never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "approval for {:?} (attempt {})",
            self.promotion.employee_name, self.attempt
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

/// What a waiting task receives when the manager approves (`SendTaskSuccess`'s output).
pub fn approved_output(decided_at: &str) -> String {
    serde_json::json!({"decision": "approved", "decidedAt": decided_at}).to_string()
}

/// How a waiting task fails when the manager rejects (`SendTaskFailure`'s error and cause); the
/// state machines' comments name the error.
pub const REJECTED: (&str, &str) = ("Rejected", "The manager rejected the promotion");

impl Decision {
    /// The path segment of the link: `succeed` or `fail` (the seed's names).
    pub fn from_segment(segment: &str) -> Option<Self> {
        match segment {
            "succeed" => Some(Self::Approve),
            "fail" => Some(Self::Reject),
            _ => None,
        }
    }

    pub fn segment(self) -> &'static str {
        match self {
            Self::Approve => "succeed",
            Self::Reject => "fail",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Approve => "Approve",
            Self::Reject => "Reject",
        }
    }
}

/// The link a manager clicks: `{base}/approvals/{succeed|fail}?taskToken=<url-encoded>`.
/// The emailed link: the token decides; the employee's and the requester's names are only shown
/// on the page it opens (whoever holds a live link may decide it anyway, so the names need no
/// protection of their own).
pub fn decision_link(
    base: &str,
    decision: Decision,
    task_token: &str,
    promotion: &Promotion,
) -> String {
    let mut link = format!(
        "{}/approvals/{}?taskToken={}&employee={}",
        base.trim_end_matches('/'),
        decision.segment(),
        url_encode(task_token),
        url_encode(&promotion.employee_name)
    );
    if let Some(requester) = promotion.requester() {
        link.push_str("&requester=");
        link.push_str(&url_encode(&requester));
    }
    link
}

fn url_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// The approval request email.
pub fn approval_email(task: &ApprovalTask, link_base: &str) -> Email {
    let name = &task.promotion.employee_name;
    let approve = decision_link(
        link_base,
        Decision::Approve,
        &task.task_token,
        &task.promotion,
    );
    let reject = decision_link(
        link_base,
        Decision::Reject,
        &task.task_token,
        &task.promotion,
    );
    // Who asked, from their verified token: the manager knows whose request this is.
    let asked = task
        .promotion
        .requester()
        .map(|r| {
            (
                format!(" {r} asks for it."),
                format!(" {} asks for it.", html_escape(&r)),
            )
        })
        .unwrap_or_default();
    let reminder = if task.attempt > 1 {
        format!(" (reminder {})", task.attempt - 1)
    } else {
        String::new()
    };
    let subject: String = format!("Approval needed: promotion of {name}{reminder}")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let escaped = html_escape(name);
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;max-width:36em\">\
         <p>Hello,</p><p><strong>{escaped}</strong> has been proposed for a promotion.{asked_html} Please approve or reject the request{reminder}.</p>\
         <p><a href=\"{}\" style=\"padding:.6em 1.2em;background:#1a7f37;color:#fff;text-decoration:none;border-radius:4px\">Approve</a> \
         <a href=\"{}\" style=\"padding:.6em 1.2em;background:#cf222e;color:#fff;text-decoration:none;border-radius:4px\">Reject</a></p>\
         <p style=\"color:#666\">Each link opens a confirmation page; nothing is decided until you confirm there.</p></body></html>",
        html_escape(&approve),
        html_escape(&reject),
        asked_html = asked.1,
    );
    let asked_text = asked.0;
    let text = format!(
        "Hello,\n\n{name} has been proposed for a promotion.{asked_text} Please approve or reject the request{reminder}.\n\nApprove: {approve}\n\nReject: {reject}\n\nEach link opens a confirmation page; nothing is decided until you confirm there.\n"
    );
    Email {
        subject,
        html,
        text,
    }
}

/// A small page readable on a phone.
pub fn page(title: &str, body_html: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{t}</title><style>body{{font-family:system-ui,sans-serif;max-width:32em;margin:2em auto;padding:0 1em;line-height:1.5}}\
         button{{font-size:1.1em;padding:.7em 1.4em;border:0;border-radius:6px;color:#fff;background:#1a7f37}}button.reject{{background:#cf222e}}</style>\
         </head><body><h1>{t}</h1>{body_html}</body></html>",
        t = html_escape(title)
    )
}

/// The confirmation page a GET of a live link shows: a button that POSTs the decision (link
/// scanners that pre-fetch GET links cannot decide anything), naming the employee and the
/// requester as the link does.
pub fn confirmation_page(
    decision: Decision,
    task_token: &str,
    employee: Option<&str>,
    requester: Option<&str>,
) -> String {
    let class = if decision == Decision::Reject {
        " class=\"reject\""
    } else {
        ""
    };
    let whose = employee
        // `page` escapes the title and heading.
        .map(|name| format!("the promotion of {name}"))
        .unwrap_or_else(|| "this promotion".into());
    page(
        &format!("{} {whose}?", decision.verb()),
        &format!(
            "{}<p>Confirm your decision. This cannot be undone.</p>\
             <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"taskToken\" value=\"{}\">\
             <button type=\"submit\"{class}>{}</button></form>",
            requester
                .map(|r| format!("<p>Requested by {}.</p>", html_escape(r)))
                .unwrap_or_default(),
            decision.segment(),
            html_escape(task_token),
            decision.verb()
        ),
    )
}

/// Body of the decision POST: an HTML form (`taskToken=...`) or JSON (`{"taskToken": ...}`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionForm {
    pub task_token: String,
}

/// A task token as received: non-empty, bounded (Step Functions tokens are at most 1024 chars).
pub fn task_token(raw: Option<String>) -> Result<String, ApiError> {
    match raw {
        Some(token) if !token.is_empty() && token.len() <= 2048 => Ok(token),
        Some(_) => Err(ApiError::validation("taskToken is empty or too long")),
        None => Err(ApiError::validation("taskToken is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str) -> ApprovalTask {
        ApprovalTask {
            task_token: "AAAA+/=token&x".into(),
            promotion: Promotion {
                employee_name: name.into(),
                manager_email: "m@example.com".into(),
                requester_name: "Bo <i>Kim</i>".into(),
                requester_email: "bo@example.com".into(),
            },
            attempt: 1,
        }
    }

    #[test]
    fn email_links_carry_the_encoded_token_and_escape_the_name() {
        let email = approval_email(
            &task("<script>alert(1)</script> & Co"),
            "https://api.example/prod/",
        );
        assert!(email.text.contains(
            "https://api.example/prod/approvals/succeed?taskToken=AAAA%2B%2F%3Dtoken%26x"
        ));
        assert!(
            email
                .text
                .contains("/approvals/fail?taskToken=AAAA%2B%2F%3Dtoken%26x")
        );
        assert!(
            email
                .html
                .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co")
        );
        assert!(!email.html.contains("<script>"));
        assert!(email.html.contains("taskToken=AAAA%2B%2F%3Dtoken%26x"));
        // Whose request it is, in the mail and in the links to the page.
        assert!(
            email
                .text
                .contains("Bo <i>Kim</i> (bo@example.com) asks for it.")
        );
        assert!(
            email
                .html
                .contains("Bo &lt;i&gt;Kim&lt;/i&gt; (bo@example.com) asks for it.")
        );
        assert!(
            email
                .text
                .contains("&requester=Bo%20%3Ci%3EKim%3C%2Fi%3E%20%28bo%40example%2Ecom%29"),
            "{}",
            email.text
        );
    }

    #[test]
    fn display_never_shows_the_token() {
        assert!(!task("Ann").to_string().contains("token"));
    }

    #[test]
    fn confirmation_page_posts_the_token() {
        let html = confirmation_page(
            Decision::Reject,
            "a\"b",
            Some("Ann <b>Lee</b>"),
            Some("Bo <i>Kim</i>"),
        );
        assert!(
            html.contains("Requested by Bo &lt;i&gt;Kim&lt;/i&gt;."),
            "{html}"
        );
        assert!(
            html.contains("the promotion of Ann &lt;b&gt;Lee&lt;/b&gt;?"),
            "{html}"
        );
        assert!(html.contains("method=\"post\" action=\"fail\""));
        assert!(html.contains("value=\"a&quot;b\""));
        assert!(html.contains("viewport"));
    }

    #[test]
    fn requests_and_tokens_are_validated() {
        let ann = Person::from_claims(
            &serde_json::json!({"sub": "u1", "email": "ann@example.com", "name": "Ann\u{7}Lee"}),
        )
        .unwrap();
        let request = |employee: &str, manager: &str| StartApprovalRequest {
            employee_name: employee.into(),
            manager_email: manager.into(),
        };
        let ok = request(" Ann ", "Boss@Example.com").validate(&ann).unwrap();
        assert_eq!(
            ok,
            Promotion {
                employee_name: "Ann".into(),
                manager_email: "boss@example.com".into(),
                requester_name: "AnnLee".into(),
                requester_email: "ann@example.com".into(),
            }
        );
        assert!(request("", "b@example.com").validate(&ann).is_err());
        assert!(request("Ann", "nope").validate(&ann).is_err());
        // Nobody approves their own request, whatever the case of the address.
        let own = request("Ann", "ANN@example.com")
            .validate(&ann)
            .unwrap_err();
        assert!(
            own.message.contains("nobody approves their own request"),
            "{own}"
        );
        assert!(task_token(None).is_err());
        assert!(task_token(Some(String::new())).is_err());
        assert!(task_token(Some("x".repeat(3000))).is_err());
        assert_eq!(task_token(Some("t".into())).unwrap(), "t");
    }
}
