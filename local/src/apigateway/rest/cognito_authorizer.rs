//! A REST API's Cognito user pool authorizer, as API Gateway runs it
//! (docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-integrate-with-cognito.html,
//! docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html,
//! and `identityValidationExpression` in the API Gateway API reference's `Authorizer`): the
//! token in the authorizer's header (the raw JWT, as the guide sends it; a `Bearer ` prefix is
//! refused here, as the stricter reading, since the guide promises nothing for it) must be an
//! RS256 JWT signed by a key of one of the authorizer's pools, issued by that pool
//! (`https://cognito-idp.{region}.amazonaws.com/{pool}`), not expired, an ID token (a method
//! with no OAuth scopes takes ID tokens), and, when the authorizer has a validation
//! expression, with an `aud` (the app client) matching it. Anything else is the `UNAUTHORIZED`
//! gateway response; an expired token says so. The integration receives the claims in
//! `requestContext.authorizer.claims`, every value a string, as API Gateway passes them (dates
//! as `Sun Dec 17 07:28:12 UTC 2017`, lists joined by commas).
//!
//! The keys come from the emulator, which signs every pool's tokens with one key that ships
//! inside moto: only this local gateway may trust them.

use std::collections::HashMap;
use std::sync::RwLock;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};

/// A `cognito_user_pools` security scheme of the API's OpenAPI body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoAuthorizer {
    /// The scheme's name (the template's authorizer name).
    pub name: String,
    /// The request header that carries the token.
    pub header: String,
    /// `https://cognito-idp.{region}.amazonaws.com/{pool}` of each of `providerARNs`.
    pub issuers: Vec<String>,
    /// `identityValidationExpression`: a regular expression the token's `aud` must match.
    pub audience: Option<String>,
}

/// Why a request was not authorised: both are 401 `UNAUTHORIZED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unauthorized,
    Expired,
}

impl Refusal {
    /// The message of API Gateway's answer.
    pub fn message(self) -> &'static str {
        match self {
            Self::Unauthorized => "Unauthorized",
            Self::Expired => "The incoming token has expired",
        }
    }
}

impl CognitoAuthorizer {
    /// From a security scheme of the body (resolved), if it is a Cognito user pool authorizer.
    pub fn of(name: &str, scheme: &Value) -> Option<Self> {
        if scheme["x-amazon-apigateway-authtype"] != "cognito_user_pools" {
            return None;
        }
        let authorizer = &scheme["x-amazon-apigateway-authorizer"];
        let arns = authorizer["providerARNs"].as_array()?;
        let issuers = arns
            .iter()
            .filter_map(|arn| issuer_of(arn.as_str()?))
            .collect();
        Some(Self {
            name: name.to_string(),
            header: scheme["name"]
                .as_str()
                .unwrap_or("Authorization")
                .to_string(),
            issuers,
            audience: authorizer["identityValidationExpression"]
                .as_str()
                .map(str::to_string),
        })
    }

    /// The claims of the token in `headers`, or why not; `keys` finds a pool's key set.
    pub async fn authorize(
        &self,
        headers: &http::HeaderMap,
        keys: &KeySets,
    ) -> Result<Map<String, Value>, Refusal> {
        let token = headers
            .get(self.header.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(Refusal::Unauthorized)?;
        let header = decode_header(token).map_err(|_| Refusal::Unauthorized)?;
        let kid = header.kid.ok_or(Refusal::Unauthorized)?;
        let issuer = unverified_issuer(token).ok_or(Refusal::Unauthorized)?;
        if header.alg != Algorithm::RS256 || !self.issuers.contains(&issuer) {
            return Err(Refusal::Unauthorized);
        }
        let pool = issuer.rsplit('/').next().unwrap_or_default(); // an issuer ends in its pool
        let key = keys.key(pool, &kid).await.ok_or(Refusal::Unauthorized)?;
        let claims = self.verify(token, &key, &issuer)?;
        Ok(as_strings(&claims))
    }

    /// The token's claims once its signature, issuer, expiry, use and audience hold.
    fn verify(&self, token: &str, key: &DecodingKey, issuer: &str) -> Result<Value, Refusal> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.leeway = 0;
        // The audience is the validation expression's business (below), as in API Gateway.
        validation.validate_aud = false;
        let claims = decode::<Value>(token, key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Refusal::Expired,
                _ => Refusal::Unauthorized,
            })?
            .claims;
        if claims["token_use"] != "id" {
            return Err(Refusal::Unauthorized);
        }
        if let Some(expression) = &self.audience {
            let aud = claims["aud"].as_str().ok_or(Refusal::Unauthorized)?;
            let whole = regex_lite::Regex::new(&format!("^(?:{expression})$"))
                .map_err(|_| Refusal::Unauthorized)?;
            if !whole.is_match(aud) {
                return Err(Refusal::Unauthorized);
            }
        }
        Ok(claims)
    }
}

