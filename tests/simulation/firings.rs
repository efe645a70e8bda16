//! The firing log: every timer firing an engine committed, collected from the runtime's
//! `neuronx_supervision::timer_fired` events by a process-wide `tracing` layer that records
//! nothing else (every engine of every schedule runs in this process).

use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{filter, Layer};

const TARGET: &str = "neuronx_supervision::timer_fired";

/// One committed firing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Firing {
    pub actor: String,
    pub timer: String,
    pub due_at_ms: i64,
    /// The firing engine's clock at its commit.
    pub now_ms: i64,
}

static FIRINGS: Mutex<Vec<Firing>> = Mutex::new(Vec::new());

struct Log;

impl<S: tracing::Subscriber> Layer<S> for Log {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut firing = Firing::default();
        event.record(&mut firing);
        FIRINGS.lock().unwrap().push(firing);
    }
}

impl Visit for Firing {
    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "due_at_ms" => self.due_at_ms = value,
            "now_ms" => self.now_ms = value,
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_i64(field, value as i64);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "actor" => self.actor = format!("{value:?}"),
            "timer" => self.timer = format!("{value:?}"),
            _ => {}
        }
    }
}

/// Starts collecting (once per process). Panics if another global subscriber was set first:
/// the invariants need this one.
pub fn install() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let layer = Log.with_filter(filter::filter_fn(|m| m.target() == TARGET));
        // `NEURONX_SIM_LOG=warn` (any filter) also prints the engines' own log, for a failure
        // that needs it (a replay rarely repeats the interleaving).
        let engines = std::env::var("NEURONX_SIM_LOG").ok().map(|f| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(tracing_subscriber::EnvFilter::new(f))
        });
        let registry = tracing_subscriber::registry().with(layer).with(engines);
        tracing::subscriber::set_global_default(registry)
            .expect("the simulation's firing log is the only subscriber");
    });
}

/// Every firing logged since the last call (schedules run one after another in a process, and
/// each begins with this call, so what it answers after a schedule is that schedule's).
pub fn take() -> Vec<Firing> {
    std::mem::take(&mut *FIRINGS.lock().unwrap())
}
