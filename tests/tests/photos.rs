//! Photo pipeline: the render core on every input kind (no server), and the whole path against
//! the emulator: presign -> HTTP PUT -> S3 notification on SQS -> thumbnailer -> thumbnail + SNS
//! notice -> stable link redirect; and each person's album, theirs alone.

use std::time::Duration;

use integration_tests::samples::{self, BLUE, RED, near};
use integration_tests::{
    Person, Rest, ann, assert_error, drain, fixture, parts, stack, subscribe_queue,
};
use local_stack::cloudformation::provision::Stack;
use local_stack::lambda::queues;
use serde_json::{Value, json};
use shared::config::EnvSource;
use shared::photos::{PhotoRef, ThumbnailNotice};
use thumbnailer::render::{RenderError, RenderOptions, render};

// ---- render core -------------------------------------------------------------------------------

fn thumb(bytes: &[u8]) -> image::RgbImage {
    samples::decode(
        &render(bytes, &RenderOptions::default())
            .expect("renders")
            .jpeg,
    )
}

/// Top red, bottom blue, in the displayed orientation.
fn assert_upright(image: &image::RgbImage) {
    let (w, h) = image.dimensions();
    assert!(
        near(image.get_pixel(w / 2, h / 8), RED),
        "top is {:?}",
        image.get_pixel(w / 2, h / 8)
    );
    assert!(
        near(image.get_pixel(w / 2, h - 1 - h / 8), BLUE),
        "bottom is {:?}",
        image.get_pixel(w / 2, h - 1 - h / 8)
    );
}

#[test]
fn every_accepted_kind_becomes_a_200px_jpeg() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("baseline jpeg", samples::jpeg(1600, 1200)),
        ("progressive jpeg", samples::progressive_jpeg(1600, 1200)),
        ("grayscale jpeg", samples::grayscale_jpeg(1600, 1200)),
        ("png 8-bit", samples::png(800, 600)),
        ("png 16-bit", samples::png16(800, 600)),
        ("webp", samples::webp(800, 600)),
        ("gif", samples::gif(800, 600)),
    ];
    for (name, bytes) in cases {
        let out =
            render(&bytes, &RenderOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((out.width, out.height), (200, 150), "{name}");
        let image = samples::decode(&out.jpeg);
        assert_eq!(image.dimensions(), (200, 150), "{name}");
        if name != "grayscale jpeg" {
            assert_upright(&image);
        }
    }
}

#[test]
fn cmyk_jpegs_keep_their_colours() {
    assert_upright(&thumb(&samples::cmyk_jpeg(800, 600)));
}

#[test]
fn alpha_is_flattened_on_white() {
    let image = thumb(&samples::png_with_alpha(800, 600));
    assert!(
        near(image.get_pixel(20, 20), [255, 255, 255]),
        "transparent part is white: {:?}",
        image.get_pixel(20, 20)
    );
    assert!(near(image.get_pixel(180, 20), RED));
}

#[test]
fn exif_orientation_is_applied() {
    // Stored 1200x800 with "rotate 90 CW": displayed 800 wide, 1200 tall; red (top) goes right.
    let out = render(
        &samples::jpeg_with_orientation(1200, 800, 6),
        &RenderOptions::default(),
    )
    .unwrap();
    assert_eq!((out.width, out.height), (200, 300));
    let image = samples::decode(&out.jpeg);
    assert!(
        near(image.get_pixel(190, 150), RED),
        "right is {:?}",
        image.get_pixel(190, 150)
    );
    assert!(
        near(image.get_pixel(10, 150), BLUE),
        "left is {:?}",
        image.get_pixel(10, 150)
    );
    // Orientation 3 (180 degrees): red at the bottom.
    let image = thumb(&samples::jpeg_with_orientation(800, 600, 3));
    assert!(near(image.get_pixel(100, 140), RED));
}

#[test]
fn narrow_images_are_never_upscaled() {
    for bytes in [samples::jpeg(120, 90), samples::png(120, 90)] {
        let out = render(&bytes, &RenderOptions::default()).unwrap();
        assert_eq!((out.width, out.height), (120, 90));
    }
}

