//! Appointments through the EventBridge Pipe, run locally from the template's Pipe resource:
//! API -> table -> real stream -> INSERT filter -> enrichment (whole batch) -> real queue.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{Person, Rest, assert_error, drain, fixture, parts, stack};
use local_stack::cloudformation::provision::Stack;
use local_stack::lambda::pipes::{PipeRunner, PipeStats};
use pipe_enrichment::Enricher;
use serde_json::{Value, json};
use shared::appointments::{Appointment, ContactMethod, EnrichedAppointment};
use shared::config::EnvSource;

struct Booking {
    stack: Stack,
    api: appointments_api::App,
    enricher: Enricher,
    pipe: PipeRunner,
}

async fn booking() -> Booking {
    let mut stack = stack().await;
    let pipe = PipeRunner::from_stack(&mut stack, "AppointmentPipe")
        .await
        .unwrap();
    assert_eq!(
        pipe.enrichment.as_deref(),
        Some("PipeEnrichmentFunction"),
        "the template names the enrichment"
    );
    let api_env = stack.function_env("AppointmentsApiFunction").await.unwrap();
    let enrich_env = stack.function_env("PipeEnrichmentFunction").await.unwrap();
    Booking {
        api: appointments_api::App::from_env(
            &stack.function_sdk("AppointmentsApiFunction").await.unwrap(),
            &api_env as &dyn EnvSource,
        )
        .unwrap(),
        enricher: Enricher::from_env(
            &stack.function_sdk("PipeEnrichmentFunction").await.unwrap(),
            &enrich_env as &dyn EnvSource,
        )
        .unwrap(),
        pipe,
        stack,
    }
}

fn future(days: i64) -> String {
    shared::timestamp::format(time::OffsetDateTime::now_utc() + time::Duration::days(days))
}

impl Booking {
    /// An appointment booked by the signed-in patient `name` at `email`.
    async fn book(&self, name: &str, email: &str) -> Value {
        self.book_as(&Person::new(name, email)).await
    }

    async fn book_as(&self, patient: &Person) -> Value {
        let body =
            json!({"patientName": patient.name, "dentist": "Dr. Kim", "startsAt": future(3)});
        let request = Rest::post("/appointments").as_person(patient).json(body);
        let (status, appointment) = parts(&self.api.handle(request.request()).await);
        assert_eq!(status, 201, "{appointment}");
        appointment
    }

    /// The contact preference of `email`, set by its own (signed-in) person.
    async fn prefer(&self, email: &str, method: &str) {
        let request = Rest::put(&format!("/contacts/{email}"))
            .resource("/contacts/{email}")
            .as_person(&Person::new("Patient", email))
            .json(json!({"preferredMethod": method}));
        let (status, body) = parts(&self.api.handle(request.request()).await);
        assert_eq!(status, 200, "{body}");
    }

    async fn run_pipe(&mut self) -> PipeStats {
        let enricher = self.enricher.clone();
        self.pipe
            .run_once(move |batch| {
                let enricher = enricher.clone();
                async move {
                    enricher
                        .handle(batch)
                        .await
                        .map(|docs| serde_json::to_value(docs).unwrap())
                        .map_err(|e| e.to_string())
                }
            })
            .await
            .unwrap()
    }

