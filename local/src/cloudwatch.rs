//! CloudWatch Logs' metric extraction: every line a function prints that is an Embedded Metric
//! Format document becomes metric data here, as CloudWatch Logs does with the function's log
//! group (`GET /_local/metrics` in `make dev`; the end-to-end tests read it).
//!
//! Strict like AWS: the specification's rules are checked
//! (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html:
//! the line one JSON object of at most 1 MB; `_aws.Timestamp` integer milliseconds;
//! `CloudWatchMetrics` directives with a Namespace of 1-1024 characters, DimensionSets of at most
//! 30 keys naming root members whose values are strings of at most 1024 characters, at most 100
//! MetricDefinitions with a Name and, if given, a CloudWatch Unit and a StorageResolution of 1 or
//! 60; each metric's root member a number or an array of at most 100 numbers). AWS does not say
//! what it keeps of a document that breaks them (it counts `EMFValidationErrors` in `AWS/Logs`), so
//! locally the whole document is refused, and said so in the function's log, rather than
//! half-counted: a test can only pass on documents AWS certainly accepts. An empty dimension
//! value is refused too (AWS then publishes the metric without dimensions:
//! aws-powertools/powertools-lambda-python#5526).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

/// Where a function's log lines go: CloudWatch Logs' stand-in (standard output in `make dev`,
/// with this module's metric extraction tapped in).
pub trait LogSink: Send + Sync + 'static {
    fn line(&self, label: &str, line: &str);
}

/// Prints `label | line` to standard output, labels padded to one width.
pub struct PrefixedStdout {
    pub width: usize,
}

impl LogSink for PrefixedStdout {
    fn line(&self, label: &str, line: &str) {
        println!("{label:>width$} | {line}", width = self.width);
    }
}

const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
const MAX_DIMENSIONS: usize = 30;
const MAX_METRICS: usize = 100;
const MAX_VALUES: usize = 100;
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// One metric as CloudWatch stores it: namespace, name and dimension values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetricId {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
}

/// Everything recorded for one metric: the statistics CloudWatch offers over all its points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statistics {
    pub unit: String,
    pub sample_count: u64,
    pub sum: f64,
    pub minimum: f64,
    pub maximum: f64,
}

impl Statistics {
    fn add(&mut self, value: f64) {
        if self.sample_count == 0 {
            (self.minimum, self.maximum) = (value, value);
        }
        self.sample_count += 1;
        self.sum += value;
        self.minimum = self.minimum.min(value);
        self.maximum = self.maximum.max(value);
    }
}

/// The metrics extracted so far, and how many documents were refused.
#[derive(Default)]
pub struct MetricStore {
    metrics: Mutex<BTreeMap<MetricId, Statistics>>,
    refused: Mutex<u64>,
}

impl MetricStore {
    /// Reads one log line: `None` when it is not an EMF document (no `_aws` member), else
    /// whether it was accepted.
    pub fn ingest(&self, line: &str) -> Option<Result<(), String>> {
        let trimmed = line.trim();
        if !trimmed.starts_with('{') || !trimmed.contains("\"_aws\"") {
            return None;
        }
        let document: Map<String, Value> = serde_json::from_str(trimmed).ok()?;
        document.get("_aws")?;
        let result = extract(trimmed.len(), &document).map(|points| {
            let mut metrics = self.metrics.lock().expect("lock");
            for (id, unit, values) in points {
                let stats = metrics.entry(id).or_default();
                stats.unit = unit;
                for value in values {
                    stats.add(value);
                }
            }
        });
        if result.is_err() {
            *self.refused.lock().expect("lock") += 1;
        }
        Some(result)
    }

    pub fn get(&self, id: &MetricId) -> Option<Statistics> {
        self.metrics.lock().expect("lock").get(id).cloned()
    }

    /// `GET /_local/metrics`: every metric with its statistics, and the refused count.
    pub fn snapshot(&self) -> Value {
        let metrics: Vec<Value> = self
            .metrics
            .lock()
            .expect("lock")
            .iter()
            .map(|(id, s)| {
                json!({
                    "namespace": id.namespace,
                    "metric": id.name,
                    "dimensions": id.dimensions,
                    "unit": s.unit,
                    "sampleCount": s.sample_count,
                    "sum": s.sum,
                    "minimum": s.minimum,
                    "maximum": s.maximum,
                })
            })
            .collect();
        json!({"metrics": metrics, "refusedDocuments": *self.refused.lock().expect("lock")})
    }
}