#[test]
fn hostile_inputs_fail_permanently() {
    let options = RenderOptions::default();
    assert_eq!(render(b"", &options).unwrap_err(), RenderError::Empty);
    assert_eq!(
        render(b"just some text", &options).unwrap_err(),
        RenderError::UnsupportedFormat
    );
    let truncated = samples::jpeg(800, 600)[..2000].to_vec();
    assert!(
        matches!(render(&truncated, &options), Err(RenderError::Decode(_))),
        "truncated JPEG"
    );
    let png = samples::png(400, 300);
    assert!(
        matches!(
            render(&png[..png.len() / 2], &options),
            Err(RenderError::Decode(_))
        ),
        "truncated PNG"
    );
    assert!(matches!(
        render(&samples::jpeg_claiming(60_000, 60_000), &options),
        Err(RenderError::TooLarge { .. })
    ));
    let small_limit = RenderOptions {
        max_pixels: 10_000,
        ..RenderOptions::default()
    };
    assert!(matches!(
        render(&samples::png(400, 300), &small_limit),
        Err(RenderError::TooLarge { .. })
    ));
}

// ---- against the emulator ------------------------------------------------------------------------

struct Pipeline {
    stack: Stack,
    presigner: presigner::App,
    thumbnailer: thumbnailer::Thumbnailer,
    queue_url: String,
    queue_arn: String,
    thumbnails: String,
    uploads: String,
    notices: String,
}

async fn pipeline() -> Pipeline {
    let mut stack = stack().await;
    // The uploads bucket (with its notification to the queue) is not in any function's
    // environment, so provision it explicitly, as a deployment would.
    stack.ensure(&["PhotoUploadsBucket"]).await.unwrap();
    let presigner_env = stack.function_env("PresignerFunction").await.unwrap();
    let thumbnailer_env = stack.function_env("ThumbnailerFunction").await.unwrap();
    let notices = subscribe_queue(&stack, &thumbnailer_env["THUMBNAIL_TOPIC_ARN"]).await;
    Pipeline {
        presigner: presigner::App::from_env(
            &stack.function_sdk("PresignerFunction").await.unwrap(),
            &presigner_env as &dyn EnvSource,
        )
        .unwrap(),
        thumbnailer: thumbnailer::Thumbnailer::from_env(
            &stack.function_sdk("ThumbnailerFunction").await.unwrap(),
            &thumbnailer_env as &dyn EnvSource,
        )
        .unwrap(),
        queue_url: stack.reference("PhotoUploadQueue").unwrap(),
        queue_arn: stack.attribute("PhotoUploadQueue", "Arn").unwrap(),
        thumbnails: thumbnailer_env["THUMBNAIL_BUCKET"].clone(),
        uploads: presigner_env["UPLOAD_BUCKET"].clone(),
        notices,
        stack,
    }
}

/// The PUT an upload ticket describes, with every header it signed.
async fn put(ticket: &Value, bytes: Vec<u8>) {
    let mut put = reqwest::Client::new()
        .put(ticket["upload_url"].as_str().unwrap())
        .body(bytes);
    for (name, value) in ticket["headers"].as_object().unwrap() {
        put = put.header(name.as_str(), value.as_str().unwrap());
    }
    let response = put.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "upload failed: {}",
        response.status()
    );
}

/// The photo an upload ticket names, as Ann's (the default person of [`Rest`]).
fn photo_of(ticket: &Value) -> PhotoRef {
    let photo = PhotoRef::of_upload_key(ticket["key"].as_str().unwrap()).expect("an owned key");
    assert_eq!(photo.id, ticket["id"].as_str().unwrap());
    photo
}

impl Pipeline {
    /// An upload ticket from the presigner.
    async fn ticket(&self, filename: &str, content_type: &str, size: usize) -> Value {
        self.ticket_as(&ann(), filename, content_type, size).await
    }

