//! Appointments domain: booking requests, contact preferences, and the enrichment the pipe
//! applies to each new appointment.
//!
//! Tables (template.yaml): `AppointmentsTable` keyed by `id` (stream NEW_IMAGE feeds the pipe),
//! with [`PATIENT_INDEX`] (`patient` + `startsAt`: a person's appointments by time),
//! `ContactsTable` keyed by `email`. Items are stored with the same camelCase names the API uses,
//! so a stream image decodes straight into [`Appointment`].
//!
//! The patient is the signed-in person: an appointment is booked for their `sub` and verified
//! e-mail address, and only they, or the clinic's staff (the `staff` group), list and read it;
//! anyone else gets a missing appointment's 404. A contact preference is set for the caller's
//! own verified address only, and read by them or the staff.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client as DynamoDb;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use serde::{Deserialize, Serialize};

use crate::cursor::{self, Page};
use crate::error::{ApiError, BackendError, classify_sdk_error};
use crate::person::Person;
use crate::timestamp;
use crate::validate;

/// A person's appointments by start time.
pub const PATIENT_INDEX: &str = "PatientIndex";
pub const PATIENT_INDEX_KEYS: (&str, &str) = ("patient", "startsAt");
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

/// BatchGetItem takes at most 100 keys per call.
pub const BATCH_GET_LIMIT: usize = 100;
const UNPROCESSED_RETRIES: u32 = 5;

/// Body of `POST /appointments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateAppointmentRequest {
    pub patient_name: String,
    /// The patient's own verified address, if sent (the booking takes the token's).
    #[serde(default, deserialize_with = "validate::not_null")]
    pub email: Option<String>,
    pub dentist: String,
    pub starts_at: String,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    pub id: String,
    /// The `sub` of the person it was booked by and for (empty for one from before accounts).
    #[serde(default)]
    pub patient: String,
    pub patient_name: String,
    pub email: String,
    pub dentist: String,
    pub starts_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub created_at: String,
}