type Point = (MetricId, String, Vec<f64>);

/// A directive's DimensionSets, each key naming a root string member. The specification's
/// schema: at least one DimensionSet (which may itself be empty), at most 30 keys in each.
fn dimension_sets(
    directive: &Value,
    document: &Map<String, Value>,
) -> Result<Vec<BTreeMap<String, String>>, String> {
    let sets = directive["Dimensions"]
        .as_array()
        .filter(|sets| !sets.is_empty())
        .ok_or("Dimensions must be a non-empty array of DimensionSets")?;
    let mut dimension_sets = Vec::new();
    for set in sets {
        let keys = set.as_array().ok_or("a DimensionSet must be an array")?;
        if keys.len() > MAX_DIMENSIONS {
            return Err(format!("a DimensionSet has {} keys, over 30", keys.len()));
        }
        let mut dimensions = BTreeMap::new();
        for key in keys {
            let key = key
                .as_str()
                .filter(|k| (1..=250).contains(&k.chars().count()))
                .ok_or("a dimension key must be a string of 1-250 characters")?;
            let value = document
                .get(key)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty() && v.chars().count() <= 1024)
                .ok_or_else(|| {
                    format!("dimension {key} must be a root string of 1-1024 characters")
                })?;
            dimensions.insert(key.to_string(), value.to_string());
        }
        dimension_sets.push(dimensions);
    }
    Ok(dimension_sets)
}

/// A MetricDefinition's unit (`None` when absent, as CloudWatch records it) and a valid
/// StorageResolution.
fn unit_of<'a>(name: &str, definition: &'a Value) -> Result<&'a str, String> {
    let unit = match definition.get("Unit") {
        None => "None",
        Some(unit) => unit
            .as_str()
            .filter(|u| UNITS.contains(u))
            .ok_or_else(|| format!("{name}: Unit {unit} is not a CloudWatch unit"))?,
    };
    if let Some(resolution) = definition.get("StorageResolution")
        && !matches!(resolution.as_u64(), Some(1 | 60))
    {
        return Err(format!("{name}: StorageResolution must be 1 or 60"));
    }
    Ok(unit)
}

/// The metric's root member: a number, or an array of at most 100 numbers.
fn values_of(name: &str, document: &Map<String, Value>) -> Result<Vec<f64>, String> {
    let number = |v: &Value| {
        v.as_f64()
            .ok_or(format!("{name}: every value must be a number"))
    };
    match document.get(name) {
        Some(n @ Value::Number(_)) => Ok(vec![number(n)?]),
        Some(Value::Array(values)) if values.len() <= MAX_VALUES => {
            values.iter().map(number).collect()
        }
        Some(Value::Array(_)) => Err(format!("{name}: more than 100 values")),
        _ => Err(format!("{name}: no numeric root member")),
    }
}

