//! The template's APIs as routing tables: REST routes from each function's `Api` events (with the
//! API's key requirement, CORS and gateway responses), WebSocket routes from `ApiGatewayV2`
//! routes and integrations. The local gateway serves exactly these.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::provision::Stack;
use crate::template::TemplateError;

/// SAM's name for the API it creates for `Api` events without a `RestApiId`.
const IMPLICIT_API: &str = "ServerlessRestApi";

#[derive(Debug, Clone)]
pub struct RestApi {
    pub logical_id: String,
    pub stage: String,
    pub api_key_required: bool,
    pub cors: Option<Cors>,
    /// `DEFAULT_4XX`, `DEFAULT_5XX`, `MISSING_AUTHENTICATION_TOKEN`, ... as the template sets them.
    pub gateway_responses: BTreeMap<String, GatewayResponse>,
    pub routes: Vec<RestRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub allow_methods: String,
    pub allow_headers: Option<String>,
    pub allow_origin: String,
    pub max_age: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct GatewayResponse {
    pub headers: Vec<(String, String)>,
    pub json_template: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestRoute {
    /// The resource path as written in the template (`/items/{id}`).
    pub path: String,
    /// Upper-case method, or `ANY`.
    pub method: String,
    pub function: String,
    pub api_key_required: bool,
}

/// How specific a route's match is: literal segments, not greedy, exact method.
type Rank = (usize, usize, bool);

/// What a request path and method find in a REST API.
#[derive(Debug, PartialEq, Eq)]
pub enum RestMatch<'a> {
    Route {
        route: &'a RestRoute,
        path_parameters: BTreeMap<String, String>,
    },
    /// Some route has this path, none this method (API Gateway answers it like an unknown path).
    NoMethod,
    NoPath,
}

impl RestApi {
    /// The most specific route for `path` (raw, percent-encoded): literal segments beat
    /// `{param}`, which beats `{proxy+}`; an exact method beats `ANY`.
    pub fn find(&self, method: &str, path: &str) -> RestMatch<'_> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut best: Option<(&RestRoute, BTreeMap<String, String>, Rank)> = None;
        let mut path_known = false;
        for route in &self.routes {
            let Some((params, literal, greedy)) = match_path(&route.path, &segments) else {
                continue;
            };
            path_known = true;
            let exact = route.method == method;
            if !exact && route.method != "ANY" {
                continue;
            }
            let rank = (literal, usize::from(!greedy), exact);
            if best.as_ref().is_none_or(|(_, _, r)| rank > *r) {
                best = Some((route, params, rank));
            }
        }
        match best {
            Some((route, path_parameters, _)) => RestMatch::Route {
                route,
                path_parameters,
            },
            None if path_known => RestMatch::NoMethod,
            None => RestMatch::NoPath,
        }
    }

    /// Whether any route serves this path (for CORS preflights).
    pub fn has_path(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.routes
            .iter()
            .any(|r| match_path(&r.path, &segments).is_some())
    }
}

/// Path parameters (decoded), the number of literal segments, and whether a greedy `{name+}`
/// matched.
type PathMatch = (BTreeMap<String, String>, usize, bool);

/// Path parameters (decoded) and the number of literal segments when `template` matches.
fn match_path(template: &str, segments: &[&str]) -> Option<PathMatch> {
    let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    let mut params = BTreeMap::new();
    let mut literal = 0;
    for (i, part) in parts.iter().enumerate() {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            let rest = segments.get(i..).filter(|r| !r.is_empty())?;
            params.insert(name.to_string(), decode(&rest.join("/")));
            return Some((params, literal, true));
        }
        let segment = segments.get(i)?;
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            params.insert(name.to_string(), decode(segment));
        } else if part == segment {
            literal += 1;
        } else {
            return None;
        }
    }
    (parts.len() == segments.len()).then_some((params, literal, false))
}

fn decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

/// A quoted API Gateway literal (`"'GET,POST'"`) without its quotes.
fn unquote(value: &str) -> String {
    value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(value)
        .to_string()
}

fn logical_ref(value: &Value) -> Option<String> {
    value.get("Ref").and_then(Value::as_str).map(str::to_string)
}