impl CreateAppointmentRequest {
    /// Validates against `now` (the appointment must start in the future), for `patient`: the
    /// booking is theirs, at their verified address (another address is 403).
    pub fn validate(
        self,
        patient: &Person,
        now: time::OffsetDateTime,
    ) -> Result<Appointment, ApiError> {
        let starts = timestamp::parse(&self.starts_at)
            .ok_or_else(|| ApiError::validation("startsAt must be an RFC 3339 timestamp"))?;
        if starts <= now {
            return Err(ApiError::validation("startsAt must be in the future"));
        }
        let email = patient.verified_email()?.to_string();
        if let Some(asked) = &self.email
            && validate::email("email", asked)? != email
        {
            return Err(ApiError::forbidden(
                "appointments are booked for your own verified e-mail address",
            ));
        }
        Ok(Appointment {
            id: uuid::Uuid::new_v4().to_string(),
            patient: patient.sub.clone(),
            patient_name: validate::text("patientName", &self.patient_name, 1, 100)?,
            email,
            dentist: validate::text("dentist", &self.dentist, 1, 100)?,
            starts_at: timestamp::format(starts),
            notes: self
                .notes
                .map(|n| validate::text("notes", &n, 0, 1000))
                .transpose()?,
            created_at: timestamp::format(now),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactMethod {
    Email,
    Sms,
    None,
}

/// Body of `PUT /contacts/{email}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContactPreferenceRequest {
    pub preferred_method: ContactMethod,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub email: String,
    pub preferred_method: ContactMethod,
    pub updated_at: String,
}

/// What the pipe delivers to the queue: the appointment plus the contact preference
/// (`none` when the patient has no contact record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichedAppointment {
    #[serde(flatten)]
    pub appointment: Appointment,
    pub preferred_method: ContactMethod,
}

#[derive(Debug, Clone)]
pub struct AppointmentsRepo {
    db: DynamoDb,
    appointments_table: Option<String>,
    contacts_table: String,
}

impl AppointmentsRepo {
    /// `appointments_table` is `None` for the enrichment function, which reads contacts only.
    pub fn new(db: DynamoDb, appointments_table: Option<String>, contacts_table: String) -> Self {
        Self {
            db,
            appointments_table,
            contacts_table,
        }
    }

    fn appointments(&self) -> Result<&str, BackendError> {
        self.appointments_table
            .as_deref()
            .ok_or_else(|| BackendError::failed("dynamodb", "no appointments table configured"))
    }

    pub async fn create(&self, appointment: &Appointment) -> Result<(), BackendError> {
        // The id is a fresh UUID: only our own lost-answer attempt can already hold it.
        match crate::dynamo::put_new(&self.db, self.appointments()?, appointment, &["id"]).await? {
            true => Ok(()),
            false => Err(BackendError::failed("dynamodb", "appointment id collision")),
        }
    }

    /// Appointment `id`, if `reader` may see it (theirs, or they are staff).
    pub async fn get(
        &self,
        reader: &Person,
        id: &str,
    ) -> Result<Option<Appointment>, BackendError> {
        let found: Option<Appointment> =
            crate::dynamo::get(&self.db, self.appointments()?, "id", id).await?;
        Ok(found.filter(|a| a.patient == reader.sub || reader.is_staff()))
    }

    /// A page of `reader`'s appointments by start time, or with `all` (staff only, else 403)
    /// everyone's.
    pub async fn list(
        &self,
        reader: &Person,
        all: bool,
        limit: Option<&str>,
        after: Option<&str>,
    ) -> Result<Page<Appointment>, ApiError> {
        if all && !reader.is_staff() {
            return Err(ApiError::forbidden(
                "only the clinic's staff list every appointment",
            ));
        }
        let limit = validate::limit(limit, DEFAULT_PAGE, MAX_PAGE)?;
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let (patient_attr, starts_attr) = PATIENT_INDEX_KEYS;
        let (scope, keys): (String, &[&str]) = if all {
            ("appointments/all".into(), &["id"])
        } else {
            (
                format!("appointments/{}", reader.sub),
                &["id", patient_attr, starts_attr],
            )
        };
        let start = after.map(|c| cursor::decode(&scope, c, keys)).transpose()?;
        let table = self.appointments()?;
        let (items, last) = if all {
            let out = self.db.scan().table_name(table).limit(limit);
            let out = out.set_exclusive_start_key(start).send().await;
            let out = out.map_err(|e| classify_sdk_error("dynamodb", &e))?;
            (out.items, out.last_evaluated_key)
        } else {
            let out = self
                .db
                .query()
                .table_name(table)
                .index_name(PATIENT_INDEX)
                .key_condition_expression("#patient = :patient")
                .expression_attribute_names("#patient", patient_attr)
                .expression_attribute_values(":patient", AttributeValue::S(reader.sub.clone()))
                .limit(limit)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify_sdk_error("dynamodb", &e))?;
            (out.items, out.last_evaluated_key)
        };
        let items = items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                serde_dynamo::from_item(item).map_err(|e| BackendError::failed("dynamodb", e))
            })
            .collect::<Result<Vec<Appointment>, _>>()?;
        let next_cursor = last
            .filter(|k| !k.is_empty())
            .and_then(|k| cursor::encode(&scope, &k));
        Ok(Page { items, next_cursor })
    }

    pub async fn put_contact(
        &self,
        email: &str,
        method: ContactMethod,
    ) -> Result<Contact, BackendError> {
        let contact = Contact {
            email: email.into(),
            preferred_method: method,
            updated_at: timestamp::now(),
        };
        crate::dynamo::put(&self.db, &self.contacts_table, &contact, None).await?;
        Ok(contact)
    }

    pub async fn contact(&self, email: &str) -> Result<Option<Contact>, BackendError> {
        crate::dynamo::get(&self.db, &self.contacts_table, "email", email).await
    }

    /// Preferred methods for `emails`: one BatchGetItem per 100 distinct emails, unprocessed keys
    /// retried with backoff. Emails without a contact are absent from the map.
    pub async fn preferred_methods(
        &self,
        emails: &[String],
    ) -> Result<HashMap<String, ContactMethod>, BackendError> {
        let mut distinct: Vec<&String> = emails.iter().collect();
        distinct.sort();
        distinct.dedup();
        let mut found = HashMap::new();
        for chunk in distinct.chunks(BATCH_GET_LIMIT) {
            let keys = chunk
                .iter()
                .map(|e| HashMap::from([("email".to_string(), AttributeValue::S((*e).clone()))]))
                .collect();
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .map_err(|e| BackendError::failed("dynamodb", e))?;
            for attempt in 0..=UNPROCESSED_RETRIES {
                let out = self
                    .db
                    .batch_get_item()
                    .request_items(&self.contacts_table, request.clone())
                    .send()
                    .await
                    .map_err(|e| classify_sdk_error("dynamodb", &e))?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.contacts_table)
                    .unwrap_or_default()
                {
                    let contact: Contact = serde_dynamo::from_item(item)
                        .map_err(|e| BackendError::failed("dynamodb", e))?;
                    found.insert(contact.email, contact.preferred_method);
                }
                match out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.contacts_table))
                {
                    Some(rest) if !rest.keys.is_empty() => {
                        if attempt == UNPROCESSED_RETRIES {
                            return Err(BackendError::Throttled {
                                service: "dynamodb",
                                detail: "unprocessed keys after retries".into(),
                            });
                        }
                        request = rest;
                        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                    }
                    _ => break,
                }
            }
        }
        Ok(found)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A stream record that is not an appointment insert (an item written around the API, a
/// schema drift): taken out of the batch and kept, with why, for a person to look at.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedRecord {
    /// Position in the batch the pipe passed.
    pub index: usize,
    pub reason: String,
    /// The record as the pipe passed it.
    pub record: serde_json::Value,
}

