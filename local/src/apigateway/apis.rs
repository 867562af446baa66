//! The template's APIs as routing tables, read from what the SAM transform generated: REST
//! routes from each `AWS::ApiGateway::RestApi`'s OpenAPI `Body` (`x-amazon-apigateway-integration`
//! URIs name the functions, per-method `security` the API key and the Cognito user pool
//! authorizer (`components.securitySchemes`), the CORS `OPTIONS` methods' mock
//! responses the preflight headers, `x-amazon-apigateway-gateway-responses` the error shapes),
//! stages from `AWS::ApiGateway::Stage`/`Deployment`; WebSocket routes from `ApiGatewayV2`
//! routes and integrations. The local gateway serves exactly these.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::apigateway::rest::cognito_authorizer::CognitoAuthorizer;
use crate::cloudformation::provision::Stack;
use crate::cloudformation::template::{TemplateError, items};

#[derive(Debug, Clone)]
pub struct RestApi {
    pub logical_id: String,
    pub stage: String,
    /// Every stage a deployment of the template creates (`prod`, and SAM's `Stage` unless
    /// `OpenApiVersion` is set).
    pub stages: Vec<String>,
    /// Paths with a CORS `OPTIONS` mock integration and the headers it answers with.
    pub preflights: Vec<(String, Cors)>,
    /// `DEFAULT_4XX`, `DEFAULT_5XX`, `MISSING_AUTHENTICATION_TOKEN`, ... as the template sets them.
    pub gateway_responses: BTreeMap<String, GatewayResponse>,
    pub routes: Vec<RestRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub allow_methods: Option<String>,
    pub allow_headers: Option<String>,
    pub allow_origin: Option<String>,
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
    /// The method's Cognito user pool authorizer, checked before its API key.
    pub authorizer: Option<CognitoAuthorizer>,
}

/// How specific a route's match is: literal segments, not greedy, exact method.
type Rank = (usize, usize, bool);

impl RestApi {
    /// The most specific route for `path` (raw, percent-encoded): literal segments beat
    /// `{param}`, which beats `{proxy+}`; an exact method beats `ANY`. A path some route has,
    /// but not with this method, finds nothing: API Gateway answers it like an unknown path.
    pub fn find(&self, method: &str, path: &str) -> Option<(&RestRoute, BTreeMap<String, String>)> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut best: Option<(&RestRoute, BTreeMap<String, String>, Rank)> = None;
        for route in &self.routes {
            let Some((params, literal, greedy)) = match_path(&route.path, &segments) else {
                continue;
            };
            let exact = route.method == method;
            if !exact && route.method != "ANY" {
                continue;
            }
            let rank = (literal, usize::from(!greedy), exact);
            if best.as_ref().is_none_or(|(_, _, r)| rank > *r) {
                best = Some((route, params, rank));
            }
        }
        best.map(|(route, path_parameters, _)| (route, path_parameters))
    }

    /// The CORS headers of the `OPTIONS` mock integration on this path, if it has one.
    pub fn preflight_for(&self, path: &str) -> Option<&Cors> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.preflights
            .iter()
            .filter_map(|(template, cors)| {
                let (_, literal, greedy) = match_path(template, &segments)?;
                Some(((literal, !greedy), cors))
            })
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, cors)| cors)
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

/// Every REST API that exists under the stack's parameters, with its routes.
pub fn rest_apis(stack: &Stack) -> Result<Vec<RestApi>, TemplateError> {
    let mut apis = Vec::new();
    for (api_id, resource) in stack.template.resources_of_kind("AWS::ApiGateway::RestApi") {
        if !stack.resolver.exists(resource)? {
            continue;
        }
        let body = &resource.properties["Body"];
        let (routes, preflights) = operations(stack, api_id, body)?;
        let (stage, stages) = stages(stack, api_id)?;
        apis.push(RestApi {
            logical_id: api_id.clone(),
            stage,
            stages,
            preflights,
            gateway_responses: gateway_responses(stack, body)?,
            routes,
        });
    }
    Ok(apis)
}

/// An API's Lambda proxy routes, and its CORS `OPTIONS` mocks by path.
type Operations = (Vec<RestRoute>, Vec<(String, Cors)>);

