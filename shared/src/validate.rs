//! Field validation shared by every API. Each check returns the normalised value or a 400
//! naming the field, so handlers never build error messages themselves.

use serde::{Deserialize, Deserializer};

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

/// A name as a person types it, in any script, emoji included: `raw` in Unicode NFC (what is
/// stored and shown, so the same name typed on two keyboards is one name), 1-`max_graphemes`
/// user-perceived characters (grapheme clusters) and at most `max_chars` code points; no control
/// characters, no line breaks, no leading or trailing space, and no invisible formatting
/// (bidirectional overrides and isolates, zero-width spaces and joiners, tags) except where an
/// emoji sequence needs it: a zero-width joiner between two emoji, tag characters after the
/// black flag.
pub fn name(
    field: &str,
    raw: &str,
    max_graphemes: usize,
    max_chars: usize,
) -> Result<String, ApiError> {
    use unicode_normalization::UnicodeNormalization;
    use unicode_segmentation::UnicodeSegmentation;

    let normalized: String = raw.nfc().collect();
    let refuse = |why: &str| {
        Err(ApiError::validation(format!(
            "{field} must be 1-{max_graphemes} characters{why}"
        )))
    };
    let graphemes = normalized.graphemes(true).count();
    if graphemes == 0 || graphemes > max_graphemes || normalized.chars().count() > max_chars {
        return refuse("");
    }
    if normalized.trim() != normalized {
        return refuse(" without leading or trailing spaces");
    }
    let chars: Vec<char> = normalized.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let refused = |c: char| {
            refuse(&format!(
                ", without control or invisible formatting characters (U+{:04X})",
                u32::from(c)
            ))
        };
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            return refused(c);
        }
        // A subdivision flag: the black flag, 1-6 tag letters or digits, the cancel tag.
        if c == '\u{1F3F4}' {
            let tags = chars[i + 1..]
                .iter()
                .take_while(
                    |&&t| matches!(t, '\u{E0030}'..='\u{E0039}' | '\u{E0061}'..='\u{E007A}'),
                )
                .count();
            if tags > 0 {
                if tags > 6 || chars.get(i + 1 + tags) != Some(&'\u{E007F}') {
                    return refused(chars[i + 1]);
                }
                i += tags + 2;
                continue;
            }
        }
        let allowed = match c {
            // A variation selector picks an emoji's presentation, once, right after it.
            '\u{FE0E}' | '\u{FE0F}' => {
                i > 0
                    && (is_emoji(chars[i - 1])
                        // A keycap: 0-9, # or * then the selector then U+20E3.
                        || (matches!(chars[i - 1], '0'..='9' | '#' | '*')
                            && chars.get(i + 1) == Some(&'\u{20E3}')))
            }
            // A joiner joins two emoji (a skin tone or presentation selector may sit before it).
            '\u{200D}' => {
                chars.get(i + 1).is_some_and(|&next| is_emoji(next))
                    && chars[..i]
                        .iter()
                        .rev()
                        .find(|&&p| !is_emoji_modifier(p))
                        .is_some_and(|&p| is_emoji(p))
            }
            other => !is_invisible_format(other) && !('\u{FE00}'..='\u{FE0D}').contains(&other),
        };
        if !allowed {
            return refused(c);
        }
        i += 1;
    }
    Ok(normalized)
}

/// Format characters (Unicode category Cf) and other invisible ones a name could hide behind.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Pictographs a joiner or a presentation selector may follow (Unicode's Extended_Pictographic,
/// as ranges).
fn is_emoji(c: char) -> bool {
    matches!(c,
        '\u{00A9}' | '\u{00AE}' | '\u{203C}' | '\u{2049}' | '\u{2122}' | '\u{2139}'
        | '\u{2194}'..='\u{2199}' | '\u{21A9}'..='\u{21AA}' | '\u{231A}'..='\u{231B}'
        | '\u{2328}' | '\u{23CF}' | '\u{23E9}'..='\u{23F3}' | '\u{23F8}'..='\u{23FA}'
        | '\u{24C2}' | '\u{25AA}'..='\u{25AB}' | '\u{25B6}' | '\u{25C0}' | '\u{25FB}'..='\u{25FE}'
        | '\u{2600}'..='\u{27BF}' | '\u{2934}'..='\u{2935}' | '\u{2B05}'..='\u{2B07}'
        | '\u{2B1B}'..='\u{2B1C}' | '\u{2B50}' | '\u{2B55}' | '\u{3030}' | '\u{303D}'
        | '\u{3297}' | '\u{3299}' | '\u{1F000}'..='\u{1FAFF}' | '\u{1FC00}'..='\u{1FFFD}')
}

/// What may sit between an emoji and the joiner: variation selectors and skin-tone modifiers.
fn is_emoji_modifier(c: char) -> bool {
    matches!(c, '\u{FE0E}' | '\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}')
}

/// For `#[serde(default, deserialize_with = "validate::not_null")]`: a field that may be left
/// out but not sent as `null` (docs/openapi.yaml does not allow it). Plain `Option` would read
/// `"status": null` as "not sent" and answer 200 to a request the contract calls invalid.
pub fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {

    #[test]
    fn names_in_any_script_and_emoji_sequences_are_accepted_as_typed() {
        for ok in [
            "Zoë",
            "김민수",
            "محمد",
            "Ольга",
            "José Álvarez",
            "👩🏽‍💻 Ana", // woman technologist, skin tone: a ZWJ sequence
            "👨‍👩‍👧‍👦",     // family: three joiners, one character
            "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}", // England's flag: tags
            "❤️",
            "Team 1️⃣",
        ] {
            assert_eq!(name("user", ok, 32, 128).as_deref(), Ok(ok), "{ok:?}");
        }
    }

    #[test]
    fn names_are_stored_in_nfc_and_counted_in_characters() {
        // "é" typed as e + combining acute is one character and stored precomposed.
        assert_eq!(name("user", "Zoe\u{0301}", 32, 128).unwrap(), "Zoé");
        // Hangul typed as jamo composes to the syllable.
        assert_eq!(name("user", "\u{1100}\u{1161}", 32, 128).unwrap(), "가");
        let family = "👨‍👩‍👧‍👦".repeat(32);
        assert!(name("user", &family, 32, 7 * 32).is_ok(), "32 characters");
        assert!(name("user", &format!("{family}x"), 32, 1000).is_err(), "33");
        assert!(
            name("user", &family, 32, 128).is_err(),
            "over the code point cap"
        );
    }

    #[test]
    fn invisible_and_control_characters_are_refused() {
        for bad in [
            "",
            " ann",
            "ann ",
            "an\nn",
            "a\u{0007}b",
            "abc\u{202E}gpj.exe", // right-to-left override
            "a\u{2066}b",         // isolate
            "a\u{200B}b",         // zero-width space
            "a\u{200D}b",         // a joiner between letters
            "\u{200D}👩",         // a joiner with nothing before it
            "a\u{FEFF}",
            "a\u{E0067}", // a tag outside a flag
            "\u{2028}",
            "🏴\u{E0067}\u{E0062}", // a flag without its cancel tag
            "🏴\u{E0061}\u{E0061}\u{E0061}\u{E0061}\u{E0061}\u{E0061}\u{E0061}\u{E007F}", // 7 tags
            "a\u{FE0F}",            // a presentation selector on a letter
            "❤\u{FE0F}\u{FE0F}",    // stacked
            "a\u{FE00}",            // other variation selectors
            "─\u{200D}─",           // a joiner between box-drawing characters
        ] {
            assert!(name("user", bad, 32, 128).is_err(), "{bad:?}");
        }
    }

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
