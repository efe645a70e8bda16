//! What the engine benchmark reads off the instances while it runs: latency quantiles from the
//! engine's histograms, peaks of its gauges, and the process's memory.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus::core::Metric;
use prometheus::Histogram;

/// A quantile from a histogram's buckets, interpolated linearly inside the bucket.
pub(super) fn quantile_ms(h: &Histogram, q: f64) -> f64 {
    let m = h.metric();
    let hist = m.get_histogram();
    let total = hist.get_sample_count() as f64;
    if total == 0.0 {
        return 0.0;
    }
    let target = q * total;
    let mut prev_bound = 0.0;
    let mut prev_count = 0.0;
    for b in hist.get_bucket() {
        let count = b.cumulative_count() as f64;
        let bound = b.upper_bound();
        if count >= target {
            let within = if count > prev_count {
                (target - prev_count) / (count - prev_count)
            } else {
                0.0
            };
            return (prev_bound + within * (bound - prev_bound)) * 1000.0;
        }
        prev_bound = bound;
        prev_count = count;
    }
    prev_bound * 1000.0
}

pub(super) fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

pub(super) fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// A gauge summed over every instance.
pub(super) fn across(
    handles: &[neuronx_supervision::EngineHandle],
    gauge: fn(&neuronx_supervision::metrics::Metrics) -> i64,
) -> i64 {
    handles.iter().map(|h| gauge(h.metrics())).sum()
}

/// The resident actors and queued inputs of every instance, sampled every 100 ms.
pub(super) struct Peaks {
    resident: Arc<AtomicI64>,
    depth: Arc<AtomicI64>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Peaks {
    pub(super) fn start(handles: Vec<neuronx_supervision::EngineHandle>) -> Self {
        let (resident, depth) = (Arc::new(AtomicI64::new(0)), Arc::new(AtomicI64::new(0)));
        let (r, d) = (resident.clone(), depth.clone());
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                r.fetch_max(
                    across(&handles, |m| m.resident_actors.get()),
                    Ordering::Relaxed,
                );
                d.fetch_max(across(&handles, |m| m.inbox_depth.get()), Ordering::Relaxed);
            }
        });
        Self {
            resident,
            depth,
            sampler,
        }
    }

    pub(super) fn finish(self) -> (i64, i64) {
        self.sampler.abort();
        (
            self.resident.load(Ordering::Relaxed),
            self.depth.load(Ordering::Relaxed),
        )
    }
}