/// The OpenAPI body's operations: Lambda proxy routes, and the CORS `OPTIONS` mocks.
fn operations(stack: &Stack, api_id: &str, body: &Value) -> Result<Operations, TemplateError> {
    let api_security = body.get("security");
    let schemes = stack.resolver.resolve(
        body.pointer("/components/securitySchemes")
            .or_else(|| body.get("securityDefinitions"))
            .unwrap_or(&Value::Null),
    )?;
    let mut routes = Vec::new();
    let mut preflights = Vec::new();
    for (path, methods) in body["paths"].as_object().into_iter().flatten() {
        for (method, operation) in methods.as_object().into_iter().flatten() {
            let integration = &operation["x-amazon-apigateway-integration"];
            let method = match method.as_str() {
                "x-amazon-apigateway-any-method" => "ANY".to_string(),
                other => other.to_ascii_uppercase(),
            };
            match integration["type"].as_str() {
                Some("aws_proxy") => {
                    // The URI (`...functions/${Fn.Arn}/invocations`, or its alias) names the function.
                    let function =
                        stack.template.invoked_function(&integration["uri"]).ok_or_else(|| {
                            TemplateError::Unsupported(format!(
                                "{api_id} {method} {path}: the integration names no function of the template"
                            ))
                        })?;
                    let security = operation.get("security").or(api_security);
                    let (api_key_required, authorizer) =
                        requirements(security, &schemes).map_err(|why| {
                            TemplateError::Unsupported(format!("{api_id} {method} {path}: {why}"))
                        })?;
                    routes.push(RestRoute {
                        path: path.clone(),
                        method,
                        function,
                        api_key_required,
                        authorizer,
                    });
                }
                Some("mock") if method == "OPTIONS" => {
                    preflights.push((path.clone(), mock_cors(stack, integration)?));
                }
                other => {
                    return Err(TemplateError::Unsupported(format!(
                        "{api_id} {method} {path}: integration type {other:?} is not served locally"
                    )));
                }
            }
        }
    }
    Ok((routes, preflights))
}

/// What a method's OpenAPI `security` requires: the API key (SAM's `api_key` scheme), a Cognito
/// user pool authorizer of the resolved `schemes`; API Gateway applies every scheme named (a
/// keyed method with an authorizer needs both). Any other kind of authorizer is not served.
fn requirements(
    security: Option<&Value>,
    schemes: &Value,
) -> Result<(bool, Option<CognitoAuthorizer>), String> {
    let mut api_key_required = false;
    let mut authorizer = None;
    let named = security
        .map(items)
        .unwrap_or_default() // no security: an open method
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|requirement| requirement.keys());
    for name in named {
        if name == "api_key" {
            api_key_required = true;
            continue;
        }
        let cognito = CognitoAuthorizer::of(name, &schemes[name.as_str()]).ok_or_else(|| {
            format!("security scheme {name} is neither the API key nor a Cognito user pool authorizer: not served locally")
        })?;
        authorizer = Some(cognito);
    }
    Ok((api_key_required, authorizer))
}

/// The headers a CORS mock integration answers a preflight with.
fn mock_cors(stack: &Stack, integration: &Value) -> Result<Cors, TemplateError> {
    let params = stack
        .resolver
        .resolve(&integration["responses"]["default"]["responseParameters"])?;
    let header = |name: &str| {
        params
            .get(format!("method.response.header.{name}"))
            .and_then(Value::as_str)
            .map(unquote)
    };
    Ok(Cors {
        allow_methods: header("Access-Control-Allow-Methods"),
        allow_headers: header("Access-Control-Allow-Headers"),
        allow_origin: header("Access-Control-Allow-Origin"),
        max_age: header("Access-Control-Max-Age"),
    })
}

