//! Timestamps as stored and sent: RFC 3339, UTC, fixed millisecond precision
//! (`2026-11-21T15:04:05.123Z`). The fixed width makes lexicographic order equal time order,
//! which DynamoDB sort keys and range conditions rely on.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

const FIXED: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

pub fn format(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(FIXED)
        .expect("every UTC date in range formats")
}

pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// Parses any RFC 3339 timestamp (any offset) into the instant it names.
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    // Years outside 0..=9999 would break the fixed-width ordering.
    (0..=9999)
        .contains(&at.to_offset(UtcOffset::UTC).year())
        .then_some(at)
}

/// Parses and re-renders in the stored form, so range conditions compare like with like.
pub fn normalise(text: &str) -> Option<String> {
    parse(text).map(format)
}

/// `YYYY/MM/DD` of a stored timestamp, for date-partitioned object keys.
pub fn date_path(stored: &str) -> Option<String> {
    let at = parse(stored)?.to_offset(UtcOffset::UTC);
    Some(format!(
        "{:04}/{:02}/{:02}",
        at.year(),
        u8::from(at.month()),
        at.day()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_offsets_to_fixed_width_utc() {
        assert_eq!(
            normalise("2026-03-01T01:30:00+02:00").unwrap(),
            "2026-02-28T23:30:00.000Z"
        );
        assert_eq!(
            normalise("2026-03-01T01:30:00.5Z").unwrap(),
            "2026-03-01T01:30:00.500Z"
        );
        assert!(normalise("2026-03-01").is_none());
        assert!(normalise("yesterday").is_none());
        assert_eq!(now().len(), "2026-03-01T01:30:00.500Z".len());
    }

    #[test]
    fn date_path_uses_utc_date() {
        assert_eq!(
            date_path("2026-03-01T01:30:00+02:00").unwrap(),
            "2026/02/28"
        );
    }
}