    async fn drain(&self, queue: &str) -> Vec<Value> {
        let url = self.stack.reference(queue).unwrap();
        drain(&self.stack, &url)
            .await
            .iter()
            .map(|body| serde_json::from_str(body).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn only_inserts_arrive_enriched_with_the_contact_preference() {
    let mut b = booking().await;
    b.prefer("ann@example.com", "sms").await;
    b.prefer("bo@example.com", "email").await;
    let booked = [
        b.book("Ann", "ann@example.com").await,
        b.book("Bo", "bo@example.com").await,
        b.book("Cy", "cy@example.com").await,
        b.book("Di", "DI@example.com").await,
    ];
    // A MODIFY and a REMOVE on the table: the pipe's filter keeps them out.
    let db = aws_sdk_dynamodb::Client::new(&b.stack.sdk);
    let table = b.stack.reference("AppointmentsTable").unwrap();
    db.update_item()
        .table_name(&table)
        .key(
            "id",
            AttributeValue::S(booked[0]["id"].as_str().unwrap().into()),
        )
        .update_expression("SET notes = :n")
        .expression_attribute_values(":n", AttributeValue::S("moved".into()))
        .send()
        .await
        .unwrap();
    db.delete_item()
        .table_name(&table)
        .key(
            "id",
            AttributeValue::S(booked[3]["id"].as_str().unwrap().into()),
        )
        .send()
        .await
        .unwrap();

    let stats = b.run_pipe().await;
    assert_eq!(
        stats,
        PipeStats {
            read: 6,
            filtered_out: 2,
            delivered: 4,
            failed_batches: 0
        }
    );

    let received = b.drain("AppointmentQueue").await;
    let mut expected: HashMap<String, Value> = HashMap::new();
    for (appointment, method) in booked.iter().zip(["sms", "email", "none", "none"]) {
        let mut doc = appointment.clone();
        doc["preferredMethod"] = json!(method);
        expected.insert(appointment["id"].as_str().unwrap().to_string(), doc);
    }
    assert_eq!(received.len(), 4);
    for document in &received {
        assert_eq!(
            document,
            &expected[document["id"].as_str().unwrap()],
            "consumers get exactly the enriched appointment"
        );
        assert!(
            document.get("patientName").is_some() && document.get("NewImage").is_none(),
            "plain JSON, not DynamoDB-typed"
        );
    }
}

fn stream_record(appointment: &Appointment) -> Value {
    let image: serde_dynamo::Item = serde_dynamo::to_item(appointment).unwrap();
    json!({
        "eventID": uuid::Uuid::new_v4().to_string(), "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/s",
        "dynamodb": {"Keys": {"id": {"S": appointment.id}}, "NewImage": image, "SequenceNumber": "1", "SizeBytes": 1, "StreamViewType": "NEW_IMAGE"}
    })
}

#[tokio::test]
async fn enrichment_handles_batches_over_100_contacts_in_order() {
    let b = booking().await;
    let mut appointments = Vec::new();
    let mut preferences = HashMap::new();
    for i in 0..150 {
        // Some patients book twice: duplicate emails are looked up once.
        let email = format!("patient{}@example.com", if i % 10 == 9 { i - 1 } else { i });
        if i % 3 == 0 {
            let (method, expected) = if i % 2 == 0 {
                ("sms", ContactMethod::Sms)
            } else {
                ("email", ContactMethod::Email)
            };
            b.prefer(&email, method).await;
            preferences.insert(email.clone(), expected);
        }
        appointments.push(Appointment {
            id: uuid::Uuid::new_v4().to_string(),
            patient: uuid::Uuid::new_v4().to_string(),
            patient_name: format!("Patient {i}"),
            email,
            dentist: "Dr. Kim".into(),
            starts_at: future(5),
            notes: None,
            created_at: shared::timestamp::now(),
        });
    }
    let batch = Value::Array(appointments.iter().map(stream_record).collect());
    let out = b.enricher.handle(batch).await.unwrap();
    assert_eq!(out.len(), 150);
    for (i, (doc, appointment)) in out.iter().zip(&appointments).enumerate() {
        assert_eq!(&doc.appointment, appointment, "order kept at {i}");
        let expected = preferences
            .get(&appointment.email)
            .copied()
            .unwrap_or(ContactMethod::None);
        assert_eq!(
            doc.preferred_method, expected,
            "record {i} ({})",
            appointment.email
        );
    }
}

#[tokio::test]
async fn a_malformed_record_is_kept_aside_and_the_rest_of_its_batch_delivered() {
    let mut b = booking().await;
    let good = b.book("Ann", "ann@example.com").await;
    // An item that is not an appointment (written around the API).
    let db = aws_sdk_dynamodb::Client::new(&b.stack.sdk);
    db.put_item()
        .table_name(b.stack.reference("AppointmentsTable").unwrap())
        .item("id", AttributeValue::S("junk".into()))
        .send()
        .await
        .unwrap();
    let stats = b.run_pipe().await;
    // Pipes cannot fail one record of an enrichment batch: the bad record must not take the
    // good one down with it through every retry.
    assert_eq!(stats.failed_batches, 0);
    assert_eq!(stats.delivered, 1);
    let delivered = b.drain("AppointmentQueue").await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["id"], good["id"]);
    let rejected = b.drain("AppointmentRejectedRecords").await;
    assert_eq!(rejected.len(), 1, "the bad record is kept for a person");
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not an appointment insert"),
        "{}",
        rejected[0]
    );
    assert_eq!(
        rejected[0]["record"]["dynamodb"]["NewImage"]["id"]["S"], "junk",
        "the record itself is kept: {}",
        rejected[0]
    );
    assert!(b.drain("AppointmentPipeDLQ").await.is_empty());
}

#[tokio::test]
async fn a_failing_enrichment_is_retried_then_dead_lettered_by_position() {
    let mut b = booking().await;
    b.book("Ann", "ann@example.com").await;
    b.book("Bob", "bob@example.com").await;
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = attempts.clone();
    let stats = b
        .pipe
        .run_once(move |_batch| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err::<Value, _>("ThrottlingException: contacts unavailable".to_string())
            }
        })
        .await
        .unwrap();
    assert_eq!(stats.failed_batches, 1);
    let template = integration_tests::template();
    let retries = template.resource("AppointmentPipe").unwrap().properties["SourceParameters"]
        ["DynamoDBStreamParameters"]["MaximumRetryAttempts"]
        .as_u64()
        .unwrap();
    assert_eq!(
        attempts.load(std::sync::atomic::Ordering::SeqCst) as u64,
        1 + retries,
        "the first attempt and MaximumRetryAttempts retries"
    );
    assert!(b.drain("AppointmentQueue").await.is_empty());
    let dead = b.drain("AppointmentPipeDLQ").await;
    assert_eq!(dead.len(), 1);
    let info = &dead[0]["DDBStreamBatchInfo"];
    assert_eq!(info["batchSize"], 2, "{}", dead[0]);
    assert!(info["startSequenceNumber"].is_string(), "{}", dead[0]);
    assert_eq!(dead[0]["context"]["condition"], "RetryAttemptsExhausted");
    assert!(
        dead[0].get("records").is_none(),
        "metadata only, as AWS sends"
    );
}

