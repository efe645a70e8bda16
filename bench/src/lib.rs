//! The benchmarks and the demo: programs that drive the product (`neuronx`) from outside, as an
//! operator or a load generator would, and print what they measured. The `neuronx` binary
//! (`cli/`) runs them as `neuronx bench engine|webhooks|failover|backlog|fairness|twiml` and
//! `neuronx demo`.
//!
//! They are a crate of their own so that the product library carries none of their code and the
//! runtime's `Store` no method that only a benchmark calls (ADR 0034). What they need beyond the
//! product's public API they do themselves, on the runtime's pool: `engine` arms its idle timers
//! with its own SQL, and `failover` reads the runtime's tables (`actors`, `timeline`, `shards`)
//! to check its results. That SQL follows the runtime's schema and changes with it.

pub mod api;
pub mod backlog;
pub mod demo;
pub mod engine;
pub mod failover;
pub mod fairness;
mod load;
pub mod mail_sink;
pub mod places;
pub mod ring;
pub mod twiml;
pub mod webhooks;
