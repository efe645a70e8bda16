//! Prometheus metrics, one registry per engine so several engines in one test process do not
//! mix their figures.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    timer_lateness_max: std::sync::atomic::AtomicI64,
    pub transitions: IntCounter,
    pub commit_latency: Histogram,
    pub commit_batch: Histogram,
    pub timer_lateness: Histogram,
    pub timer_lateness_max_ms: IntGauge,
    pub resident_actors: IntGauge,
    pub early_passivations: IntCounter,
    pub inbox_depth: IntGauge,
    /// Inbox reads of shard hosts started and not answered yet: at most one per held shard.
    pub inbox_polls_in_flight: IntGauge,
    pub fencing_rejections: IntCounter,
    pub dead_letters: IntCounter,
    pub actor_restarts: IntCounter,
    pub quarantined_actors: IntCounter,
    pub awaiting_activation: IntGauge,
    /// Outbox claims and timer wake-ups put off while the hosts were behind
    /// (`Runtime::overloaded`).
    pub claims_held_back: IntCounter,
    pub firings_held_back: IntCounter,
    /// Timer rows the timer service read from the store (refills and backlog slices): its
    /// cost under a backlog.
    pub timer_rows_read: IntCounter,
    pub early_timer_firings: IntCounter,
    pub owned_shards: IntGauge,
    pub effects: IntCounterVec,
    pub effect_latency: HistogramVec,
    /// The outbox claim's query: the dispatcher claims one at a time.
    pub outbox_claim: Histogram,
    pub completions_refused: IntCounterVec,
    /// Answers read for callers waiting on another instance, by what woke the read that found
    /// them: `first` (already there), `notification`, `poll` (the safety net).
    pub remote_answers: IntCounterVec,
}