/// Every REST API with the routes of the functions that exist under the stack's parameters.
pub fn rest_apis(stack: &Stack) -> Result<Vec<RestApi>, TemplateError> {
    let template = &stack.template;
    let resolver = &stack.resolver;
    let mut apis: BTreeMap<String, RestApi> = BTreeMap::new();
    let api = |id: &str| -> Result<RestApi, TemplateError> {
        let Ok(resource) = template.resource(id) else {
            // The implicit API: no key, no CORS, stage `Prod`.
            return Ok(RestApi {
                logical_id: id.to_string(),
                stage: "Prod".into(),
                api_key_required: false,
                cors: None,
                gateway_responses: BTreeMap::new(),
                routes: Vec::new(),
            });
        };
        let props = resolver.resolve(&resource.properties)?;
        let cors = match &props["Cors"] {
            Value::String(origin) => Some(Cors {
                allow_methods: "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS".into(),
                allow_headers: None,
                allow_origin: unquote(origin),
                max_age: None,
            }),
            Value::Object(c) => Some(Cors {
                allow_methods: c
                    .get("AllowMethods")
                    .and_then(Value::as_str)
                    .map(unquote)
                    .unwrap_or_else(|| "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS".into()),
                allow_headers: c.get("AllowHeaders").and_then(Value::as_str).map(unquote),
                allow_origin: c
                    .get("AllowOrigin")
                    .and_then(Value::as_str)
                    .map(unquote)
                    .unwrap_or_else(|| "*".into()),
                max_age: c.get("MaxAge").and_then(Value::as_str).map(unquote),
            }),
            _ => None,
        };
        let gateway_responses = props["GatewayResponses"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(kind, body)| {
                let headers = body
                    .pointer("/ResponseParameters/Headers")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), unquote(v))))
                    .collect();
                let json_template = body
                    .pointer("/ResponseTemplates/application~1json")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                (
                    kind.clone(),
                    GatewayResponse {
                        headers,
                        json_template,
                    },
                )
            })
            .collect();
        Ok(RestApi {
            logical_id: id.to_string(),
            stage: props["StageName"].as_str().unwrap_or("Prod").to_string(),
            api_key_required: props
                .pointer("/Auth/ApiKeyRequired")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            cors,
            gateway_responses,
            routes: Vec::new(),
        })
    };
    for (function_id, function) in template.resources_of_kind("AWS::Serverless::Function") {
        if !resolver.exists(function)? {
            continue;
        }
        for (_, event) in function.properties["Events"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if event["Type"] != "Api" {
                continue;
            }
            let raw = &event["Properties"];
            let api_id = logical_ref(&raw["RestApiId"]).unwrap_or_else(|| IMPLICIT_API.into());
            // The API is known by its logical id; the rest needs no provisioned resource.
            let mut raw = raw.clone();
            if let Some(props) = raw.as_object_mut() {
                props.remove("RestApiId");
            }
            let props = resolver.resolve(&raw)?;
            if !apis.contains_key(&api_id) {
                apis.insert(api_id.clone(), api(&api_id)?);
            }
            let entry = apis.get_mut(&api_id).expect("inserted");
            let method = props["Method"]
                .as_str()
                .unwrap_or("ANY")
                .to_ascii_uppercase();
            entry.routes.push(RestRoute {
                path: props["Path"].as_str().unwrap_or("/").to_string(),
                method,
                function: function_id.clone(),
                api_key_required: props
                    .pointer("/Auth/ApiKeyRequired")
                    .and_then(Value::as_bool)
                    .unwrap_or(entry.api_key_required),
            });
        }
    }
    Ok(apis.into_values().collect())
}

#[derive(Debug, Clone)]
pub struct WebSocketApi {
    pub logical_id: String,
    pub stage: String,
    /// `$request.body.action` -> the JSON pointer `/action` into a message body.
    pub selection_pointer: Option<String>,
    /// Route key (`$connect`, `$disconnect`, `$default`, `sendmessage`) -> function logical id.
    pub routes: HashMap<String, String>,
}