#[tokio::test]
async fn every_route_rejects_bad_input() {
    let b = booking().await;
    let ok = json!({"patientName": "Ann", "email": "ann@example.com", "dentist": "Dr. Kim", "startsAt": future(1)});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        Rest::post("/appointments").json(body)
    };
    let cases: Vec<(Rest, u16, &str)> = vec![
        (
            with("startsAt", json!("2020-01-01T00:00:00Z")),
            400,
            "validation_error",
        ),
        (
            with("startsAt", json!("next tuesday")),
            400,
            "validation_error",
        ),
        (
            with("email", json!("not-an-email")),
            400,
            "validation_error",
        ),
        (with("patientName", json!("")), 400, "validation_error"),
        (with("dentist", json!(7)), 400, "validation_error"),
        (
            with("notes", json!("x".repeat(1001))),
            400,
            "validation_error",
        ),
        (with("id", json!("mine")), 400, "validation_error"),
        (
            Rest::post("/appointments").raw_body("{\"patientName\": "),
            400,
            "malformed_json",
        ),
        (
            Rest::new("DELETE", "/appointments"),
            405,
            "method_not_allowed",
        ),
        (
            Rest::get("/appointments").query("all", "yes"),
            400,
            "validation_error",
        ),
        (
            Rest::get("/appointments").query("cursor", "bogus"),
            400,
            "validation_error",
        ),
        (
            Rest::get("/appointments/not-a-uuid").resource("/appointments/{id}"),
            400,
            "validation_error",
        ),
        (
            Rest::get(&format!("/appointments/{}", uuid::Uuid::new_v4()))
                .resource("/appointments/{id}"),
            404,
            "not_found",
        ),
        (
            Rest::put("/contacts/ann@example.com").json(json!({"preferredMethod": "pigeon"})),
            400,
            "validation_error",
        ),
        (
            Rest::put("/contacts/ann@example.com").json(json!({})),
            400,
            "validation_error",
        ),
        (
            Rest::put("/contacts/nope").json(json!({"preferredMethod": "sms"})),
            400,
            "validation_error",
        ),
        (Rest::get("/contacts/nobody@example.com"), 404, "not_found"),
        (
            Rest::new("DELETE", "/contacts/ann@example.com"),
            405,
            "method_not_allowed",
        ),
        (Rest::get("/dentists"), 404, "route_not_found"),
    ];
    for (request, status, code) in cases {
        assert_error(&b.api.handle(request.request()).await, status, code);
    }
}