/// `arn:aws:cognito-idp:{region}:{account}:userpool/{pool}` -> the pool's token issuer.
fn issuer_of(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "cognito-idp", region, _, resource] => {
            let pool = resource.strip_prefix("userpool/")?;
            Some(format!("https://cognito-idp.{region}.amazonaws.com/{pool}"))
        }
        _ => None,
    }
}

/// The `iss` a token claims, read before it is verified (to pick the pool's keys).
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["iss"].as_str().map(str::to_string)
}

/// Claims as API Gateway hands them to a proxy integration: every value a string.
pub fn as_strings(claims: &Value) -> Map<String, Value> {
    let date = |seconds: i64| {
        let format = time::macros::format_description!(
            "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] UTC [year]"
        );
        time::OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .and_then(|t| t.format(&format).ok())
    };
    let mut strings = Map::new();
    for (name, value) in claims.as_object().into_iter().flatten() {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) if matches!(name.as_str(), "exp" | "iat") => {
                n.as_i64().and_then(date).unwrap_or_else(|| n.to_string())
            }
            Value::Array(list) => {
                let texts: Vec<String> = list
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect();
                texts.join(",")
            }
            other => other.to_string(),
        };
        strings.insert(name.clone(), Value::String(text));
    }
    strings
}

/// Each pool's published key set, fetched once (again for a key it did not have).
#[derive(Debug)]
pub struct KeySets {
    /// The AWS endpoint (the gate), which publishes `/{pool}/.well-known/jwks.json`.
    endpoint: String,
    http: reqwest::Client,
    sets: RwLock<HashMap<String, JwkSet>>,
}

