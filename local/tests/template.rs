//! What CloudFormation receives (template.yaml through the SAM transform), checked for the
//! defects a deployment would hit and the local stack cannot show by running it: each test here
//! failed on the template before the fix it guards (run with `KIT_TEMPLATE=<old template.yaml>`).
//! No emulator needed.

use local_stack::cloudformation::template::{Physical, Resolver, Template};
use serde_json::Value;
use std::collections::HashMap;

mod unprovisioned;

fn transformed(parameters: &[(&str, &str)]) -> Template {
    let parameters: Vec<(String, String)> = parameters
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Template::load_project_with(&parameters).expect("the SAM transform accepts template.yaml")
}

fn resolver(template: &Template, parameters: &[(&str, &str)]) -> Resolver {
    let mut values = template.parameter_defaults.clone();
    for (k, v) in parameters {
        values.insert(k.to_string(), v.to_string());
    }
    Resolver {
        physical: HashMap::<String, Physical>::new(),
        parameters: values,
        conditions: template.conditions.clone(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        stack_name: "Kit-Stack".into(),
    }
}

fn of_kind<'a>(template: &'a Template, kind: &'a str) -> Vec<(&'a String, &'a Value)> {
    template
        .resources_of_kind(kind)
        .map(|(id, r)| (id, &r.properties))
        .collect()
}

#[test]
fn the_activity_schedule_runs_only_in_the_activity_pattern() {
    for (pattern, expected) in [("callback", "DISABLED"), ("activity", "ENABLED")] {
        let template = transformed(&[("ApprovalPattern", pattern)]);
        let resolver = resolver(&template, &[("ApprovalPattern", pattern)]);
        let rules = of_kind(&template, "AWS::Events::Rule");
        assert_eq!(rules.len(), 1, "one schedule: {rules:?}");
        let state = resolver
            .resolve_string(&rules[0].1["State"])
            .expect("State resolves");
        assert_eq!(state, expected, "{pattern} pattern");
    }
}

#[test]
fn the_rest_api_deploys_one_stage_throttled_on_every_method() {
    let template = transformed(&[]);
    for (id, deployment) in of_kind(&template, "AWS::ApiGateway::Deployment") {
        assert!(
            deployment.get("StageName").is_none(),
            "{id} creates a stage of its own ({}): SAM's implicit `Stage`",
            deployment["StageName"]
        );
    }
    let stages = of_kind(&template, "AWS::ApiGateway::Stage");
    assert_eq!(stages.len(), 1);
    let settings = stages[0].1["MethodSettings"]
        .as_array()
        .expect("the stage has MethodSettings");
    assert!(
        settings.iter().any(|s| s["ResourcePath"] == "/*"
            && s["HttpMethod"] == "*"
            && s["ThrottlingRateLimit"].is_number()
            && s["ThrottlingBurstLimit"].is_number()),
        "{settings:?}"
    );
}

#[test]
fn every_function_keeps_lambdas_start_and_report_lines() {
    let template = transformed(&[]);
    let functions = of_kind(&template, "AWS::Lambda::Function");
    assert_eq!(functions.len(), 12);
    for (id, function) in functions {
        let level = function["LoggingConfig"]["SystemLogLevel"]
            .as_str()
            .unwrap_or("INFO");
        assert!(
            matches!(level, "INFO" | "DEBUG"),
            "{id}: SystemLogLevel {level} drops START/END/REPORT"
        );
    }
}

#[test]
fn the_websocket_stage_deploys_every_route_change() {
    let template = transformed(&[]);
    for (id, stage) in of_kind(&template, "AWS::ApiGatewayV2::Stage") {
        assert_eq!(
            stage["AutoDeploy"], true,
            "{id} would keep its first deployment forever"
        );
    }
}

#[test]
fn old_backup_versions_expire_after_the_retention_parameter() {
    let template = transformed(&[]);
    let bucket = &template.resource("BackupBucket").unwrap().properties;
    let rules = bucket["LifecycleConfiguration"]["Rules"]
        .as_array()
        .expect("the versioned backup bucket has lifecycle rules");
    assert!(
        rules.iter().any(|r| r["Status"] == "Enabled"
            && r["NoncurrentVersionExpiration"]["NoncurrentDays"]
                == serde_json::json!({"Ref": "BackupRetentionDays"})),
        "{rules:?}"
    );
}