#[tokio::test]
async fn fixtures_parse_for_both_functions() {
    let b = booking().await;
    let load = |name: &str| lambda_http::request::from_str(&fixture(name)).unwrap();
    assert_eq!(
        b.api
            .handle(load("appointments-api/create.json"))
            .await
            .status(),
        201
    );
    assert_error(
        &b.api.handle(load("appointments-api/get.json")).await,
        404,
        "not_found",
    );
    let (status, listed) = parts(&b.api.handle(load("appointments-api/list.json")).await);
    assert_eq!(
        (status, listed["items"][0]["patientName"].as_str()),
        (200, Some("Ann Lee")),
        "the booking above, the fixture's person's own"
    );
    assert_eq!(
        b.api
            .handle(load("appointments-api/put-contact.json"))
            .await
            .status(),
        200
    );
    let (status, contact) = parts(
        &b.api
            .handle(load("appointments-api/get-contact.json"))
            .await,
    );
    assert_eq!(
        (status, contact["preferredMethod"].as_str()),
        (200, Some("sms"))
    );
    let batch: Value = serde_json::from_str(&fixture("pipe-enrichment/batch.json")).unwrap();
    let out: Vec<EnrichedAppointment> = b.enricher.handle(batch).await.unwrap();
    assert_eq!(
        out.iter().map(|d| d.preferred_method).collect::<Vec<_>>(),
        [ContactMethod::Sms, ContactMethod::None]
    );
}

/// Ann's appointment and contact preference through Bob's eyes: a missing appointment's 404,
/// no row of hers in his listing, her preference neither readable nor settable; the staff
/// list and read everyone's.
#[tokio::test]
async fn a_patients_appointments_are_theirs_and_the_staffs() {
    let b = booking().await;
    let ann = Person::new("Ann", "ann@example.com");
    let bob = Person::new("Bob", "bob@example.com");
    let staff = Person::new("Dr. Kim's desk", "desk@example.com").in_group("staff");
    let anns = b.book_as(&ann).await;
    assert_eq!(
        (anns["patient"].as_str(), anns["email"].as_str()),
        (Some(ann.sub.as_str()), Some("ann@example.com"))
    );
    let bobs = b.book_as(&bob).await;
    let get = |who: &Person, id: &str| {
        Rest::get(&format!("/appointments/{id}"))
            .resource("/appointments/{id}")
            .as_person(who)
            .request()
    };
    let id = anns["id"].as_str().unwrap();
    let missing = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        parts(&b.api.handle(get(&bob, id)).await),
        parts(&b.api.handle(get(&bob, &missing)).await),
        "Ann's appointment looks missing to Bob"
    );
    assert_eq!(
        parts(&b.api.handle(get(&ann, id)).await),
        (200, anns.clone())
    );
    assert_eq!(
        parts(&b.api.handle(get(&staff, id)).await),
        (200, anns.clone())
    );

    let list = |who: &Person, all: bool| {
        let request = Rest::get("/appointments").as_person(who);
        let request = if all {
            request.query("all", "true")
        } else {
            request
        };
        request.request()
    };
    let ids = |page: Value| -> Vec<String> {
        let items = page["items"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, page) = parts(&b.api.handle(list(&bob, false)).await);
    assert_eq!(
        (status, ids(page)),
        (200, vec![bobs["id"].as_str().unwrap().to_string()])
    );
    assert_error(&b.api.handle(list(&bob, true)).await, 403, "forbidden");
    let (status, page) = parts(&b.api.handle(list(&staff, true)).await);
    let mut everyone = ids(page);
    everyone.sort();
    let mut expected = vec![id.to_string(), bobs["id"].as_str().unwrap().to_string()];
    expected.sort();
    assert_eq!((status, everyone), (200, expected));

    // Booking under another address is refused; so is setting or reading another's preference.
    let as_ann = json!({"patientName": "Bob", "email": "ann@example.com", "dentist": "Dr. Kim", "startsAt": future(2)});
    let request = Rest::post("/appointments").as_person(&bob).json(as_ann);
    assert_error(&b.api.handle(request.request()).await, 403, "forbidden");
    b.prefer("ann@example.com", "sms").await;
    let contact = |who: &Person, method: &str| {
        let request = Rest::new(method, "/contacts/ann@example.com")
            .resource("/contacts/{email}")
            .as_person(who);
        if method == "PUT" {
            request.json(json!({"preferredMethod": "email"}))
        } else {
            request
        }
    };
    assert_error(
        &b.api.handle(contact(&bob, "PUT").request()).await,
        403,
        "forbidden",
    );
    let theirs = parts(&b.api.handle(contact(&bob, "GET").request()).await);
    let nobody = Rest::get("/contacts/nobody@example.com")
        .resource("/contacts/{email}")
        .as_person(&bob);
    assert_eq!(
        theirs,
        parts(&b.api.handle(nobody.request()).await),
        "looks missing"
    );
    let (status, read) = parts(&b.api.handle(contact(&staff, "GET").request()).await);
    assert_eq!(
        (status, read["preferredMethod"].as_str()),
        (200, Some("sms")),
        "unchanged by Bob"
    );
}
