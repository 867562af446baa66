//! `make bench-fanout`: chat fan-out to 1,000 connections against the local `@connections`
//! server with 5 ms latency per post, at several concurrency limits. Prints a markdown table:
//! wall time, effective concurrency (serial time / wall time), peak posts in flight, and the
//! process's peak RSS.

use std::time::{Duration, Instant};

use integration_tests::fake_connections::FakeConnections;
use shared::chat::{broadcast, management_client};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() {
    let connections: usize = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let latency = Duration::from_millis(5);
    let ids: Vec<String> = (0..connections).map(|i| format!("conn-{i:05}")).collect();
    let sdk = local_stack::emulator::sdk_config("http://127.0.0.1:9").await;
    let payload = br#"{"type":"message","message":{"id":"x","room":"bench","user":"ann","text":"hello","sent_at":"2026-11-21T15:04:05.123Z"}}"#;
    println!(
        "## Chat fan-out: {connections} connections, {} ms per post (local @connections server)\n",
        latency.as_millis()
    );
    println!(
        "| concurrency limit | wall ms | effective concurrency | peak in flight | delivered | peak RSS MB |"
    );
    println!("|---|---|---|---|---|---|");
    for limit in [1, 16, 64, 128] {
        if limit == 1 && connections > 200 {
            // Serial is the baseline by definition: connections x latency (plus overhead).
            println!(
                "| 1 (serial baseline) | >= {} | 1.0 | 1 | - | - |",
                connections as u128 * latency.as_millis()
            );
            continue;
        }
        let fake = FakeConnections::start(Vec::new(), Vec::new(), latency).await;
        let client = management_client(&sdk, &fake.url);
        let start = Instant::now();
        let report = broadcast(&client, ids.clone(), payload, limit).await;
        let wall = start.elapsed();
        let serial = connections as f64 * latency.as_secs_f64();
        println!(
            "| {limit} | {:.0} | {:.1} | {} | {} | {:.1} |",
            wall.as_secs_f64() * 1000.0,
            serial / wall.as_secs_f64(),
            fake.max_in_flight(),
            report.delivered,
            peak_rss_mb()
        );
        assert_eq!(report.delivered, connections);
    }
}