fn extract(size: usize, document: &Map<String, Value>) -> Result<Vec<Point>, String> {
    if size > MAX_DOCUMENT_BYTES {
        return Err(format!("document is {size} bytes, over 1 MB"));
    }
    let aws = document["_aws"]
        .as_object()
        .ok_or("_aws must be an object")?;
    if !aws.get("Timestamp").is_some_and(Value::is_u64) {
        return Err("_aws.Timestamp must be integer milliseconds since the epoch".into());
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("_aws.CloudWatchMetrics must be an array")?;
    let mut points = Vec::new();
    for directive in directives {
        let namespace = directive["Namespace"]
            .as_str()
            .filter(|n| (1..=1024).contains(&n.chars().count()))
            .ok_or("Namespace must be a string of 1-1024 characters")?;
        let dimension_sets = dimension_sets(directive, document)?;
        let definitions = directive["Metrics"]
            .as_array()
            .ok_or("Metrics must be an array")?;
        if definitions.len() > MAX_METRICS {
            return Err(format!("{} MetricDefinitions, over 100", definitions.len()));
        }
        for definition in definitions {
            let name = definition["Name"]
                .as_str()
                .filter(|n| (1..=1024).contains(&n.chars().count()))
                .ok_or("a MetricDefinition needs a Name of 1-1024 characters")?;
            let unit = unit_of(name, definition)?;
            let values = values_of(name, document)?;
            for dimensions in &dimension_sets {
                points.push((
                    MetricId {
                        namespace: namespace.to_string(),
                        name: name.to_string(),
                        dimensions: dimensions.clone(),
                    },
                    unit.to_string(),
                    values.clone(),
                ));
            }
        }
    }
    Ok(points)
}

/// A function's log lines pass through to `inner`; EMF documents among them are extracted, and
/// a refused one is reported next to them.
pub struct EmfTap {
    pub store: Arc<MetricStore>,
    pub inner: Arc<dyn LogSink>,
}

impl LogSink for EmfTap {
    fn line(&self, label: &str, line: &str) {
        self.inner.line(label, line);
        if let Some(Err(reason)) = self.store.ingest(line) {
            self.inner.line(
                label,
                &format!("[local-stack] CloudWatch would not extract this EMF document: {reason}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(extra: Value) -> String {
        let mut base = json!({
            "_aws": {"Timestamp": 1_700_000_000_000u64, "CloudWatchMetrics": [{
                "Namespace": "stack", "Dimensions": [["Function"]],
                "Metrics": [{"Name": "ItemsCreated", "Unit": "Count"}]}]},
            "Function": "items", "ItemsCreated": 2, "requestId": "r-1"
        });
        for (k, v) in extra.as_object().expect("object") {
            base[k] = v.clone();
        }
        base.to_string()
    }

    fn id(name: &str) -> MetricId {
        MetricId {
            namespace: "stack".into(),
            name: name.into(),
            dimensions: BTreeMap::from([("Function".into(), "items".into())]),
        }
    }

    #[test]
    fn a_valid_document_adds_its_values() {
        let store = MetricStore::default();
        assert_eq!(store.ingest(&doc(json!({}))), Some(Ok(())));
        assert_eq!(
            store.ingest(&doc(json!({"ItemsCreated": [1, 3.5]}))),
            Some(Ok(()))
        );
        let stats = store.get(&id("ItemsCreated")).expect("recorded");
        assert_eq!(stats.sample_count, 3);
        assert_eq!(stats.sum, 6.5);
        assert_eq!((stats.minimum, stats.maximum), (1.0, 3.5));
        assert_eq!(stats.unit, "Count");
    }

    #[test]
    fn plain_log_lines_are_not_documents() {
        let store = MetricStore::default();
        assert_eq!(
            store.ingest(r#"{"level":"INFO","fields":{"message":"hi"}}"#),
            None
        );
        assert_eq!(store.ingest("START RequestId: x"), None);
        // An EMF document quoted inside a log message is not extracted (AWS's Node.js warning).
        let quoted = json!({"message": doc(json!({}))}).to_string();
        assert_eq!(store.ingest(&quoted), None);
    }

    #[test]
    fn what_the_specification_forbids_is_refused_whole() {
        let store = MetricStore::default();
        let cases = [
            json!({"_aws": {"CloudWatchMetrics": []}}),
            json!({"_aws": {"Timestamp": "now", "CloudWatchMetrics": []}}),
            json!({"ItemsCreated": "2"}),
            json!({"ItemsCreated": vec![1; 101]}),
            json!({"Function": ""}),
            json!({"Function": 7}),
            json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "", "Dimensions": [], "Metrics": []}]}}),
            json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "s", "Dimensions": [],
                "Metrics": [{"Name": "ItemsCreated"}]}]}}),
            json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "s", "Dimensions": [["Function"]],
                "Metrics": [{"Name": "ItemsCreated", "Unit": "Items"}]}]}}),
            json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "s", "Dimensions": [["Function"]],
                "Metrics": [{"Name": "ItemsCreated", "StorageResolution": 5}]}]}}),
        ];
        for case in cases {
            let line = doc(case.clone());
            assert!(
                matches!(store.ingest(&line), Some(Err(_))),
                "accepted {line}"
            );
        }
        assert_eq!(store.get(&id("ItemsCreated")), None);
        assert_eq!(store.snapshot()["refusedDocuments"], 10);
    }
}
