//! docs/openapi.yaml describes exactly the REST routes template.yaml deploys: every route of the
//! template is in the document and every operation of the document is a route, with the same
//! API key requirement. No emulator needed.

use std::collections::BTreeSet;
use std::sync::Arc;

use local_stack::apigateway::apis::rest_apis;
use local_stack::cloudformation::provision::Stack;
use local_stack::cloudformation::template::Template;
use local_stack::workspace::project_root;
use serde_json::Value;

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

fn document() -> Value {
    let path = project_root().join("docs/openapi.yaml");
    let text = std::fs::read_to_string(&path).expect("docs/openapi.yaml");
    serde_norway::from_str(&text).expect("valid YAML")
}

/// (path, METHOD, api key required) for every operation of the document.
fn documented() -> BTreeSet<(String, String, bool)> {
    let doc = document();
    let default_secured = doc["security"].as_array().is_some_and(|s| !s.is_empty());
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let secured = operation["security"]
                .as_array()
                .map_or(default_secured, |s| !s.is_empty());
            out.insert((path.clone(), method.to_ascii_uppercase(), secured));
        }
    }
    out
}

fn deployed() -> Vec<local_stack::apigateway::apis::RestApi> {
    let template = Arc::new(Template::load_project().expect("template"));
    let stack = Stack::new(
        template,
        aws_config::SdkConfig::builder().build(),
        "contract",
    );
    rest_apis(&stack).expect("routes resolve")
}

#[test]
fn every_template_route_is_documented_and_every_operation_is_a_route() {
    let documented = documented();
    let apis = deployed();
    assert_eq!(apis.len(), 1, "one REST API");
    let routes = &apis[0].routes;
    for route in routes {
        let matches: Vec<_> = documented
            .iter()
            .filter(|(path, method, _)| {
                path == &route.path && (route.method == "ANY" || method == &route.method)
            })
            .collect();
        assert!(
            !matches.is_empty(),
            "{} {} is deployed but not in docs/openapi.yaml",
            route.method,
            route.path
        );
        for (path, method, secured) in matches {
            assert_eq!(
                *secured, route.api_key_required,
                "{method} {path}: the document and the template disagree on the API key"
            );
        }
    }
    for (path, method, _) in &documented {
        assert!(
            routes
                .iter()
                .any(|r| &r.path == path && (r.method == "ANY" || &r.method == method)),
            "{method} {path} is in docs/openapi.yaml but template.yaml has no such route"
        );
    }
}

#[test]
fn the_document_is_openapi_3_with_an_error_shape_on_every_operation() {
    let doc = document();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                assert!(
                    operation["responses"].get("4XX").is_some(),
                    "{method} {path} documents no 4XX answer"
                );
            }
        }
    }
}