/// Every WebSocket API with its routes resolved to the functions their integrations invoke.
pub fn websocket_apis(stack: &Stack) -> Result<Vec<WebSocketApi>, TemplateError> {
    let template = &stack.template;
    let resolver = &stack.resolver;
    let mut apis = Vec::new();
    for (api_id, api) in template.resources_of_kind("AWS::ApiGatewayV2::Api") {
        let props = resolver.resolve(&api.properties)?;
        if props["ProtocolType"] != "WEBSOCKET" || !resolver.exists(api)? {
            continue;
        }
        let selection_pointer = props["RouteSelectionExpression"]
            .as_str()
            .and_then(|e| e.strip_prefix("$request.body."))
            .map(|path| format!("/{}", path.replace('.', "/")));
        let mut stage = "production".to_string();
        let mut routes = HashMap::new();
        for resource in template.resources.values() {
            let belongs = logical_ref(&resource.properties["ApiId"]).as_deref() == Some(api_id);
            if !belongs || !resolver.exists(resource)? {
                continue;
            }
            match resource.kind.as_str() {
                "AWS::ApiGatewayV2::Stage" => {
                    stage = resolver.resolve_string(&resource.properties["StageName"])?;
                }
                "AWS::ApiGatewayV2::Route" => {
                    let key = resolver.resolve_string(&resource.properties["RouteKey"])?;
                    // Target `integrations/${Integration}` -> the function the integration's URI
                    // names.
                    let integration = template
                        .references(&resource.properties["Target"])
                        .into_iter()
                        .find(|id| {
                            template
                                .resource(id)
                                .is_ok_and(|r| r.kind == "AWS::ApiGatewayV2::Integration")
                        });
                    let function = integration.and_then(|id| {
                        let uri = &template.resource(&id).ok()?.properties["IntegrationUri"];
                        template.references(uri).into_iter().find(|f| {
                            template
                                .resource(f)
                                .is_ok_and(|r| r.kind == "AWS::Serverless::Function")
                        })
                    });
                    if let Some(function) = function {
                        routes.insert(key, function);
                    }
                }
                _ => {}
            }
        }
        apis.push(WebSocketApi {
            logical_id: api_id.clone(),
            stage,
            selection_pointer,
            routes,
        });
    }
    Ok(apis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(routes: &[(&str, &str)]) -> RestApi {
        RestApi {
            logical_id: "Api".into(),
            stage: "prod".into(),
            api_key_required: true,
            cors: None,
            gateway_responses: BTreeMap::new(),
            routes: routes
                .iter()
                .map(|(method, path)| RestRoute {
                    path: path.to_string(),
                    method: method.to_string(),
                    function: format!("{method} {path}"),
                    api_key_required: true,
                })
                .collect(),
        }
    }

    fn found(m: RestMatch<'_>) -> (String, Vec<(String, String)>) {
        match m {
            RestMatch::Route {
                route,
                path_parameters,
            } => (
                route.function.clone(),
                path_parameters.into_iter().collect(),
            ),
            other => panic!("no route: {other:?}"),
        }
    }

    #[test]
    fn literal_segments_beat_parameters_and_exact_methods_beat_any() {
        let api = api(&[
            ("ANY", "/items"),
            ("ANY", "/items/{id}"),
            ("GET", "/items/{id}"),
            ("GET", "/items/special"),
            ("GET", "/files/{path+}"),
        ]);
        assert_eq!(found(api.find("POST", "/items")).0, "ANY /items");
        assert_eq!(found(api.find("GET", "/items/a%40b")).0, "GET /items/{id}");
        assert_eq!(
            found(api.find("GET", "/items/a%40b")).1,
            [("id".to_string(), "a@b".to_string())]
        );
        assert_eq!(found(api.find("DELETE", "/items/x")).0, "ANY /items/{id}");
        assert_eq!(
            found(api.find("GET", "/items/special")).0,
            "GET /items/special"
        );
        assert_eq!(
            found(api.find("GET", "/files/a/b/c.txt")).1,
            [("path".to_string(), "a/b/c.txt".to_string())]
        );
        assert_eq!(api.find("GET", "/files"), RestMatch::NoPath);
        assert_eq!(api.find("GET", "/items/x/y"), RestMatch::NoPath);
        assert_eq!(api.find("GET", "/nothing"), RestMatch::NoPath);
        assert!(api.has_path("/items/x"));
    }

    #[test]
    fn an_unknown_method_on_a_known_path_is_not_a_route() {
        let api = api(&[("POST", "/uploads")]);
        assert_eq!(api.find("GET", "/uploads"), RestMatch::NoMethod);
    }

    #[test]
    fn quoted_literals_lose_their_quotes() {
        assert_eq!(unquote("'GET,POST'"), "GET,POST");
        assert_eq!(unquote("*"), "*");
    }
}