fn buckets() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075,
        0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0,
    ]
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("neuronx".into()), None)?;
        let m = Self {
            transitions: IntCounter::new("transitions_total", "committed actor transitions")?,
            commit_latency: Histogram::with_opts(
                HistogramOpts::new("commit_latency_seconds", "group commit latency")
                    .buckets(buckets()),
            )?,
            commit_batch: Histogram::with_opts(
                HistogramOpts::new("commit_batch_size", "transitions per group commit").buckets(
                    vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0],
                ),
            )?,
            timer_lateness: Histogram::with_opts(
                HistogramOpts::new(
                    "timer_lateness_seconds",
                    "from a timer's due time to the commit of the transition it caused",
                )
                .buckets(buckets()),
            )?,
            timer_lateness_max_ms: IntGauge::new(
                "timer_lateness_max_ms",
                "the largest timer lateness seen, in milliseconds",
            )?,
            resident_actors: IntGauge::new("resident_actors", "actors in memory")?,
            early_passivations: IntCounter::new(
                "early_passivations_total",
                "idle actors passivated before their time because the instance was at its resident cap",
            )?,
            inbox_depth: IntGauge::new("inbox_depth", "inputs queued in shard hosts")?,
            inbox_polls_in_flight: IntGauge::new(
                "inbox_polls_in_flight",
                "inbox reads of shard hosts started and not answered yet",
            )?,
            fencing_rejections: IntCounter::new(
                "fencing_rejections_total",
                "writes rejected because the shard's epoch moved on",
            )?,
            dead_letters: IntCounter::new("dead_letters_total", "inputs moved to dead letters")?,
            actor_restarts: IntCounter::new("actor_restarts_total", "actor restarts")?,
            early_timer_firings: IntCounter::new(
                "early_timer_firings_total",
                "timer firings handed back because the database's clock had not reached them",
            )?,
            awaiting_activation: IntGauge::new(
                "actors_awaiting_activation",
                "actors with work waiting for room under their host's share of the resident cap",
            )?,
            claims_held_back: IntCounter::new(
                "outbox_claims_held_back_total",
                "outbox claims put off because more actors waited for room than half the resident cap",
            )?,
            firings_held_back: IntCounter::new(
                "timer_firings_held_back_total",
                "timer wake-ups put off because more actors waited for room than half the resident cap",
            )?,
            timer_rows_read: IntCounter::new(
                "timer_rows_read_total",
                "timer rows read from the store by the timer service (refills and backlog slices)",
            )?,
            quarantined_actors: IntCounter::new(
                "quarantined_actors_total",
                "actors set aside after failing past their restart limit",
            )?,
            owned_shards: IntGauge::new("owned_shards", "shards leased by this instance")?,
            effects: IntCounterVec::new(
                Opts::new(
                    "effects_total",
                    "effects dispatched, by channel and outcome",
                ),
                &["channel", "status"],
            )?,
            effect_latency: HistogramVec::new(
                HistogramOpts::new("effect_latency_seconds", "effect execution time")
                    .buckets(buckets()),
                &["channel"],
            )?,
            outbox_claim: Histogram::with_opts(
                HistogramOpts::new(
                    "outbox_claim_seconds",
                    "outbox claim query time (claims run one at a time per instance)",
                )
                .buckets(buckets()),
            )?,
            completions_refused: IntCounterVec::new(
                Opts::new(
                    "effect_completions_refused_total",
                    "effect results not recorded because their row was no longer in flight under \
                     their claim (recorded unknown by the shard's next holder, or finished), by channel",
                ),
                &["channel"],
            )?,
            remote_answers: IntCounterVec::new(
                Opts::new(
                    "remote_answers_total",
                    "answers read for callers waiting on another instance, by what woke the read",
                ),
                &["woken"],
            )?,
            registry,
            timer_lateness_max: std::sync::atomic::AtomicI64::new(0),
        };
        m.registry.register(Box::new(m.transitions.clone()))?;
        m.registry.register(Box::new(m.commit_latency.clone()))?;
        m.registry.register(Box::new(m.commit_batch.clone()))?;
        m.registry.register(Box::new(m.timer_lateness.clone()))?;
        m.registry
            .register(Box::new(m.timer_lateness_max_ms.clone()))?;
        m.registry.register(Box::new(m.resident_actors.clone()))?;
        m.registry
            .register(Box::new(m.early_passivations.clone()))?;
        m.registry.register(Box::new(m.inbox_depth.clone()))?;
        m.registry
            .register(Box::new(m.inbox_polls_in_flight.clone()))?;
        m.registry
            .register(Box::new(m.fencing_rejections.clone()))?;
        m.registry.register(Box::new(m.dead_letters.clone()))?;
        m.registry.register(Box::new(m.actor_restarts.clone()))?;
        m.registry
            .register(Box::new(m.quarantined_actors.clone()))?;
        m.registry
            .register(Box::new(m.awaiting_activation.clone()))?;
        m.registry.register(Box::new(m.claims_held_back.clone()))?;
        m.registry.register(Box::new(m.firings_held_back.clone()))?;
        m.registry.register(Box::new(m.timer_rows_read.clone()))?;
        m.registry
            .register(Box::new(m.early_timer_firings.clone()))?;
        m.registry.register(Box::new(m.owned_shards.clone()))?;
        m.registry.register(Box::new(m.effects.clone()))?;
        m.registry.register(Box::new(m.effect_latency.clone()))?;
        m.registry.register(Box::new(m.outbox_claim.clone()))?;
        m.registry
            .register(Box::new(m.completions_refused.clone()))?;
        m.registry.register(Box::new(m.remote_answers.clone()))?;
        Ok(m)
    }

    /// Records a timer's lateness, keeping the maximum exact.
    pub fn observe_timer_lateness(&self, late_ms: i64) {
        self.timer_lateness.observe(late_ms as f64 / 1000.0);
        let max = self
            .timer_lateness_max
            .fetch_max(late_ms, std::sync::atomic::Ordering::Relaxed);
        self.timer_lateness_max_ms.set(max.max(late_ms));
    }

    /// Registers a collector owned by another layer (HTTP, adapters).
    pub fn register(
        &self,
        c: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(c)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for the text format; an empty page is the fallback.
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