impl KeySets {
    pub fn new(endpoint: &str, http: reqwest::Client) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            http,
            sets: RwLock::default(),
        }
    }

    /// `pool`'s key `kid`, if the pool publishes it.
    pub async fn key(&self, pool: &str, kid: &str) -> Option<DecodingKey> {
        let cached = self.sets.read().expect("key sets").get(pool).cloned();
        let set = match cached.filter(|set| set.find(kid).is_some()) {
            Some(set) => set,
            None => {
                let url = format!("{}/{pool}/.well-known/jwks.json", self.endpoint);
                let set: JwkSet = self.http.get(url).send().await.ok()?.json().await.ok()?;
                let mut sets = self.sets.write().expect("key sets");
                sets.insert(pool.to_string(), set.clone());
                set
            }
        };
        DecodingKey::from_jwk(set.find(kid)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use jsonwebtoken::{EncodingKey, Header, encode};

    const POOL: &str = "us-east-1_abc";
    const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc";
    /// The public half of local/testdata/rs256-test-key.pem (a key for these tests only).
    const TEST_KEY_N: &str = "6MvC8SmavyS8sUC1N8ZXSI_KwKNN9zYMJgltAJF80MpzBKR3EhZCqJHE5GiuGbroemyM85c3UUfpegJptKvCjiFIV3R_HK7MOWk-DR5NQa4cmgQ7CqwogcVWclQT_Hv-RsYdR-UOsqQe5cnzzFErac2ebIGmKEJbiGzoCZIubfHagSTNI-B0F9oeyMdZo3avjkH-wE_2yR5J-tEJHAD_bVuNr2z19nswMygLUmz2rZpA9dnu-t9FT5CDzdtUMwDUoNbS1a9Oh2PyrRucaaeu0hB6OhFZu5XMxodPabr5X6GFozyg7nAIwL4RvRGfVDiUTAAgBSW_zaXyd9AWRdygNw";

    /// A stand-in for the emulator publishing the test key as `POOL`'s key set.
    async fn key_sets() -> KeySets {
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "test", "alg": "RS256", "use": "sig",
            "n": TEST_KEY_N, "e": "AQAB"}]});
        let app = axum::Router::new().route(
            &format!("/{POOL}/.well-known/jwks.json"),
            axum::routing::get(move || async move { axum::Json(jwks) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        KeySets::new(&url, reqwest::Client::new())
    }

    fn authorizer() -> CognitoAuthorizer {
        CognitoAuthorizer {
            name: "People".into(),
            header: "Authorization".into(),
            issuers: vec![ISSUER.into()],
            audience: Some("^client1$".into()),
        }
    }

    fn id_claims() -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        json!({"sub": "u1", "iss": ISSUER, "aud": "client1", "token_use": "id",
            "exp": now + 3600, "iat": now, "email": "ann@example.com"})
    }

    fn signed(claims: &Value, kid: &str) -> String {
        let pem = include_bytes!("../../../testdata/rs256-test-key.pem");
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        encode(&header, claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
    }

    fn bearing(token: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", token.parse().unwrap());
        headers
    }

    #[tokio::test]
    async fn only_a_valid_id_token_of_the_pool_and_client_passes() {
        let (keys, authorizer) = (key_sets().await, authorizer());
        let check = async |token: &str| authorizer.authorize(&bearing(token), &keys).await;
        let claims = check(&signed(&id_claims(), "test")).await.unwrap();
        assert_eq!(claims["email"], "ann@example.com");
        let bearer = format!("Bearer {}", signed(&id_claims(), "test"));
        assert_eq!(check(&bearer).await, Err(Refusal::Unauthorized));

        let with = |name: &str, value: Value| {
            let mut claims = id_claims();
            claims[name] = value;
            signed(&claims, "test")
        };
        let past = time::OffsetDateTime::now_utc().unix_timestamp() - 1;
        assert_eq!(
            check(&with("exp", json!(past))).await,
            Err(Refusal::Expired)
        );
        for (case, token) in [
            ("another client", with("aud", json!("client2"))),
            ("another pool", with("iss", json!(format!("{ISSUER}x")))),
            ("an access token", with("token_use", json!("access"))),
            ("an unknown key", signed(&id_claims(), "other")),
        ] {
            assert_eq!(check(&token).await, Err(Refusal::Unauthorized), "{case}");
        }
        let token = signed(&id_claims(), "test");
        let parts: Vec<&str> = token.split('.').collect();
        let forged = {
            use base64::Engine;
            let mut claims = id_claims();
            claims["sub"] = json!("u2");
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
        };
        let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
        let unsigned = {
            use base64::Engine;
            let none = r#"{"alg":"none","typ":"JWT","kid":"test"}"#;
            let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(none);
            format!("{header}.{}.", parts[1])
        };
        for (case, token) in [
            ("tampered", tampered),
            ("alg none", unsigned),
            ("junk", "x".into()),
        ] {
            assert_eq!(check(&token).await, Err(Refusal::Unauthorized), "{case}");
        }
        let none = authorizer.authorize(&http::HeaderMap::new(), &keys).await;
        assert_eq!(none, Err(Refusal::Unauthorized));
    }

    #[test]
    fn a_scheme_names_its_pools_issuers_header_and_audience() {
        let scheme = json!({
            "type": "apiKey", "name": "Authorization", "in": "header",
            "x-amazon-apigateway-authtype": "cognito_user_pools",
            "x-amazon-apigateway-authorizer": {
                "type": "cognito_user_pools",
                "providerARNs": ["arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc"],
                "identityValidationExpression": "^client1$"
            }
        });
        let authorizer = CognitoAuthorizer::of("People", &scheme).unwrap();
        assert_eq!(
            authorizer.issuers,
            ["https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"]
        );
        assert_eq!(authorizer.header, "Authorization");
        assert_eq!(authorizer.audience.as_deref(), Some("^client1$"));
        let api_key = json!({"type": "apiKey", "name": "x-api-key", "in": "header"});
        assert!(CognitoAuthorizer::of("api_key", &api_key).is_none());
    }

    #[test]
    fn claims_reach_the_function_as_strings() {
        let claims = as_strings(&json!({
            "sub": "u1", "email_verified": true, "exp": 1_513_495_692, "iat": 1_513_492_092,
            "auth_time": 1_513_492_092, "cognito:groups": ["staff", "admins"], "name": "Zoë"
        }));
        assert_eq!(claims["exp"], "Sun Dec 17 07:28:12 UTC 2017");
        assert_eq!(claims["iat"], "Sun Dec 17 06:28:12 UTC 2017");
        assert_eq!(claims["auth_time"], "1513492092");
        assert_eq!(claims["email_verified"], "true");
        assert_eq!(claims["cognito:groups"], "staff,admins");
        assert_eq!(claims["name"], "Zoë");
    }
}