#[test]
fn the_sender_identity_is_created_only_when_asked() {
    let template = transformed(&[]);
    let identities: Vec<_> = template
        .resources_of_kind("AWS::SES::EmailIdentity")
        .collect();
    for (id, identity) in &identities {
        let condition = identity
            .condition
            .as_deref()
            .unwrap_or_else(|| panic!("{id} is always created"));
        let defaults = resolver(&template, &[]);
        assert!(!defaults.condition(condition).unwrap(), "{id} by default");
        let asked = resolver(&template, &[("CreateSenderIdentity", "true")]);
        assert!(asked.condition(condition).unwrap());
    }
}

#[test]
fn the_uploads_bucket_name_is_valid_for_any_stack_name() {
    let template = transformed(&[]);
    let bucket = &template.resource("PhotoUploadsBucket").unwrap().properties;
    for stack_name in [
        "Kit-Stack",
        "a-stack-name-that-is-longer-than-thirty-two-characters-by-far",
    ] {
        let mut resolver = resolver(&template, &[]);
        resolver.stack_name = stack_name.into();
        let name = resolver.resolve_string(&bucket["BucketName"]).unwrap();
        assert!(
            local_stack::cloudformation::provision::valid_bucket_name(&name).is_ok(),
            "{stack_name} -> {name}"
        );
    }
}

#[test]
fn no_role_gets_an_account_wide_queue_or_stream_policy() {
    let template = transformed(&[]);
    for (id, role) in of_kind(&template, "AWS::IAM::Role") {
        for arn in role["ManagedPolicyArns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            assert!(
                !arn.ends_with("AWSLambdaSQSQueueExecutionRole")
                    && !arn.ends_with("AWSLambdaDynamoDBExecutionRole"),
                "{id} has {arn}: receive/delete on every queue or read every stream of the account"
            );
        }
    }
}

#[test]
fn the_stack_id_resolves_like_cloudformations() {
    let template = transformed(&[]);
    let resolver = resolver(&template, &[]);
    let id = resolver.stack_id();
    assert!(id.starts_with("arn:aws:cloudformation:us-east-1:123456789012:stack/Kit-Stack/"));
    assert_eq!(id.rsplit('/').next().unwrap().len(), 36);
}

#[test]
fn the_api_key_and_a_signed_in_person_guard_every_route_but_the_links() {
    let template = std::sync::Arc::new(transformed(&[]));
    let stack = unprovisioned::stack(template, "Kit-Stack");
    let apis = local_stack::apigateway::apis::rest_apis(&stack).unwrap();
    assert_eq!(apis.len(), 1);
    assert_eq!(
        apis[0].stages,
        ["prod"],
        "one stage, the StageName parameter's"
    );
    assert!(
        local_stack::apigateway::apis::usable_api_key(&stack, &apis[0])
            .unwrap()
            .is_some(),
        "keyed routes would be uncallable"
    );
    let keyless: Vec<String> = apis[0]
        .routes
        .iter()
        .filter(|r| !r.api_key_required)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        keyless,
        ["GET /approvals/{decision}", "POST /approvals/{decision}"],
        "only the approval links managers open from emails go without the key"
    );
    // The same links, and only they, go without a signed-in person; every other route takes
    // ID tokens of the web app's client of the stack's pool.
    let mut open = Vec::new();
    for route in &apis[0].routes {
        match &route.authorizer {
            None => open.push(format!("{} {}", route.method, route.path)),
            Some(authorizer) => assert_eq!(
                (
                    authorizer.issuers.as_slice(),
                    authorizer.audience.as_deref()
                ),
                (
                    [
                        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_unprovisioned"
                            .to_string()
                    ]
                    .as_slice(),
                    Some("^WebAppClient$")
                ),
                "{} {}",
                route.method,
                route.path
            ),
        }
    }
    assert_eq!(open, keyless, "only the e-mail links go without sign-in");
}

/// The dimension value an alarm's metric (or any metric of its metric math) is scoped to.
fn alarm_targets(alarm: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut add = |metric: &Value, dimensions: &Value| {
        for d in dimensions.as_array().into_iter().flatten() {
            out.push((
                format!(
                    "{}/{}",
                    metric.as_str().unwrap_or_default(),
                    d["Name"].as_str().unwrap_or_default()
                ),
                d["Value"].clone(),
            ));
        }
    };
    add(&alarm["MetricName"], &alarm["Dimensions"]);
    for m in alarm["Metrics"].as_array().into_iter().flatten() {
        let metric = &m["MetricStat"]["Metric"];
        add(&metric["MetricName"], &metric["Dimensions"]);
    }
    out
}

