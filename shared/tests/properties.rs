//! Property tests of the pure request-handling code: for any input, validation either accepts
//! (and what it accepts is stable: validating it again gives the same value, cursors round-trip)
//! or rejects with a 4xx `ApiError`; it never panics.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use proptest::prelude::*;
use shared::ApiError;
use shared::{appointments, approval, chat, cursor, items, photos, rest, timestamp, validate};

fn client_error(err: &ApiError) -> bool {
    err.status.is_client_error() && !err.message.is_empty()
}

/// Any text, with a bias towards the characters validation cares about.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ a-zA-Z0-9@._+\\-/%\\t\\n\u{0}\u{200b}é]{0,80}",
        "[a-z]{1,20}@[a-z]{1,20}\\.[a-z]{2,5}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn text_fields_are_trimmed_bounded_and_stable(value in text(), min in 0usize..5, max in 5usize..64) {
        match validate::text("field", &value, min, max) {
            Ok(accepted) => {
                prop_assert!(accepted.chars().count() >= min && accepted.chars().count() <= max);
                prop_assert_eq!(validate::text("field", &accepted, min, max).ok(), Some(accepted));
            }
            Err(err) => prop_assert!(client_error(&err)),
        }
    }

    #[test]
    fn emails_are_accepted_stably_or_rejected(value in text()) {
        match validate::email("email", &value) {
            Ok(accepted) => prop_assert_eq!(validate::email("email", &accepted).ok(), Some(accepted)),
            Err(err) => prop_assert!(client_error(&err)),
        }
    }

    #[test]
    fn limits_stay_in_range(raw in proptest::option::of(text()), default in 1usize..50, max in 50usize..200) {
        match validate::limit(raw.as_deref(), default, max) {
            Ok(limit) => prop_assert!((1..=max).contains(&limit)),
            Err(err) => prop_assert!(client_error(&err)),
        }
    }

    #[test]
    fn uuids_are_canonical(value in prop_oneof![text(), any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string())]) {
        match validate::uuid("id", &value) {
            Ok(id) => prop_assert_eq!(uuid::Uuid::parse_str(&id).map(|u| u.to_string()).ok(), Some(id)),
            Err(err) => prop_assert!(client_error(&err)),
        }
    }

    #[test]
    fn cursors_round_trip_in_their_scope_only(
        scope in "[a-zA-Z#]{1,20}",
        other in "[a-zA-Z#]{1,20}",
        keys in proptest::collection::btree_map("[a-z_]{1,10}", prop_oneof![
            ".{1,40}".prop_map(AttributeValue::S),
            any::<i64>().prop_map(|n| AttributeValue::N(n.to_string())),
        ], 1..4),
    ) {
        let key: HashMap<String, AttributeValue> = keys.into_iter().collect();
        let names: Vec<&str> = key.keys().map(String::as_str).collect();
        let encoded = cursor::encode(&scope, &key).expect("strings and numbers encode");
        prop_assert_eq!(cursor::decode(&scope, &encoded, &names).ok(), Some(key.clone()));
        if other != scope {
            prop_assert!(cursor::decode(&other, &encoded, &names).is_err());
        }
    }

    #[test]
    fn any_cursor_text_is_a_key_or_a_400(raw in prop_oneof![text(), "[A-Za-z0-9_\\-]{0,300}"]) {
        match cursor::decode("scope", &raw, &["id"]) {
            Ok(key) => prop_assert!(key.contains_key("id")),
            Err(err) => prop_assert_eq!(err.status.as_u16(), 400),
        }
    }

    #[test]
    fn timestamps_normalise_idempotently(raw in prop_oneof![text(), "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-][01][0-9]:[0-5][0-9])"]) {
        if let Some(normal) = timestamp::normalise(&raw) {
            prop_assert_eq!(timestamp::normalise(&normal), Some(normal.clone()));
            prop_assert!(timestamp::date_path(&normal).is_some());
        }
    }

    #[test]
    fn chat_identifiers(room in text(), user in text()) {
        for outcome in [chat::room(&room), chat::user(&user)] {
            if let Err(err) = outcome {
                prop_assert!(client_error(&err));
            }
        }
        if let Ok(accepted) = chat::room(&room) {
            prop_assert_eq!(chat::room(&accepted).ok(), Some(accepted));
        }
    }

    /// Any bytes as a request body: parsed and validated, or a 4xx; never a panic.
    #[test]
    fn request_bodies_parse_and_validate_or_are_4xx(body in prop_oneof![
        any::<Vec<u8>>(),
        text().prop_map(String::into_bytes),
        (text(), text(), proptest::option::of(text())).prop_map(|(a, b, c)| serde_json::json!({"name": a, "email": b, "description": c}).to_string().into_bytes()),
        (text(), text(), any::<u64>()).prop_map(|(a, b, n)| serde_json::json!({"filename": a, "content_type": b, "size": n}).to_string().into_bytes()),
        (text(), text(), text(), text()).prop_map(|(a, b, c, d)| serde_json::json!({"patientName": a, "email": b, "dentist": c, "startsAt": d}).to_string().into_bytes()),
        (text(), text()).prop_map(|(a, b)| serde_json::json!({"employeeName": a, "managerEmail": b}).to_string().into_bytes()),
        (text(), text()).prop_map(|(a, b)| serde_json::json!({"user": a, "text": b}).to_string().into_bytes()),
    ]) {
        let sender = shared::person::Person::from_claims(&serde_json::json!({"sub": "u1", "name": "Ann", "email": "ann@example.com", "email_verified": "true"})).unwrap();
        let outcomes: Vec<Result<(), ApiError>> = vec![
            rest::parse_json_bytes::<items::CreateItemRequest>(&body).and_then(|r| r.validate()).map(drop),
            rest::parse_json_bytes::<items::UpdateItemRequest>(&body).and_then(|r| r.validate()).map(drop),
            rest::parse_json_bytes::<photos::UploadRequest>(&body).and_then(|r| r.validate("0d6c2a4e-1f3b-4c5d-8e9f-a0b1c2d3e4f5", 50 << 20)).map(drop),
            rest::parse_json_bytes::<appointments::CreateAppointmentRequest>(&body)
                .and_then(|r| r.validate(&sender, time::OffsetDateTime::now_utc())).map(drop),
            rest::parse_json_bytes::<appointments::ContactPreferenceRequest>(&body).map(drop),
            rest::parse_json_bytes::<approval::StartApprovalRequest>(&body).and_then(|r| r.validate(&sender)).map(drop),
            rest::parse_json_bytes::<chat::PostMessageRequest>(&body).and_then(|r| r.validate(&sender)).map(drop),
        ];
        for outcome in outcomes {
            if let Err(err) = outcome {
                prop_assert!(client_error(&err), "{err:?}");
            }
        }
    }
}