/// The enriched documents of a batch, in order, and the records that could not be enriched.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrichment {
    pub documents: Vec<EnrichedAppointment>,
    pub rejected: Vec<RejectedRecord>,
}

/// Enriches a whole batch of stream records, keeping their order. EventBridge Pipes does not
/// support partial batch failure for enrichments: an error fails the whole batch through every
/// retry and its dead-letter queue receives only where the batch was. So a malformed record
/// does not fail the batch: it is returned in [`Enrichment::rejected`] (the function keeps it
/// where a person sees it) and the rest go on. Only a backend failure fails the batch (retried).
pub async fn enrich(
    repo: &AppointmentsRepo,
    records: &[serde_json::Value],
) -> Result<Enrichment, EnrichError> {
    let mut appointments = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let parsed = serde_json::from_value::<aws_lambda_events::event::dynamodb::EventRecord>(
            record.clone(),
        )
        .map_err(|e| e.to_string())
        .and_then(|parsed| {
            serde_dynamo::from_item::<_, Appointment>(parsed.change.new_image)
                .map_err(|e| e.to_string())
        });
        match parsed {
            Ok(appointment) => appointments.push(appointment),
            Err(reason) => rejected.push(RejectedRecord {
                index,
                reason: format!("record {index} is not an appointment insert: {reason}"),
                record: record.clone(),
            }),
        }
    }
    let emails: Vec<String> = appointments.iter().map(|a| a.email.clone()).collect();
    let methods = if emails.is_empty() {
        HashMap::new()
    } else {
        repo.preferred_methods(&emails).await?
    };
    let documents = appointments
        .into_iter()
        .map(|appointment| {
            let preferred_method = methods
                .get(&appointment.email)
                .copied()
                .unwrap_or(ContactMethod::None);
            EnrichedAppointment {
                appointment,
                preferred_method,
            }
        })
        .collect();
    Ok(Enrichment {
        documents,
        rejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn request(starts_at: &str) -> CreateAppointmentRequest {
        CreateAppointmentRequest {
            patient_name: "Ann".into(),
            email: Some("Ann@Example.com".into()),
            dentist: "Dr. Kim".into(),
            starts_at: starts_at.into(),
            notes: None,
        }
    }

    fn patient(email: &str, verified: &str) -> Person {
        let claims = serde_json::json!({"sub": "u1", "email": email, "email_verified": verified});
        Person::from_claims(&claims).unwrap()
    }

    #[test]
    fn appointments_must_start_in_the_future() {
        let now = datetime!(2026-11-21 15:00 UTC);
        let ann = patient("ann@example.com", "true");
        let ok = request("2026-11-22T09:30:00+09:00")
            .validate(&ann, now)
            .unwrap();
        assert_eq!(ok.starts_at, "2026-11-22T00:30:00.000Z");
        assert_eq!(
            (ok.email.as_str(), ok.patient.as_str()),
            ("ann@example.com", "u1")
        );
        assert!(request("2026-11-21T14:59:59Z").validate(&ann, now).is_err());
        assert!(request("tomorrow").validate(&ann, now).is_err());
    }

    #[test]
    fn the_patient_is_the_signed_in_person_at_their_verified_address() {
        let now = datetime!(2026-11-21 15:00 UTC);
        let at = |request: CreateAppointmentRequest, who: &Person| {
            request.validate(who, now).map_err(|e| e.status.as_u16())
        };
        let unsent = CreateAppointmentRequest {
            email: None,
            ..request("2026-11-22T09:30:00Z")
        };
        let ann = patient("ann@example.com", "true");
        assert_eq!(at(unsent, &ann).unwrap().email, "ann@example.com");
        let bob = patient("bob@example.com", "true");
        assert_eq!(at(request("2026-11-22T09:30:00Z"), &bob).unwrap_err(), 403);
        let unverified = patient("ann@example.com", "false");
        assert_eq!(
            at(request("2026-11-22T09:30:00Z"), &unverified).unwrap_err(),
            403
        );
    }

    #[test]
    fn enriched_documents_are_plain_camel_case_json() {
        let doc = EnrichedAppointment {
            appointment: Appointment {
                id: "1".into(),
                patient: "u1".into(),
                patient_name: "Ann".into(),
                email: "a@b.co".into(),
                dentist: "Kim".into(),
                starts_at: "2026-11-22T00:30:00.000Z".into(),
                notes: None,
                created_at: "2026-11-21T15:00:00.000Z".into(),
            },
            preferred_method: ContactMethod::None,
        };
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["patientName"], "Ann");
        assert_eq!(json["preferredMethod"], "none");
        assert!(json.get("notes").is_none());
    }
}