    async fn ticket_as(
        &self,
        person: &Person,
        filename: &str,
        content_type: &str,
        size: usize,
    ) -> Value {
        let request = Rest::post("/uploads")
            .as_person(person)
            .json(json!({"filename": filename, "content_type": content_type, "size": size}));
        let (status, ticket) = parts(&self.presigner.handle(request.request()).await);
        assert_eq!(status, 201, "{ticket}");
        ticket
    }

    /// Asks the presigner for a ticket and uploads `bytes` with exactly what it says.
    async fn upload(&self, filename: &str, content_type: &str, bytes: Vec<u8>) -> Value {
        self.upload_as(&ann(), filename, content_type, bytes).await
    }

    async fn upload_as(
        &self,
        person: &Person,
        filename: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Value {
        let ticket = self
            .ticket_as(person, filename, content_type, bytes.len())
            .await;
        put(&ticket, bytes).await;
        ticket
    }

    /// Receives what S3 has put on the queue (S3 test events included) as one Lambda event.
    async fn receive(&self, at_least: usize) -> aws_lambda_events::event::sqs::SqsEvent {
        let sqs = aws_sdk_sqs::Client::new(&self.stack.sdk);
        let mut messages = Vec::new();
        for _ in 0..50 {
            let out = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap();
            messages.extend(out.messages.unwrap_or_default());
            let uploads = messages
                .iter()
                .filter(|m| {
                    m.body
                        .as_deref()
                        .is_some_and(|b| b.contains("ObjectCreated"))
                })
                .count();
            if uploads >= at_least {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        queues::to_lambda_event(&messages, &self.queue_arn)
    }

    async fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.object_in(&self.thumbnails, key).await
    }

    async fn object_in(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = aws_sdk_s3::Client::new(&self.stack.sdk)
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.unwrap().into_bytes().to_vec())
    }

    /// What the presigner answers `request` made as `person`.
    async fn call(&self, person: &Person, request: Rest) -> (u16, Value) {
        parts(
            &self
                .presigner
                .handle(request.as_person(person).request())
                .await,
        )
    }

    async fn notices(&self) -> Vec<ThumbnailNotice> {
        drain(&self.stack, &self.notices)
            .await
            .iter()
            .map(|body| serde_json::from_str(body).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn upload_through_presigned_url_becomes_a_thumbnail_with_a_notice_and_a_link() {
    let p = pipeline().await;
    let ticket = p
        .upload(
            "Holiday photo (1).jpg",
            "image/jpeg",
            samples::jpeg(1600, 1200),
        )
        .await;
    let key = ticket["key"].as_str().unwrap();
    let photo = photo_of(&ticket);
    assert_eq!(
        key,
        format!("uploads/{}/{}/Holiday_photo_1.jpg", ann().sub, photo.id),
        "keyed by its owner"
    );

    let event = p.receive(1).await;
    let response = p.thumbnailer.handle(event).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );

    let id = &photo.id;
    let jpeg = p
        .object(&photo.thumbnail_key())
        .await
        .expect("thumbnail written");
    assert_eq!(samples::decode(&jpeg).dimensions(), (200, 150));

    let notices = p.notices().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].source_key, key);
    assert_eq!((notices[0].width, notices[0].height), (200, 150));
    assert!(
        notices[0].url.ends_with(&format!("/thumbnails/{id}")),
        "{}",
        notices[0].url
    );

    // The stable link redirects to a fresh presigned GET that serves the thumbnail.
    let link = || Rest::get(&format!("/thumbnails/{id}")).resource("/thumbnails/{id}");
    let redirect = p.presigner.handle(link().request()).await;
    assert_eq!(redirect.status(), 302);
    assert_eq!(redirect.headers()["cache-control"], "no-store");
    let location = redirect.headers()["location"].to_str().unwrap();
    let served = reqwest::get(location).await.unwrap();
    assert!(served.status().is_success());
    assert_eq!(served.bytes().await.unwrap().to_vec(), jpeg);
    // For the owner only: anyone else's answer is a missing photo's.
    let bob = Person::new("Bob", "bob@example.com");
    assert_error(
        &p.presigner.handle(link().as_person(&bob).request()).await,
        404,
        "not_found",
    );
    assert_error(
        &p.presigner.handle(link().anonymous().request()).await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn presigned_uploads_sign_type_and_length_and_expire() {
    let p = pipeline().await;
    let request = Rest::post("/uploads")
        .json(json!({"filename": "a.png", "content_type": "image/png", "size": 1234}));
    let (status, ticket) = parts(&p.presigner.handle(request.request()).await);
    assert_eq!(status, 201);
    assert_eq!(ticket["method"], "PUT");
    assert_eq!(ticket["headers"]["content-type"], "image/png");
    assert_eq!(ticket["headers"]["content-length"], "1234");
    let url = reqwest::Url::parse(ticket["upload_url"].as_str().unwrap()).unwrap();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    let signed: Vec<&str> = query["X-Amz-SignedHeaders"].split(';').collect();
    assert!(
        signed.contains(&"content-type") && signed.contains(&"content-length"),
        "{signed:?}"
    );
    assert_eq!(query["X-Amz-Expires"], "300");
    let expires = shared::timestamp::parse(ticket["expires_at"].as_str().unwrap()).unwrap();
    let remaining = expires - time::OffsetDateTime::now_utc();
    assert!(
        remaining > time::Duration::seconds(290) && remaining <= time::Duration::seconds(300),
        "{remaining}"
    );
}

/// S3 refuses a PUT that leaves out a header the URL signed (SignatureDoesNotMatch), so the
/// ticket's `headers` are a contract: here each one, left out in turn, is refused (by the IAM
/// gate, since moto checks no presigned signature), and all of them together are accepted.
#[tokio::test]
async fn a_put_without_every_signed_header_is_refused() {
    let p = pipeline().await;
    let body = samples::jpeg(64, 48);
    let ticket = p.ticket("a.jpg", "image/jpeg", body.len()).await;
    let headers = ticket["headers"].as_object().unwrap();
    assert!(
        headers.contains_key("x-amz-meta-correlation-id"),
        "{ticket}"
    );
    let url = ticket["upload_url"].as_str().unwrap();
    let put = |skip: Option<&str>| {
        let mut put = reqwest::Client::new().put(url).body(body.clone());
        for (name, value) in headers {
            if Some(name.as_str()) != skip {
                put = put.header(name, value.as_str().unwrap());
            }
        }
        put.send()
    };
    for name in ["content-type", "x-amz-meta-correlation-id"] {
        let refused = put(Some(name)).await.unwrap();
        assert_eq!(refused.status(), 403, "without {name}");
        assert!(
            refused
                .text()
                .await
                .unwrap()
                .contains("<Code>SignatureDoesNotMatch</Code>"),
            "without {name}"
        );
    }
    assert_eq!(put(None).await.unwrap().status(), 200);
}

/// The uploads bucket's CorsConfiguration, applied as S3 applies it (moto would answer any
/// origin): a page may PUT with exactly the ticket's headers, nothing else; the thumbnails
/// bucket has no CORS at all.
#[tokio::test]
async fn the_uploads_bucket_answers_browsers_by_its_cors_rules() {
    let p = pipeline().await;
    let body = samples::jpeg(64, 48);
    let ticket = p.ticket("a.jpg", "image/jpeg", body.len()).await;
    let url = ticket["upload_url"].as_str().unwrap();
    let client = reqwest::Client::new();
    let preflight = |url: &str, method: &str, headers: &str| {
        client
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", "https://photos.example")
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers)
            .send()
    };
    let allowed = preflight(url, "PUT", "content-type,x-amz-meta-correlation-id")
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "*");
    assert_eq!(allowed.headers()["access-control-max-age"], "3000");
    for (method, headers) in [("PUT", "content-type,x-evil"), ("DELETE", "content-type")] {
        let refused = preflight(url, method, headers).await.unwrap();
        assert_eq!(refused.status(), 403, "{method} {headers}");
        assert!(
            refused
                .text()
                .await
                .unwrap()
                .contains("This CORS request is not allowed")
        );
    }
    let thumbnails = format!(
        "{}/{}/thumbnails/x.jpg",
        url.split('/').take(3).collect::<Vec<_>>().join("/"),
        p.thumbnails
    );
    let no_cors = preflight(&thumbnails, "GET", "").await.unwrap();
    assert_eq!(no_cors.status(), 403);
    assert!(
        no_cors
            .text()
            .await
            .unwrap()
            .contains("CORS is not enabled for this bucket")
    );

    // The PUT itself answers the page's origin.
    let mut put = client
        .put(url)
        .header("origin", "https://photos.example")
        .body(body);
    for (name, value) in ticket["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    let put = put.send().await.unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(put.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn presigner_rejects_bad_requests() {
    let p = pipeline().await;
    let cases: Vec<(Rest, u16, &str)> = vec![
        (Rest::post("/uploads").json(json!({"filename": "a.svg", "content_type": "image/svg+xml", "size": 10})), 400, "validation_error"),
        (Rest::post("/uploads").json(json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": 0})), 400, "validation_error"),
        (Rest::post("/uploads").json(json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": 20 * 1024 * 1024 + 1})), 400, "validation_error"),
        (Rest::post("/uploads").json(json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": -1})), 400, "validation_error"),
        (Rest::post("/uploads").json(json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": "10"})), 400, "validation_error"),
        (Rest::post("/uploads").json(json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "key": "mine"})), 400, "validation_error"),
        (Rest::post("/uploads").json(json!({"content_type": "image/jpeg", "size": 10})), 400, "validation_error"),
        (Rest::post("/uploads").raw_body("{"), 400, "malformed_json"),
        (Rest::get("/uploads"), 405, "method_not_allowed"),
        (Rest::get("/thumbnails/not-an-id").resource("/thumbnails/{id}"), 400, "validation_error"),
        (Rest::get(&format!("/thumbnails/{}", uuid::Uuid::new_v4())).resource("/thumbnails/{id}"), 404, "not_found"),
        (Rest::get("/photos").query("limit", "0"), 400, "validation_error"),
        (Rest::get("/photos").query("limit", "101"), 400, "validation_error"),
        (Rest::get("/photos").query("cursor", "not-a-cursor"), 400, "validation_error"),
        (Rest::get("/photos").query("owner", "someone"), 400, "validation_error"),
        (Rest::put("/photos").json(json!({})), 405, "method_not_allowed"),
        (Rest::get("/photos/not-an-id").resource("/photos/{id}"), 400, "validation_error"),
        (Rest::delete("/photos/12345").resource("/photos/{id}"), 400, "validation_error"),
        (Rest::post("/photos/0d6c2a4e-1f3b-4c5d-8e9f-a0b1c2d3e4f5").resource("/photos/{id}"), 405, "method_not_allowed"),
        (Rest::get("/photos").anonymous(), 401, "unauthorized"),
        (Rest::post("/uploads").anonymous().json(json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": 10})), 401, "unauthorized"),
        (Rest::get("/elsewhere"), 404, "route_not_found"),
    ];
    for (request, status, code) in cases {
        assert_error(&p.presigner.handle(request.request()).await, status, code);
    }
}

/// Two people, Ann and Bob: each album holds its owner's photos only, newest first and paged;
/// Bob on Ann's photo answers as for a missing one and leaves it as it was.
#[tokio::test]
async fn each_persons_album_is_theirs_alone() {
    let p = pipeline().await;
    let (ann, bob) = (
        Person::new("Ann", "ann@example.com"),
        Person::new("Bob", "bob@example.com"),
    );
    let mut anns = Vec::new();
    for name in ["first.jpg", "second.jpg", "third.jpg"] {
        anns.push(p.ticket_as(&ann, name, "image/jpeg", 10).await["id"].clone());
    }
    let bobs = p.ticket_as(&bob, "bob.jpg", "image/jpeg", 10).await["id"].clone();

    // Newest first, two to a page, and the cursor is Ann's alone.
    let (status, first) = p.call(&ann, Rest::get("/photos").query("limit", "2")).await;
    assert_eq!(status, 200, "{first}");
    let ids = |page: &Value| -> Vec<Value> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].clone())
            .collect()
    };
    assert_eq!(ids(&first), [anns[2].clone(), anns[1].clone()]);
    assert_eq!(first["items"][0]["filename"], "third.jpg");
    assert_eq!(first["items"][0]["state"], "pending");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (_, second) = p
        .call(
            &ann,
            Rest::get("/photos")
                .query("limit", "2")
                .query("cursor", cursor),
        )
        .await;
    assert_eq!(ids(&second), [anns[0].clone()]);
    let (status, stolen) = p
        .call(&bob, Rest::get("/photos").query("cursor", cursor))
        .await;
    assert_eq!(status, 400, "Ann's cursor in Bob's listing: {stolen}");
    // A cursor made for Bob's listing that starts inside Ann's partition: refused as well.
    let forged = shared::cursor::encode(
        &format!("photos/{}", bob.sub),
        &std::collections::HashMap::from([
            (
                "owner".to_string(),
                aws_sdk_dynamodb::types::AttributeValue::S(ann.sub.clone()),
            ),
            (
                "id".to_string(),
                aws_sdk_dynamodb::types::AttributeValue::S(anns[1].as_str().unwrap().into()),
            ),
        ]),
    )
    .unwrap();
    let (status, body) = p
        .call(&bob, Rest::get("/photos").query("cursor", &forged))
        .await;
    assert_eq!(status, 400, "a forged cursor: {body}");
    let (_, bobs_album) = p.call(&bob, Rest::get("/photos")).await;
    assert_eq!(ids(&bobs_album), [bobs]);

    // Every route that takes an id: Bob on Ann's photo is Bob on a missing one.
    let target = anns[0].as_str().unwrap();
    for request in [
        Rest::get(&format!("/photos/{target}")).resource("/photos/{id}"),
        Rest::delete(&format!("/photos/{target}")).resource("/photos/{id}"),
        Rest::get(&format!("/thumbnails/{target}")).resource("/thumbnails/{id}"),
    ] {
        let (status, body) = p.call(&bob, request).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("not_found")),
            "{body}"
        );
    }
    let (status, mine) = p
        .call(
            &ann,
            Rest::get(&format!("/photos/{target}")).resource("/photos/{id}"),
        )
        .await;
    assert_eq!(
        (status, &mine["filename"]),
        (200, &json!("first.jpg")),
        "Ann's is unchanged"
    );
}

/// `DELETE /photos/{id}`: the original, the thumbnail and the album entry all go; a photo
/// deleted before the thumbnailer reaches it leaves nothing behind either, and no notice.
#[tokio::test]
async fn a_deleted_photo_leaves_nothing_behind() {
    let p = pipeline().await;
    let kept = p
        .upload("kept.jpg", "image/jpeg", samples::jpeg(400, 300))
        .await;
    let event = p.receive(1).await;
    assert!(
        p.thumbnailer
            .handle(event)
            .await
            .batch_item_failures
            .is_empty()
    );
    let photo = photo_of(&kept);
    let one = || Rest::get(&format!("/photos/{}", photo.id)).resource("/photos/{id}");
    let (status, ready) = p.call(&ann(), one()).await;
    assert_eq!((status, &ready["state"]), (200, &json!("ready")), "{ready}");
    assert_eq!(
        (&ready["width"], &ready["height"]),
        (&json!(200), &json!(150))
    );
    let served = reqwest::get(ready["thumbnail_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(served.status(), 200, "the album's thumbnail URL serves it");
    let _ = p.notices().await;

    let delete = Rest::delete(&format!("/photos/{}", photo.id)).resource("/photos/{id}");
    assert_eq!(p.call(&ann(), delete.clone()).await.0, 204);
    assert_eq!(p.call(&ann(), one()).await.0, 404);
    assert_eq!(
        p.call(&ann(), delete).await.0,
        404,
        "deleting again finds nothing"
    );
    assert!(
        p.object(&photo.thumbnail_key()).await.is_none(),
        "thumbnail gone"
    );
    let original = kept["key"].as_str().unwrap();
    assert!(
        p.object_in(&p.uploads, original).await.is_none(),
        "original gone"
    );

    // Uploaded, deleted, then thumbnailed: the thumbnailer finds no album entry and discards.
    let late = p
        .upload("late.jpg", "image/jpeg", samples::jpeg(400, 300))
        .await;
    let photo = photo_of(&late);
    let delete = Rest::delete(&format!("/photos/{}", photo.id)).resource("/photos/{id}");
    assert_eq!(p.call(&ann(), delete).await.0, 204);
    // The delete removed the upload too, so its notice finds no object: put one back, as if the
    // PUT had landed after the delete.
    put(&late, samples::jpeg(400, 300)).await;
    let event = p.receive(2).await;
    assert!(
        p.thumbnailer
            .handle(event)
            .await
            .batch_item_failures
            .is_empty()
    );
    assert!(
        p.object(&photo.thumbnail_key()).await.is_none(),
        "no thumbnail made for it stays"
    );
    let original = late["key"].as_str().unwrap();
    assert!(
        p.object_in(&p.uploads, original).await.is_none(),
        "its upload is discarded"
    );
    assert!(
        p.notices().await.is_empty(),
        "nobody is told of a deleted photo"
    );
}

#[tokio::test]
async fn a_mixed_batch_thumbnails_the_good_and_records_the_bad() {
    let p = pipeline().await;
    let good = [
        p.upload("a.jpg", "image/jpeg", samples::progressive_jpeg(900, 600))
            .await,
        p.upload("b.png", "image/png", samples::png_with_alpha(300, 300))
            .await,
        p.upload("c.gif", "image/gif", samples::gif(100, 80)).await,
        p.upload("d.webp", "image/webp", samples::webp(640, 480))
            .await,
    ];
    let corrupt = p
        .upload(
            "broken.jpg",
            "image/jpeg",
            samples::jpeg(800, 600)[..3000].to_vec(),
        )
        .await;
    let text = p
        .upload("note.png", "image/png", b"this is not a picture".to_vec())
        .await;

    let event = p.receive(6).await;
    assert!(event.records.len() >= 6);
    let response = p.thumbnailer.handle(event).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "permanent failures are not retried: {:?}",
        response.batch_item_failures
    );

    let widths: Vec<u32> = {
        let mut out = Vec::new();
        for ticket in &good {
            let jpeg = p
                .object(&photo_of(ticket).thumbnail_key())
                .await
                .expect("thumbnail of a good upload");
            out.push(samples::decode(&jpeg).width());
        }
        out
    };
    assert_eq!(
        widths,
        [200, 200, 100, 200],
        "the 100 px GIF keeps its width"
    );
    for ticket in [&corrupt, &text] {
        let photo = photo_of(ticket);
        assert!(p.object(&photo.thumbnail_key()).await.is_none());
        let marker: Value = serde_json::from_slice(
            &p.object(&photo.failure_marker_key())
                .await
                .expect("failure marker"),
        )
        .unwrap();
        assert_eq!(marker["source_key"], ticket["key"]);
        assert!(!marker["reason"].as_str().unwrap().is_empty());
        // The person's album says it failed, and why, in words meant for them.
        let (status, view) = p
            .call(
                &ann(),
                Rest::get(&format!("/photos/{}", photo.id)).resource("/photos/{id}"),
            )
            .await;
        assert_eq!((status, &view["state"]), (200, &json!("failed")), "{view}");
        assert!(view["reason"].as_str().unwrap().ends_with('.'), "{view}");
        assert!(view.get("thumbnail_url").is_none(), "{view}");
    }
    assert_eq!(p.notices().await.len(), 4, "one notice per thumbnail");
}

#[tokio::test]
async fn transient_failures_are_reported_per_message_and_end_in_the_dlq() {
    let mut p = pipeline().await;
    let env = p.stack.function_env("ThumbnailerFunction").await.unwrap();
    let mut broken_env = env.clone();
    broken_env.insert(
        "THUMBNAIL_BUCKET".into(),
        format!("{}-missing-bucket", p.stack.prefix),
    );
    let broken = thumbnailer::Thumbnailer::from_env(
        &p.stack.function_sdk("ThumbnailerFunction").await.unwrap(),
        &broken_env as &dyn EnvSource,
    )
    .unwrap();
    p.upload("x.jpg", "image/jpeg", samples::jpeg(400, 300))
        .await;

    let sqs = aws_sdk_sqs::Client::new(&p.stack.sdk);
    let dlq_url = p.stack.reference("PhotoUploadDLQ").unwrap();
    // Lambda's poller: receive, invoke, delete what succeeded, leave failures to reappear.
    for receive in 1..=3 {
        let event = p.receive(1).await;
        let upload: Vec<_> = event
            .records
            .iter()
            .filter(|r| {
                r.body
                    .as_deref()
                    .is_some_and(|b| b.contains("ObjectCreated"))
            })
            .collect();
        assert_eq!(
            upload.len(),
            1,
            "receive {receive}: the upload message is back"
        );
        let response = broken.handle(event.clone()).await;
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(
            failed,
            [upload[0].message_id.as_deref().unwrap()],
            "only the upload is retried, not the S3 test event"
        );
        for record in &event.records {
            let handle = record.receipt_handle.clone().unwrap();
            if failed.contains(&record.message_id.as_deref().unwrap()) {
                sqs.change_message_visibility()
                    .queue_url(&p.queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            } else {
                sqs.delete_message()
                    .queue_url(&p.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    // maxReceiveCount is 3 (template): the next receive moves it to the DLQ.
    let out = sqs
        .receive_message()
        .queue_url(&p.queue_url)
        .send()
        .await
        .unwrap();
    assert!(out.messages.unwrap_or_default().is_empty());
    let dead = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body.as_deref().unwrap().contains("ObjectCreated"));
}

#[tokio::test]
async fn fixtures_match_the_functions() {
    let p = pipeline().await;
    let ticket = p
        .presigner
        .handle(lambda_http::request::from_str(&fixture("presigner/create-upload.json")).unwrap())
        .await;
    assert_eq!(ticket.status(), 201);
    for name in ["thumbnail-link", "get-photo", "delete-photo"] {
        let missing = p
            .presigner
            .handle(
                lambda_http::request::from_str(&fixture(&format!("presigner/{name}.json")))
                    .unwrap(),
            )
            .await;
        assert_error(&missing, 404, "not_found");
    }
    let album = p
        .presigner
        .handle(lambda_http::request::from_str(&fixture("presigner/list-photos.json")).unwrap())
        .await;
    // The same person's: the upload ticket above filed one pending photo in their album.
    let (status, album) = parts(&album);
    assert_eq!(status, 200, "{album}");
    assert_eq!(album["items"][0]["id"], parts(&ticket).1["id"], "{album}");
    assert_eq!(album["items"][0]["state"], "pending", "{album}");
    assert_eq!(album["items"].as_array().unwrap().len(), 1, "{album}");
    // Point the fixture at this test's bucket; the object it names does not exist, so the
    // message is consumed without a retry (and the S3 test event is skipped).
    let bucket = p.stack.reference("PhotoUploadsBucket").unwrap();
    let text = fixture("thumbnailer/s3-upload.json").replace(
        "serverless-rust-kit-uploads-123456789012-eu-west-1",
        &bucket,
    );
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&text).unwrap();
    assert!(
        p.thumbnailer
            .handle(event)
            .await
            .batch_item_failures
            .is_empty()
    );
}