/// The body's `x-amazon-apigateway-gateway-responses`, by response type.
fn gateway_responses(
    stack: &Stack,
    body: &Value,
) -> Result<BTreeMap<String, GatewayResponse>, TemplateError> {
    let responses = stack
        .resolver
        .resolve(&body["x-amazon-apigateway-gateway-responses"])?;
    Ok(responses
        .as_object()
        .into_iter()
        .flatten()
        .map(|(kind, body)| {
            let headers = body["responseParameters"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| {
                    let name = k.strip_prefix("gatewayresponse.header.")?;
                    Some((name.to_string(), unquote(v.as_str()?)))
                })
                .collect();
            let json_template = body
                .pointer("/responseTemplates/application~1json")
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
        .collect())
}

/// The API's stages: each `AWS::ApiGateway::Stage`, and the stage a Deployment names itself;
/// the main one is the Stage resource's.
fn stages(stack: &Stack, api_id: &str) -> Result<(String, Vec<String>), TemplateError> {
    let mut stages = Vec::new();
    let mut main_stage = None;
    for other in stack.template.resources.values() {
        if logical_ref(&other.properties["RestApiId"]).as_deref() != Some(api_id)
            || !stack.resolver.exists(other)?
        {
            continue;
        }
        let is_stage = matches!(
            other.kind.as_str(),
            "AWS::ApiGateway::Stage" | "AWS::ApiGateway::Deployment"
        );
        if is_stage && let Some(name) = other.properties.get("StageName") {
            let name = stack.resolver.resolve_string(name)?;
            if other.kind == "AWS::ApiGateway::Stage" {
                main_stage = Some(name.clone());
            }
            stages.push(name);
        }
    }
    stages.sort();
    stages.dedup();
    // API Gateway serves a REST API only once it is deployed to a stage.
    let stage = main_stage
        .or_else(|| stages.first().cloned())
        .ok_or_else(|| {
            TemplateError::Unsupported(format!(
                "{api_id}: the REST API has no stage (an AWS::ApiGateway::Stage, or a Deployment's StageName); API Gateway serves no undeployed API"
            ))
        })?;
    Ok((stage, stages))
}

/// Whether an API key can call `api`'s keyed routes as deployed: an enabled
/// `AWS::ApiGateway::ApiKey` linked (`AWS::ApiGateway::UsagePlanKey`) to a usage plan whose
/// `ApiStages` include the API's stage. Returns the key's logical id.
pub fn usable_api_key(stack: &Stack, api: &RestApi) -> Result<Option<String>, TemplateError> {
    let template = &stack.template;
    let resolver = &stack.resolver;
    for (plan_id, plan) in template.resources_of_kind("AWS::ApiGateway::UsagePlan") {
        if !resolver.exists(plan)? {
            continue;
        }
        let serves_api = items(&plan.properties["ApiStages"])
            .iter()
            .any(|stage| logical_ref(&stage["ApiId"]).as_deref() == Some(api.logical_id.as_str()));
        if !serves_api {
            continue;
        }
        for (_, link) in template.resources_of_kind("AWS::ApiGateway::UsagePlanKey") {
            if logical_ref(&link.properties["UsagePlanId"]).as_deref() != Some(plan_id) {
                continue;
            }
            let Some(key_id) = logical_ref(&link.properties["KeyId"]) else {
                continue;
            };
            let key = template.resource(&key_id)?;
            let enabled = resolver.resolve(&key.properties["Enabled"])? != false;
            if key.kind == "AWS::ApiGateway::ApiKey" && enabled && resolver.exists(key)? {
                return Ok(Some(key_id));
            }
        }
    }
    Ok(None)
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
        let mut stage = None;
        let mut routes = HashMap::new();
        for resource in template.resources.values() {
            let belongs = logical_ref(&resource.properties["ApiId"]).as_deref() == Some(api_id);
            if !belongs || !resolver.exists(resource)? {
                continue;
            }
            match resource.kind.as_str() {
                "AWS::ApiGatewayV2::Stage" => {
                    stage = Some(resolver.resolve_string(&resource.properties["StageName"])?);
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
                        template.invoked_function(uri)
                    });
                    if let Some(function) = function {
                        routes.insert(key, function);
                    }
                }
                _ => {}
            }
        }
        // API Gateway serves a WebSocket API only through a stage.
        let stage = stage.ok_or_else(|| {
            TemplateError::Unsupported(format!(
                "{api_id}: the WebSocket API has no AWS::ApiGatewayV2::Stage; API Gateway serves no undeployed API"
            ))
        })?;
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
            stages: vec!["prod".into()],
            preflights: vec![(
                "/items/{id}".into(),
                Cors {
                    allow_methods: Some("GET".into()),
                    allow_headers: None,
                    allow_origin: Some("*".into()),
                    max_age: None,
                },
            )],
            gateway_responses: BTreeMap::new(),
            routes: routes
                .iter()
                .map(|(method, path)| RestRoute {
                    path: path.to_string(),
                    method: method.to_string(),
                    function: format!("{method} {path}"),
                    api_key_required: true,
                    authorizer: None,
                })
                .collect(),
        }
    }

    fn found(m: Option<(&RestRoute, BTreeMap<String, String>)>) -> (String, Vec<(String, String)>) {
        let (route, path_parameters) = m.expect("a route");
        (
            route.function.clone(),
            path_parameters.into_iter().collect(),
        )
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
        for (method, path, route) in [
            ("POST", "/items", "ANY /items"),
            ("GET", "/items/a%40b", "GET /items/{id}"),
            ("DELETE", "/items/x", "ANY /items/{id}"),
            ("GET", "/items/special", "GET /items/special"),
        ] {
            assert_eq!(found(api.find(method, path)).0, route, "{method} {path}");
        }
        assert_eq!(
            found(api.find("GET", "/items/a%40b")).1,
            [("id".to_string(), "a@b".to_string())]
        );
        assert_eq!(
            found(api.find("GET", "/files/a/b/c.txt")).1,
            [("path".to_string(), "a/b/c.txt".to_string())]
        );
        assert_eq!(api.find("GET", "/files"), None);
        assert_eq!(api.find("GET", "/items/x/y"), None);
        assert_eq!(api.find("GET", "/nothing"), None);
        assert!(api.preflight_for("/items/x").is_some());
        assert!(api.preflight_for("/items").is_none());
    }

    #[test]
    fn an_unknown_method_on_a_known_path_is_not_a_route() {
        let api = api(&[("POST", "/uploads")]);
        assert_eq!(api.find("GET", "/uploads"), None);
        assert!(api.find("POST", "/uploads").is_some());
    }

    #[test]
    fn quoted_literals_lose_their_quotes() {
        assert_eq!(unquote("'GET,POST'"), "GET,POST");
        assert_eq!(unquote("*"), "*");
    }

    /// SAM's output for `DefaultAuthorizer` with an API key (resolved).
    fn schemes() -> Value {
        serde_json::json!({
            "api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"},
            "People": {"type": "apiKey", "name": "Authorization", "in": "header",
                "x-amazon-apigateway-authtype": "cognito_user_pools",
                "x-amazon-apigateway-authorizer": {"type": "cognito_user_pools",
                    "providerARNs": ["arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc"],
                    "identityValidationExpression": "^client1$"}},
            "Custom": {"type": "apiKey", "name": "Authorization", "in": "header",
                "x-amazon-apigateway-authtype": "custom",
                "x-amazon-apigateway-authorizer": {"type": "token"}},
        })
    }

    #[test]
    fn a_methods_security_names_its_authorizer_and_key() {
        let both = serde_json::json!([{"People": []}, {"api_key": []}]);
        let (key, authorizer) = requirements(Some(&both), &schemes()).unwrap();
        let authorizer = authorizer.expect("the Cognito authorizer");
        assert!(key);
        assert_eq!(
            (authorizer.name.as_str(), authorizer.header.as_str()),
            ("People", "Authorization")
        );
        assert_eq!(
            authorizer.issuers,
            ["https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"]
        );
        assert_eq!(authorizer.audience.as_deref(), Some("^client1$"));

        let open = serde_json::json!([]);
        assert_eq!(requirements(Some(&open), &schemes()), Ok((false, None)));
        assert_eq!(requirements(None, &schemes()), Ok((false, None)));
        let keyed = serde_json::json!([{"api_key": []}]);
        assert_eq!(requirements(Some(&keyed), &schemes()), Ok((true, None)));
    }

    #[test]
    fn an_authorizer_the_local_gateway_cannot_run_is_refused_not_skipped() {
        for security in [
            serde_json::json!([{"Custom": []}]),
            serde_json::json!([{"Undeclared": []}]),
        ] {
            let refused = requirements(Some(&security), &schemes()).unwrap_err();
            assert!(refused.contains("not served locally"), "{refused}");
        }
    }
}
