//! docs/openapi.yaml describes exactly the REST routes template.yaml deploys: every route of the
//! template is in the document and every operation of the document is a route, with the same
//! API key and sign-in requirements. No emulator needed.

use std::collections::BTreeSet;
use std::sync::Arc;

use local_stack::apigateway::apis::rest_apis;
use local_stack::cloudformation::template::Template;
use local_stack::workspace::project_root;
use serde_json::Value;

mod unprovisioned;

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

fn document() -> Value {
    let path = project_root().join("docs/openapi.yaml");
    let text = std::fs::read_to_string(&path).expect("docs/openapi.yaml");
    serde_norway::from_str(&text).expect("valid YAML")
}

/// What an operation requires: the API key, a signed-in person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Requires {
    api_key: bool,
    person: bool,
}

/// What a `security` list requires: every scheme it names, as API Gateway applies them.
fn requires(security: &Value) -> Requires {
    let named = |scheme: &str| {
        security
            .as_array()
            .into_iter()
            .flatten()
            .any(|requirement| requirement.get(scheme).is_some())
    };
    Requires {
        api_key: named("apiKey"),
        person: named("person"),
    }
}

/// (path, METHOD, what it requires) for every operation of the document.
fn documented() -> BTreeSet<(String, String, Requires)> {
    let doc = document();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let security = operation.get("security").unwrap_or(&doc["security"]);
            out.insert((
                path.clone(),
                method.to_ascii_uppercase(),
                requires(security),
            ));
        }
    }
    out
}

fn deployed() -> Vec<local_stack::apigateway::apis::RestApi> {
    let template = Arc::new(Template::load_project().expect("template"));
    rest_apis(&unprovisioned::stack(template, "contract")).expect("routes resolve")
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
        let deployed = Requires {
            api_key: route.api_key_required,
            person: route.authorizer.is_some(),
        };
        for (path, method, documented) in matches {
            assert_eq!(
                *documented, deployed,
                "{method} {path}: the document and the template disagree on the key or sign-in"
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
