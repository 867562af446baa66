//! Field validation shared by every API. Each check returns the normalised value or a 400
//! naming the field, so handlers never build error messages themselves.

use crate::error::ApiError;

/// Trimmed text of `min..=max` characters (not bytes) with no control characters.
pub fn text(field: &str, value: &str, min: usize, max: usize) -> Result<String, ApiError> {
    let trimmed = value.trim();
    let len = trimmed.chars().count();
    if len < min || len > max {
        return Err(ApiError::validation(format!(
            "{field} must be {min}-{max} characters (got {len})"
        )));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::validation(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(trimmed.to_string())
}

/// An email address, lower-cased so lookups by email are case-insensitive.
///
/// Deliberately a practical subset of RFC 5321: dot-atom local part, DNS host name domain with
/// an alphabetic TLD. Quoted local parts and IP-literal domains are rejected.
pub fn email(field: &str, value: &str) -> Result<String, ApiError> {
    let candidate = value.trim().to_ascii_lowercase();
    let invalid = || ApiError::validation(format!("{field} must be a valid email address"));
    if candidate.is_empty() || candidate.len() > 254 {
        return Err(invalid());
    }
    let (local, domain) = candidate.split_once('@').ok_or_else(invalid)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if local_ok && domain_ok {
        Ok(candidate)
    } else {
        Err(invalid())
    }
}

/// A page size from a query string: `default` when absent, else `1..=max`.
pub fn limit(raw: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match raw {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::validation(format!(
                "limit must be an integer from 1 to {max}"
            ))),
        },
    }
}

/// A UUID path parameter, in canonical lower-case form.
pub fn uuid(field: &str, value: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(value)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::validation(format!("{field} must be a UUID")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bounds_count_characters() {
        assert_eq!(text("name", "  ok  ", 1, 2).unwrap(), "ok");
        assert_eq!(text("name", "éé", 1, 2).unwrap(), "éé");
        assert!(text("name", "   ", 1, 2).is_err());
        assert!(text("name", "abc", 1, 2).is_err());
        assert!(text("name", "a\u{0}", 1, 5).is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(
            email("email", " Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
        for ok in ["a.b+c@sub.example.org", "x@y.io"] {
            assert!(email("email", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "no-at",
            "a@b",
            "a@@b.com",
            ".a@b.com",
            "a..b@c.com",
            "a@-b.com",
            "a@b.c0m",
            "a b@c.com",
            "a@b..com",
        ] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None, 20, 100).unwrap(), 20);
        assert_eq!(limit(Some("100"), 20, 100).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", "1.5", ""] {
            assert!(limit(Some(bad), 20, 100).is_err(), "{bad}");
        }
    }
}