/// Every function, failure queue, API, stream mapping, pipe and state machine has an alarm
/// that notifies AlarmTopic: a new resource cannot ship without one.
#[test]
fn every_failure_path_has_an_alarm() {
    for pattern in ["callback", "activity"] {
        let template = transformed(&[("ApprovalPattern", pattern)]);
        let alarms = Alarms::of(&template);
        let mut missing = Vec::new();
        for (id, _) in template.resources_of_kind("AWS::Lambda::Function") {
            for metric in ["Errors/FunctionName", "Throttles/FunctionName"] {
                if !alarms.on(metric, reference(id)) {
                    missing.push(format!("{id}: {metric}"));
                }
            }
        }
        let failure_queues = failure_queues(&template);
        assert!(failure_queues.len() >= 5, "{failure_queues:?}");
        for queue in &failure_queues {
            let name = serde_json::json!({"Fn::GetAtt": [queue, "QueueName"]});
            if !alarms.on("ApproximateNumberOfMessagesVisible/QueueName", name) {
                missing.push(format!("{queue}: messages visible"));
            }
        }
        missing.extend(alarms.missing_on_apis(&template));
        missing.extend(alarms.missing_on_streams_and_pipes(&template));
        let resolver = resolver(&template, &[("ApprovalPattern", pattern)]);
        for (id, machine) in template.resources_of_kind("AWS::StepFunctions::StateMachine") {
            if !resolver.exists(machine).unwrap() {
                continue;
            }
            for metric in ["ExecutionsFailed", "ExecutionsTimedOut"] {
                if !alarms.on(&format!("{metric}/StateMachineArn"), reference(id)) {
                    missing.push(format!("{id}: {metric}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "{pattern} pattern, no alarm for:\n{}",
            missing.join("\n")
        );
    }
}

fn reference(id: &str) -> Value {
    serde_json::json!({"Ref": id})
}

/// What the template's alarms that notify AlarmTopic watch: (metric/dimension, dimension value).
struct Alarms {
    targets: Vec<(String, Value)>,
}

impl Alarms {
    fn of(template: &Template) -> Self {
        let targets = template
            .resources_of_kind("AWS::CloudWatch::Alarm")
            .filter(|(_, a)| {
                a.properties["AlarmActions"]
                    .as_array()
                    .is_some_and(|actions| {
                        actions.contains(&serde_json::json!({"Ref": "AlarmTopic"}))
                    })
            })
            .flat_map(|(_, a)| alarm_targets(&a.properties))
            .collect();
        Self { targets }
    }

    fn on(&self, metric: &str, value: Value) -> bool {
        self.targets.iter().any(|(m, v)| m == metric && *v == value)
    }

    fn missing_on_apis(&self, template: &Template) -> Vec<String> {
        let mut missing = Vec::new();
        if !self.on("5XXError/ApiName", reference("AWS::StackName"))
            || !self.on("Latency/ApiName", reference("AWS::StackName"))
        {
            missing.push("RestApi: 5XXError and Latency".into());
        }
        for (id, _) in template.resources_of_kind("AWS::ApiGatewayV2::Api") {
            if !self.on("IntegrationError/ApiId", reference(id))
                || !self.on("ExecutionError/ApiId", reference(id))
            {
                missing.push(format!("{id}: integration and execution errors"));
            }
        }
        missing
    }

    fn missing_on_streams_and_pipes(&self, template: &Template) -> Vec<String> {
        let mut missing = Vec::new();
        for (id, m) in template.resources_of_kind("AWS::Lambda::EventSourceMapping") {
            if m.properties["EventSourceArn"]
                .to_string()
                .contains("StreamArn")
            {
                // The mapping invokes the alias; the metric is the function's.
                let function = template
                    .invoked_function(&m.properties["FunctionName"])
                    .expect("a function behind the mapping");
                if !self.on("IteratorAge/FunctionName", reference(&function)) {
                    missing.push(format!("{id}: IteratorAge"));
                }
            }
        }
        for (id, _) in template.resources_of_kind("AWS::Pipes::Pipe") {
            for metric in [
                "ExecutionFailed",
                "EnrichmentStageFailed",
                "TargetStageFailed",
            ] {
                if !self.on(&format!("{metric}/PipeName"), reference(id)) {
                    missing.push(format!("{id}: {metric}"));
                }
            }
        }
        missing
    }
}

/// Failure queues: redrive targets, on-failure destinations, the pipe's DLQ, and queues that
/// keep rejected records.
fn failure_queues(template: &Template) -> std::collections::BTreeSet<String> {
    fn walk(value: &Value, found: &mut std::collections::BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    let target = match key.as_str() {
                        "deadLetterTargetArn" => Some(v),
                        "OnFailure" => v.get("Destination"),
                        "DeadLetterConfig" => v.get("Arn"),
                        _ => None,
                    };
                    if let Some(queue) = target
                        .and_then(|t| t.pointer("/Fn::GetAtt/0"))
                        .and_then(Value::as_str)
                    {
                        found.insert(queue.to_string());
                    }
                    walk(v, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut failure_queues = std::collections::BTreeSet::new();
    for r in template.resources.values() {
        walk(&r.properties, &mut failure_queues);
    }
    failure_queues.insert("AppointmentRejectedRecords".to_string());
    failure_queues
}

/// The dashboard's body is the JSON CloudWatch expects once its `${...}` are substituted, with a
/// row per system, and every resource it names exists.
#[test]
fn the_dashboard_has_a_row_per_system_over_real_resources() {
    let template = transformed(&[]);
    let body =
        template.resource("OperationsDashboard").unwrap().properties["DashboardBody"]["Fn::Sub"]
            .as_str()
            .expect("a Sub string")
            .to_string();
    let mut names = Vec::new();
    let mut text = String::new();
    let mut rest = body.as_str();
    while let Some(start) = rest.find("${") {
        text.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed") + start;
        names.push(rest[start + 2..end].to_string());
        text.push('x');
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    let dashboard: Value = serde_json::from_str(&text).expect("valid JSON");
    // CloudWatch's dashboard body schema: a metric widget's `metrics` is an array of arrays
    // (namespace, name, dimensions..., options) or of a one-element array holding an expression.
    for widget in dashboard["widgets"].as_array().unwrap() {
        if widget["type"] == "metric" {
            let metrics = widget["properties"]["metrics"]
                .as_array()
                .expect("metrics is an array");
            assert!(!metrics.is_empty(), "{widget}");
            for metric in metrics {
                assert!(
                    metric.is_array(),
                    "a metrics entry that is not an array: {metric}"
                );
            }
        }
    }
    let rows: Vec<&str> = dashboard["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["properties"]["markdown"].as_str())
        .collect();
    assert_eq!(
        rows,
        [
            "## Items API",
            "## Photo pipeline",
            "## Chat",
            "## Human approval",
            "## Appointments",
            "## Every function"
        ]
    );
    for name in names {
        let id = name.split('.').next().unwrap();
        assert!(
            id.starts_with("AWS::")
                || template.resources.contains_key(id)
                || template.parameter_defaults.contains_key(id),
            "the dashboard names {name}, which the template does not have"
        );
    }
}

/// Gradual deploys: every function has a `live` alias shifted by CodeDeploy with its error
/// alarm as the rollback trigger, and everything that invokes a function invokes the alias.
#[test]
fn everything_invokes_the_live_alias_shifted_by_codedeploy() {
    let template = transformed(&[]);
    let is_alias = |value: &Value| {
        template.references(value).iter().any(|id| {
            template
                .resource(id)
                .is_ok_and(|r| r.kind == "AWS::Lambda::Alias")
        })
    };
    for (id, m) in template.resources_of_kind("AWS::Lambda::EventSourceMapping") {
        assert!(
            is_alias(&m.properties["FunctionName"]),
            "{id} invokes $LATEST"
        );
    }
    for (id, p) in template.resources_of_kind("AWS::Lambda::Permission") {
        assert!(
            is_alias(&p.properties["FunctionName"]),
            "{id} permits $LATEST"
        );
    }
    for (id, i) in template.resources_of_kind("AWS::ApiGatewayV2::Integration") {
        assert!(
            is_alias(&i.properties["IntegrationUri"]),
            "{id} invokes $LATEST"
        );
    }
    for (id, r) in template.resources_of_kind("AWS::Events::Rule") {
        assert!(is_alias(&r.properties["Targets"]), "{id} invokes $LATEST");
    }
    let body = &template.resource("RestApi").unwrap().properties["Body"]["paths"];
    for (path, methods) in body.as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            let uri = &operation["x-amazon-apigateway-integration"]["uri"];
            if !uri.is_null() {
                assert!(is_alias(uri), "{method} {path} invokes $LATEST");
            }
        }
    }
    assert!(is_alias(
        &template.resource("AppointmentPipe").unwrap().properties["Enrichment"]
    ));
    let groups: Vec<&Value> = template
        .resources_of_kind("AWS::CodeDeploy::DeploymentGroup")
        .map(|(_, g)| &g.properties)
        .collect();
    assert_eq!(groups.len(), 12, "one deployment group per function");
    for group in groups {
        let alarms = group["AlarmConfiguration"]["Alarms"]
            .as_array()
            .expect("a rollback alarm");
        assert!(
            !alarms.is_empty() && group["AlarmConfiguration"]["Enabled"] == true,
            "{group}"
        );
    }
}
