//! CloudFront in front of the web app
//! (docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/understanding-response-headers-policies.html):
//! `web/` served as CloudFront serves it: the files, `config.json` (what `make web-publish`
//! writes from a deployed stack's outputs, here pointing at the local gateway and emulator), and
//! the template's `AWS::CloudFront::ResponseHeadersPolicy` on every answer.
//! The CSP's AWS origins (`https://*.execute-api.{region}.amazonaws.com`, `wss://…`,
//! `https://*.s3.{region}.amazonaws.com`, `https://cognito-idp.{region}.amazonaws.com`) become
//! the local gateway's and the emulator's, so a
//! browser here runs under the deployed policy: a source the template forgot is refused locally
//! too.
//!
//! A small file server written here rather than tower-http's `ServeDir`: six static files, GET
//! and HEAD only, and the headers are the point; it saves compiling another HTTP stack.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use serde_json::Value;

use crate::cloudformation::template::{TemplateError, whole_number};
use crate::emulator::REGION;
use crate::workspace::project_root;

/// What the server needs: the folder, the generated config and the headers of the policy.
#[derive(Debug, Clone)]
pub struct WebApp {
    pub root: PathBuf,
    pub config: Value,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Where the local origins stand in for AWS's.
#[derive(Debug, Clone)]
pub struct LocalOrigins {
    /// `http://127.0.0.1:PORT`: the REST API (and the thumbnail route's redirects).
    pub gateway: String,
    /// `http://127.0.0.1:PORT`: S3 presigned uploads and downloads.
    pub emulator: String,
}

impl WebApp {
    /// `web/` with the security headers of the template's (resolved) response headers policy.
    pub fn new(
        policy: &Value,
        origins: &LocalOrigins,
        config: Value,
    ) -> Result<Self, TemplateError> {
        Ok(Self {
            root: project_root().join("web"),
            config,
            headers: security_headers(policy, origins)?,
        })
    }
}

/// The headers CloudFront adds for a `ResponseHeadersPolicyConfig.SecurityHeadersConfig`
/// (<https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-cloudfront-responseheaderspolicy-securityheadersconfig.html>).
/// A setting this does not know is an error: serving without it would be looser than AWS.
pub fn security_headers(
    policy: &Value,
    origins: &LocalOrigins,
) -> Result<Vec<(HeaderName, HeaderValue)>, TemplateError> {
    let config = &policy["ResponseHeadersPolicyConfig"];
    let unsupported =
        |what: &str| TemplateError::Unsupported(format!("web app: {what} is not served locally"));
    for key in ["CustomHeadersConfig", "CorsConfig", "RemoveHeadersConfig"] {
        if !config[key].is_null() {
            return Err(unsupported(key));
        }
    }
    let mut headers = Vec::new();
    let Some(security) = config["SecurityHeadersConfig"].as_object() else {
        return Ok(headers);
    };
    for (name, setting) in security {
        // Each setting's value is required (AWS::CloudFront::ResponseHeadersPolicy
        // SecurityHeadersConfig): a missing one is the template's error, not an empty header.
        let required = |field: &str| {
            setting[field].as_str().map(str::to_string).ok_or_else(|| {
                TemplateError::Unsupported(format!(
                    "web app: SecurityHeadersConfig.{name}.{field} is required"
                ))
            })
        };
        let (header, value) = match name.as_str() {
            "ContentSecurityPolicy" => (
                "content-security-policy",
                localize_csp(&required("ContentSecurityPolicy")?, origins),
            ),
            "ContentTypeOptions" => ("x-content-type-options", "nosniff".to_string()),
            "FrameOptions" => ("x-frame-options", required("FrameOption")?),
            "ReferrerPolicy" => ("referrer-policy", required("ReferrerPolicy")?),
            "StrictTransportSecurity" => {
                let max_age = whole_number(&setting["AccessControlMaxAgeSec"]);
                let max_age = max_age.ok_or_else(|| {
                    TemplateError::Unsupported(
                        "web app: StrictTransportSecurity.AccessControlMaxAgeSec is required"
                            .into(),
                    )
                })?;
                let mut value = format!("max-age={max_age}");
                if setting["IncludeSubdomains"].as_bool() == Some(true) {
                    value.push_str("; includeSubDomains");
                }
                if setting["Preload"].as_bool() == Some(true) {
                    value.push_str("; preload");
                }
                ("strict-transport-security", value)
            }
            other => return Err(unsupported(other)),
        };
        let value = HeaderValue::from_str(&value).map_err(|_| {
            TemplateError::Unsupported(format!("web app: {name} is not a header value"))
        })?;
        headers.push((HeaderName::from_static(header), value));
    }
    Ok(headers)
}

/// The CSP with the AWS origins the app talks to replaced by the local ones; everything else
/// (`'self'`, `'none'`, other hosts) unchanged.
pub fn localize_csp(csp: &str, origins: &LocalOrigins) -> String {
    let api = format!("*.execute-api.{REGION}.amazonaws.com");
    let s3 = format!("*.s3.{REGION}.amazonaws.com");
    let cognito = format!("cognito-idp.{REGION}.amazonaws.com");
    let gateway_ws = origins.gateway.replacen("http://", "ws://", 1);
    csp.split(';')
        .map(|directive| {
            directive
                .split_whitespace()
                .map(|source| match source.split_once("://") {
                    Some(("https", host)) if host == api => origins.gateway.clone(),
                    Some(("wss", host)) if host == api => gateway_ws.clone(),
                    Some(("https", host)) if host == s3 || host == cognito => {
                        origins.emulator.clone()
                    }
                    _ => source.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The server: `/` is `index.html`, `/config.json` the generated config, other paths files of
/// `web/` (no dot-files, no `..`); GET and HEAD only.
pub fn router(app: WebApp) -> axum::Router {
    axum::Router::new()
        .fallback(serve)
        .with_state(Arc::new(app))
}

async fn serve(State(app): State<Arc<WebApp>>, request: Request) -> Response {
    // Only the method and path: a request (its body) is not Sync, so no borrow of it may live
    // across the file read.
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let mut response = answer(&app, &method, &path).await;
    for (name, value) in &app.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    response
}

async fn answer(app: &WebApp, method: &Method, path: &str) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET and HEAD only");
    }
    let path = match path {
        "/" => "/index.html",
        other => other,
    };
    if path == "/config.json" {
        return file(
            serde_json::to_vec_pretty(&app.config).expect("a JSON value serialises"),
            "application/json",
            "no-cache",
        );
    }
    let relative = path.trim_start_matches('/');
    let safe = !relative.is_empty()
        && relative
            .split('/')
            .all(|segment| !segment.is_empty() && !segment.starts_with('.'));
    let Some(content_type) = safe.then(|| content_type(relative)).flatten() else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    match tokio::fs::read(app.root.join(relative)).await {
        Ok(bytes) => file(bytes, content_type, "no-cache"),
        Err(_) => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The types `make web-publish` uploads with (local/tools/web_publish.py); others are not served.
pub fn content_type(path: &str) -> Option<&'static str> {
    Some(match path.rsplit_once('.')?.1 {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => return None,
    })
}

fn file(bytes: Vec<u8>, content_type: &str, cache: &str) -> Response {
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("ascii"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(cache).expect("ascii"),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut response = file(
        text.as_bytes().to_vec(),
        "text/plain; charset=utf-8",
        "no-store",
    );
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origins() -> LocalOrigins {
        LocalOrigins {
            gateway: "http://127.0.0.1:3000".into(),
            emulator: "http://127.0.0.1:5000".into(),
        }
    }

    #[test]
    fn the_csp_names_the_local_gateway_socket_and_emulator() {
        let csp = format!(
            "default-src 'none'; connect-src 'self' https://*.execute-api.{REGION}.amazonaws.com \
             wss://*.execute-api.{REGION}.amazonaws.com https://*.s3.{REGION}.amazonaws.com \
             https://cognito-idp.{REGION}.amazonaws.com https://example.com; img-src 'self' https://*.execute-api.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            localize_csp(&csp, &origins()),
            "default-src 'none'; connect-src 'self' http://127.0.0.1:3000 ws://127.0.0.1:3000 \
             http://127.0.0.1:5000 http://127.0.0.1:5000 https://example.com; img-src 'self' \
             https://*.execute-api.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn every_security_header_of_the_policy_is_served_and_unknown_settings_refused() {
        let policy = json!({"ResponseHeadersPolicyConfig": {"SecurityHeadersConfig": {
            "ContentSecurityPolicy": {"ContentSecurityPolicy": "default-src 'self'", "Override": true},
            "ContentTypeOptions": {"Override": true},
            "FrameOptions": {"FrameOption": "DENY", "Override": true},
            "ReferrerPolicy": {"ReferrerPolicy": "same-origin", "Override": true},
            "StrictTransportSecurity": {"AccessControlMaxAgeSec": 600, "IncludeSubdomains": true, "Override": true}
        }}});
        let headers: Vec<(String, String)> = security_headers(&policy, &origins())
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            headers,
            [
                ("content-security-policy", "default-src 'self'"),
                ("x-content-type-options", "nosniff"),
                ("x-frame-options", "DENY"),
                ("referrer-policy", "same-origin"),
                (
                    "strict-transport-security",
                    "max-age=600; includeSubDomains"
                ),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let custom = json!({"ResponseHeadersPolicyConfig": {"CustomHeadersConfig": {"Items": []}}});
        assert!(security_headers(&custom, &origins()).is_err());
        let xss = json!({"ResponseHeadersPolicyConfig": {"SecurityHeadersConfig": {"XSSProtection": {}}}});
        assert!(security_headers(&xss, &origins()).is_err());
    }

    #[test]
    fn only_known_types_are_served() {
        assert_eq!(
            content_type("pages/chat.js"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(content_type("README"), None);
        assert_eq!(content_type("tests/browser.mjs"), None);
    }
}
