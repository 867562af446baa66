//! The tour `make dev` prints: one shell script per run, generated here and nowhere else, which
//! the end-to-end tests execute exactly as printed (`tour_runs_as_printed`), so it cannot drift
//! from what the APIs accept. It needs `curl` and `python3` (the README's prerequisites) and a
//! JPEG named `photo.jpg` in the current folder.

/// The WebSocket frame the tour tells a chat client to send (the route takes `text` only; the
/// sender is the connection's name).
pub const CHAT_FRAME: &str = r#"{"action":"sendmessage","text":"hi from the socket"}"#;
pub const CHAT_ROOM: &str = "lobby";

/// The URL a chat client connects to with a ticket (`POST /rooms/{room}/tickets`; tickets are
/// URL-safe).
pub fn chat_url(websocket: &str, ticket: &str) -> String {
    format!("{websocket}?ticket={ticket}")
}

/// Where a person signs in: the user pools API's endpoint (the gate, locally) and the web app's
/// client of the pool.
pub struct SignIn<'a> {
    pub endpoint: &'a str,
    pub client_id: &'a str,
}

/// The tour as a bash script (comments say what each step shows).
pub fn script(
    web: &str,
    url: &str,
    key: &str,
    websocket: &str,
    sign_in: &SignIn,
    now: time::OffsetDateTime,
) -> String {
    let starts_at = (now + time::Duration::days(7))
        .replace_time(time::macros::time!(10:00))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a UTC date has an RFC 3339 form");
    let json =
        |field: &str| format!("python3 -c 'import json,sys; print(json.load(sys.stdin){field})'");
    let curl =
        format!("curl -sS --fail-with-body -H 'x-api-key: {key}' -H \"authorization: $token\"");
    let (cognito, client) = (sign_in.endpoint, sign_in.client_id);
    let sign_up = format!(
        r#"{{\"ClientId\":\"{client}\",\"Username\":\"$email\",\"Password\":\"$password\",\"UserAttributes\":[{{\"Name\":\"name\",\"Value\":\"$1\"}}]}}"#
    );
    let post = format!("{curl} -H 'content-type: application/json'");
    let post_as_bob = post.replace("$token", "$bob_token");
    let curl_as_bob = curl.replace("$token", "$bob_token");
    let status_as_bob = format!(
        "curl -sS -o /dev/null -w '%{{http_code}}' -H 'x-api-key: {key}' -H \"authorization: $bob_token\""
    );
    let ann = chat_url(websocket, "$ann");
    let bob = chat_url(websocket, "$bob");
    let ticket_of = json(r#"["ticket"]"#);
    format!(
        r#"# Web app: {web}  (open it in a browser: Photos, Chat, Approvals, Items, Appointments; the
#    steps below do the same from a shell)

# 0. Ann and Bob sign up with the user pool (each code comes to the local mailbox), confirm and
#    sign in: every call below carries Ann's ID token (Authorization) beside the API key, and
#    Bob's where he acts.
cognito() {{ curl -sS --fail-with-body -H 'content-type: application/x-amz-json-1.1' -H "x-amz-target: AWSCognitoIdentityProviderService.$1" {cognito} -d "$2"; }}
sign_up() {{  # NAME -> a new person's ID token
  local email="${{1,,}}-$RANDOM@example.com" password='correct horse battery staple' code
  cognito SignUp "{sign_up}" >/dev/null
  code=$(curl -sS --fail-with-body "{url}/_local/mail?to=$email" | python3 -c 'import json,re,sys; print(re.search(r"\b\d{{6}}\b", json.load(sys.stdin)["messages"][-1]["body"])[0])')
  cognito ConfirmSignUp "{{\"ClientId\":\"{client}\",\"Username\":\"$email\",\"ConfirmationCode\":\"$code\"}}" >/dev/null
  cognito InitiateAuth "{{\"ClientId\":\"{client}\",\"AuthFlow\":\"USER_PASSWORD_AUTH\",\"AuthParameters\":{{\"USERNAME\":\"$email\",\"PASSWORD\":\"$password\"}}}}" | {id_token}
}}
token=$(sign_up Ann); bob_token=$(sign_up Bob); echo "signed in: Ann and Bob"
ann_email=$(python3 -c 'import base64,json,sys; p=sys.stdin.read().split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["email"])' <<<"$token")

# 1. Items: Ann creates one and lists hers. Bob's list is his own, and Ann's item answers him as
#    a missing one does (404).
item=$({post} -X POST {url}/items -d '{{"name":"Espresso machine","email":"ann@example.com"}}' | {id_of}); echo "created $item"
{curl} {url}/items; echo
echo "Bob's items: $({curl_as_bob} {url}/items); Bob reading Ann's item: $({status_as_bob} {url}/items/$item)"

# 2. Photos: an upload ticket for photo.jpg, the PUT it describes (with every header it signed),
#    then Ann's album entry once it is ready, and the 200 px thumbnail it links to.
ticket=$({post} -X POST {url}/uploads -d "{{\"filename\":\"photo.jpg\",\"content_type\":\"image/jpeg\",\"size\":$(wc -c < photo.jpg)}}")
mapfile -t signed < <({signed_headers} <<<"$ticket")
curl -sS --fail-with-body -X PUT "$({upload_url} <<<"$ticket")" "${{signed[@]}}" --data-binary @photo.jpg
photo=$({id_of} <<<"$ticket")
for _ in $(seq 30); do thumb=$({curl} {url}/photos/$photo | {thumbnail_url}) && [ -n "$thumb" ] && break; sleep 1; done
curl -sS --fail-with-body "$thumb" -o thumbnail.jpg; ls -l thumbnail.jpg; echo "Bob's photos: $({curl_as_bob} {url}/photos)"

# 3. Chat: a ticket each for Ann and Bob (under their own names; valid for a minute), two
#    WebSocket clients in one room with them (websocat, or npx wscat -c), then send this frame
#    from one:  {CHAT_FRAME}
ann=$({post} -X POST {url}/rooms/{CHAT_ROOM}/tickets -d '{{}}' | {ticket_of})
bob=$({post_as_bob} -X POST {url}/rooms/{CHAT_ROOM}/tickets -d '{{}}' | {ticket_of})
echo "websocat \"{ann}\""
echo "websocat \"{bob}\""
#    A REST post reaches the same room; the history has both.
{post} -X POST {url}/rooms/{CHAT_ROOM}/messages -d '{{"text":"hello from curl"}}'; echo
{curl} {url}/rooms/{CHAT_ROOM}/messages; echo

# 4. Approval: ask a manager; the email (in the local mailbox) names Ann and links to a page with
#    the buttons.
{post} -X POST {url}/approvals -d '{{"employeeName":"Ann","managerEmail":"boss@example.com"}}'; echo
sleep 2; curl -sS --fail-with-body '{url}/_local/mail?to=boss@example.com'; echo
{curl} {url}/approvals; echo  # Ann's requests, each with its outcome so far

# 5. Appointments: Ann's preferred method (for her own verified address), her booking, her list,
#    and the enriched message the pipe puts on the queue.
{post} -X PUT "{url}/contacts/$ann_email" -d '{{"preferredMethod":"sms"}}'; echo
{post} -X POST {url}/appointments -d '{{"patientName":"Ann","dentist":"Dr. Kim","startsAt":"{starts_at}"}}'; echo
{curl} {url}/appointments; echo
sleep 3; curl -sS --fail-with-body {url}/_local/queues/AppointmentQueue; echo

# 6. The business metrics the functions wrote (what CloudWatch extracts from their logs).
curl -sS --fail-with-body {url}/_local/metrics | python3 -c 'import json,sys; [print(m["metric"], m["dimensions"].get("Function", ""), m["sum"]) for m in json.load(sys.stdin)["metrics"]]'
"#,
        id_token = json(r#"["AuthenticationResult"]["IdToken"]"#),
        upload_url = json(r#"["upload_url"]"#),
        signed_headers = "python3 -c 'import json,sys; [print(f\"-H\\n{k}: {v}\") for k, v in json.load(sys.stdin)[\"headers\"].items()]'",
        id_of = json(r#"["id"]"#),
        thumbnail_url = json(r#".get("thumbnail_url", "")"#),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_names_the_gateway_key_and_a_future_booking() {
        let now = time::macros::datetime!(2026-12-01 21:00 UTC);
        let text = script(
            "http://127.0.0.1:3001/",
            "http://127.0.0.1:3000",
            "k",
            "ws://127.0.0.1:3000/_ws/Chat",
            &SignIn {
                endpoint: "http://127.0.0.1:5000",
                client_id: "c1",
            },
            now,
        );
        assert!(text.contains("# Web app: http://127.0.0.1:3001/"));
        assert!(text.contains("http://127.0.0.1:3000/items"));
        assert!(text.contains("x-api-key: k"));
        assert!(text.contains(r#"-H "authorization: $token""#));
        assert!(text.contains(r#"\"ClientId\":\"c1\""#));
        assert!(text.contains("AWSCognitoIdentityProviderService.$1\" http://127.0.0.1:5000 "));
        assert!(
            text.contains(r#""startsAt":"2026-12-08T10:00:00Z""#),
            "{text}"
        );
        assert!(text.contains("ws://127.0.0.1:3000/_ws/Chat?ticket=$ann"));
        assert!(text.contains("/rooms/lobby/tickets"));
        // Bob's ticket is his own: asked with his token.
        assert!(text.contains(r#"-H "authorization: $bob_token""#));
        // Bob is refused on Ann's item: the tour prints the status.
        assert!(text.contains("-w '%{http_code}'"), "{text}");
        assert!(text.contains("/items/$item)"), "{text}");
    }
}
